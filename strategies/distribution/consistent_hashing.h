/*
 * consistent_hashing.h - ProcessHub's default distribution strategy, bit
 * for bit: the ring of the Erlang hash_ring library (hash_ring_static,
 * defaults) that ProcessHub uses.
 *
 *   hash(T)  = last 4 bytes, big-endian, of md5(term_to_binary(T))
 *   vnodes   = hash({Seq, NodeAtom}) for Seq in 0..255, per node
 *   order    = Erlang term order of {Hash, Seq, Node}
 *   lookup   = first vnode with hash >= hash(ChildId), walking forward
 *              (wrapping) and collecting distinct nodes until
 *              min(ReplicationFactor, node count) are found
 *
 * Atoms encode as ATOM_EXT in term_to_binary up to OTP 25 and as
 * SMALL_ATOM_UTF8_EXT from OTP 26: the ring must use the encoding of the
 * cluster it runs with (node names are atoms, so every vnode moves).
 */
#ifndef PH_CONSISTENT_HASHING_H
#define PH_CONSISTENT_HASHING_H

#include <processhub/strategy.h>
#include <processhub/term.h>
#include <stdint.h>

typedef enum ring_atom_encoding {
    RING_ATOMS_OTP25, /* ATOM_EXT, tag 100 (default) */
    RING_ATOMS_OTP26, /* SMALL_ATOM_UTF8_EXT, tag 119 */
} ring_atom_encoding;

typedef struct ring ring;

ring *ring_new(ring_atom_encoding encoding);
void ring_free(ring *r);
/* Adds or removes a node ("name@host"). 0, or -1 (out of memory, a name
 * longer than an atom, or already present / absent). */
int ring_add_node(ring *r, const char *node);
int ring_remove_node(ring *r, const char *node);
int ring_node_count(const ring *r);
/* A fingerprint of the node set: two rings with the same digest place
 * every child alike (barring a 64-bit collision). */
uint64_t ring_digest(const ring *r);

/* hash(Key) for an atom or binary child id; -1 for other terms. */
int64_t ring_key_hash(const ring *r, ph_term key);
/* The nodes of a child id, in ring order: writes up to max node names
 * (pointers into the ring, valid until it changes) and returns how many,
 * or -1 when key is not an atom or binary. */
int ring_key_nodes(const ring *r, ph_term key, int replication_factor, const char **out, int max);

/* The ring as a distribution strategy: type "consistent_hashing", option
 * "atom_encoding" ("otp25" | "otp26"). */
extern const ph_distribution_ops consistent_hashing_strategy;

#endif
