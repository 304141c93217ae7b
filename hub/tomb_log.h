/*
 * tomb_log.h - the store behind a hub's tombs: id -> {stamp, expiry}, kept
 * as an append-only log of entries in the order they were put (which is
 * their expiry order) with a hash index over it, and a Bloom filter in
 * front for the ids that have no tomb.
 *
 * A hub stops 100k children in one call and remembers each id for 30 s:
 * an entry costs its key plus 24 bytes in a chunk of the log and 16 bytes
 * of index (at most 70% full), with no allocation of its own, and expired
 * entries go by whole chunks. A batch that does not fit the index gets a
 * new generation of it rather than a rehash of every tomb (lookups ask
 * each generation, newest first; more than 16 are merged into one).
 * Owned by one hub process (no locks).
 */
#ifndef PH_TOMB_LOG_H
#define PH_TOMB_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef struct tomb_log tomb_log;

/* The longest key a tomb can hold (its length shares a word with a flag). */
#define TOMB_LOG_MAX_KEY 0x7fffffffu

tomb_log *tomb_log_new(void);
void tomb_log_free(tomb_log *t);
uint32_t tomb_log_count(const tomb_log *t);
/* Bytes held (chunks, index, filter): for tests and metrics. */
size_t tomb_log_bytes(const tomb_log *t);

/* hash is the key's registry_hash. Gives key a tomb that expires at
 * until_ms and holds the larger of its stamp and the one it had. Entries
 * expire in the order they are put: one put with an earlier expiry than
 * the entry before it goes with that one. 0, or -1 when out of memory (a
 * tomb key had is then updated in place: 0) or for a key longer than
 * TOMB_LOG_MAX_KEY. */
int tomb_log_put(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
                 uint64_t until_ms);
/* Makes the index large enough for extra more tombs at once (one resize
 * for a batch of stops). 0, or -1 when out of memory. */
int tomb_log_reserve(tomb_log *t, uint32_t extra);
/* Asks for the index slot of hash ahead of a put or lookup. */
void tomb_log_prefetch(const tomb_log *t, uint32_t hash);
/* 1 with *stamp when key has a tomb (expired or not: expiring is
 * tomb_log_prune's), else 0. */
int tomb_log_get(const tomb_log *t, const char *key, uint32_t key_len, uint32_t hash,
                 uint64_t *stamp);
void tomb_log_delete(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash);
/* Deletes the tombs expired at now_ms (until_ms <= now_ms); returns how
 * many went. */
uint32_t tomb_log_prune(tomb_log *t, uint64_t now_ms);

#endif
