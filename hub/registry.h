/*
 * registry.h - the hub's process registry: child id -> {child spec,
 * [{node, pid}], metadata}, one row per child, one {node, pid} per replica.
 *
 * Owned by the hub process (one thread at a time), so it takes no locks.
 * Ids are atoms or binaries, kept in a canonical encoding so that the same
 * id sent by different nodes finds the same row.
 */
#ifndef PH_REGISTRY_H
#define PH_REGISTRY_H

#include <processhub/worker.h>
#include <stdint.h>

typedef struct reg_node_pid {
    uint32_t node;
    ph_pid pid;
} reg_node_pid;

typedef struct reg_row {
    uint32_t hash;
    uint32_t key_len;
    uint16_t n_nodes;
    uint32_t spec_len;
    uint32_t meta_len;
    /* When the child's line of copies was started (hub/stamp.c): a
     * restart, a replica or a move keeps it, a new start takes a new one.
     * A stop kept for a member that missed it removes only older lines.
     * 0: not known (treated as older than any stop). */
    uint64_t stamp;
    reg_node_pid *nodes; /* n_nodes entries; points at inline_node when n_nodes <= 1 */
    reg_node_pid inline_node;
    char data[]; /* key, spec, metadata: encoded terms without version byte */
} reg_row;

typedef struct registry registry;

registry *registry_new(void);
/* fn(arg, key, key_len) is called before every change of a row: insert,
 * replace, a node's pid set, a node removed, the row deleted or cleared.
 * NULL stops it. One observer per registry. */
typedef void (*registry_observer)(void *arg, const char *key, uint32_t key_len);
void registry_observe(registry *r, registry_observer fn, void *arg);
void registry_free(registry *r);
uint32_t registry_count(const registry *r);
/* How many row changes (those an observer is told of) it has had. */
uint64_t registry_changes(const registry *r);
/* Rows that name at least one node (orphans aside), kept as rows change. */
uint32_t registry_running(const registry *r);
/* Deletes every row (the table keeps its size). */
void registry_clear(registry *r);

/* Canonical key bytes of an id term (atom or binary): 0 and the key in
 * out (a ph_buf the caller owns), -1 if the term is not a valid id. */
int registry_key(ph_term id, ph_buf *out);

reg_row *registry_get(registry *r, const char *key, uint32_t key_len);
/* The row of id, or NULL (also for an invalid id): registry_key into
 * scratch (emptied first) and registry_get. */
reg_row *registry_find(registry *r, ph_term id, ph_buf *scratch);
/* The hash a lookup of key starts from, and a hint to load the slots it
 * will probe first. At 100k+ rows that first probe is a cache miss; a
 * batch that knows its next key issues the hint, does other work, and
 * finds the slot in cache when it looks up. */
uint32_t registry_hash(const char *key, uint32_t key_len);
void registry_prefetch(const registry *r, uint32_t hash);
/* The second hint: the row in hash's first slot. A lookup compares the
 * key in the row, a second cache miss; issued a few lookups after
 * registry_prefetch (the slot has loaded meanwhile) it finds the row in
 * cache too. Any hash is safe: it only reads a slot. */
void registry_prefetch_row(const registry *r, uint32_t hash);
/* The row in hash's first slot when the hash stored there is hash: a
 * guess at a key's row for more hints (its key is not compared), or
 * NULL. */
const reg_row *registry_peek(const registry *r, uint32_t hash);
/* How far ahead a batch issues each hint: the slot 8 keys ahead, the row 4
 * keys ahead. */
#define REG_AHEAD_SLOT 8
#define REG_AHEAD_ROW 4
/* A batch that looks up a list's ids one by one, with the hints asked for
 * ahead: the ids from REG_AHEAD_SLOT on are given to reg_ahead_next (NULL
 * past the end), one per id looked up, after the first REG_AHEAD_SLOT
 * given before the first lookup. Each asks for its id's slot and for the
 * row of the id REG_AHEAD_ROW ahead. */
typedef struct reg_ahead {
    uint32_t hash[REG_AHEAD_SLOT]; /* [at]: the id looked up now; [at + k]: k on */
    unsigned at;
    ph_buf key;
} reg_ahead;
int reg_ahead_init(reg_ahead *a);
void reg_ahead_free(reg_ahead *a);
void reg_ahead_next(reg_ahead *a, const registry *r, const ph_term *id);
/* The row (a guess: registry_peek) of the id k ahead of the one looked up
 * now, 0 < k < REG_AHEAD_SLOT, for hints of the caller's own. */
const reg_row *reg_ahead_peek(const reg_ahead *a, const registry *r, unsigned k);
/* The registry_hash of the id k ahead, for the caller's own tables. */
uint32_t reg_ahead_hash(const reg_ahead *a, unsigned k);
/* registry_get with the key's registry_hash already known. */
reg_row *registry_get_hashed(registry *r, const char *key, uint32_t key_len, uint32_t hash);
/* Makes room for extra more rows at once (one rehash for a big batch
 * instead of one per doubling). 0 or -1. */
int registry_reserve(registry *r, uint32_t extra);
/* Inserts or replaces the row for key. On replace the node list is kept
 * unless nodes is given, and the stamp always. Returns the row or NULL
 * when out of memory. */
reg_row *registry_put(registry *r, const char *key, uint32_t key_len, ph_term spec,
                      ph_term metadata, const reg_node_pid *nodes, uint16_t n_nodes);
/* registry_put with what the caller knows already: the key's
 * registry_hash and the encoded lengths of spec and metadata (neither is
 * walked). */
reg_row *registry_put_sized(registry *r, const char *key, uint32_t key_len, uint32_t hash,
                            ph_term spec, uint32_t spec_len, ph_term metadata, uint32_t meta_len,
                            const reg_node_pid *nodes, uint16_t n_nodes);
/* The two halves of registry_put, for rows built on another thread: a
 * new row (touches no registry, stamp 0), and its insertion (replacing a
 * row with the same key, which is freed; a row with stamp 0 takes the
 * replaced row's). NULL when out of memory. */
reg_row *registry_row_new(const char *key, uint32_t key_len, ph_term spec, ph_term metadata,
                          const reg_node_pid *nodes, uint16_t n_nodes);
reg_row *registry_insert_row(registry *r, reg_row *row);
void registry_row_free(reg_row *row);
/* Sets node's pid in the row (adds the node if missing). 0 or -1. */
int registry_set_node(registry *r, reg_row *row, uint32_t node, ph_pid pid);
/* Removes node from the row; deletes the row when no node is left.
 * Returns 1 if the row was deleted. */
int registry_remove_node(registry *r, reg_row *row, uint32_t node);
/* Removes node from the row but keeps the row, with no node if it was the
 * last: an orphan, a child whose every copy ran on members that left. Its
 * spec and metadata stay until its new owner starts it again. */
void registry_orphan_node(registry *r, reg_row *row, uint32_t node);
void registry_delete(registry *r, reg_row *row);

static inline ph_term reg_row_key(const reg_row *row)
{
    return (ph_term){row->data, 0};
}
static inline ph_term reg_row_spec(const reg_row *row)
{
    return (ph_term){row->data + row->key_len, 0};
}
static inline ph_term reg_row_meta(const reg_row *row)
{
    return (ph_term){row->data + row->key_len + row->spec_len, 0};
}

/* Iteration: i from 0; returns the next row or NULL at the end. */
reg_row *registry_next(registry *r, uint32_t *i);

/* Timed entries (the hub's tombs and stops kept for members that missed
 * them): a row whose spec is its expiry, a monotonic ms. registry_until
 * encodes one into buf (16 bytes) as a term for registry_put's spec;
 * registry_prune_expired deletes the rows expired at now (or unreadable)
 * and returns how many went. */
ph_term registry_until(char buf[16], uint64_t until_ms);
uint32_t registry_prune_expired(registry *r, uint64_t now_ms);
/* Moves a timed entry's expiry in place (its spec, and its metadata when
 * that holds the expiry too): 0, or -1 when the new expiry's encoding has
 * another length (registry_put it then). No observer is told. */
int registry_refresh_until(reg_row *row, uint64_t until_ms);

/* Appends [{Node, Pid}] of the row. */
int registry_encode_nodes(ph_buf *b, const reg_row *row);

#endif
