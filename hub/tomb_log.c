/*
 * tomb_log.c - a hub's tombs as a log of entries in expiry order with a
 * hash index and a Bloom filter (tomb_log.h).
 */
#include "hub/tomb_log.h"

#include <stdlib.h>
#include <string.h>

/* Log chunks: 64 KiB holds about 1,600 tombs of 14-byte ids. */
#define CHUNK_BYTES ((size_t)64 << 10)
/* The index doubles past 70% full (linear probing stays short) and
 * shrinks below 10%, to about 35%. */
#define INDEX_MIN 1024u
/* The filter: 2^21 bits (256 KiB), two bits per tomb. With 200k tombs
 * (two rounds of 100k stops within 30 s) about 3% of the ids without a
 * tomb still need the lookup. */
#define FILTER_BITS (1u << 21)
#define DEAD 0x80000000u /* in an entry's key_len: deleted, or put again later */

typedef struct entry {
    uint64_t stamp;
    uint64_t until_ms;
    uint32_t hash;
    uint32_t key_len; /* | DEAD */
    char key[];
} entry;

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    size_t scan; /* prune has gone past every entry before this offset */
    _Alignas(8) char data[];
} chunk;

typedef struct slot {
    uint32_t hash;
    entry *e; /* NULL: empty */
} slot;

struct tomb_log {
    slot *index;
    uint32_t cap, count;
    chunk *head, *tail;
    size_t chunk_bytes;
    uint64_t *filter; /* NULL when it could not be made: every lookup asks the index */
};

static size_t entry_size(uint32_t key_len)
{
    return (sizeof(entry) + key_len + 7) & ~(size_t)7;
}

static void filter_bits(uint32_t hash, uint32_t *a, uint32_t *b)
{
    /* two positions from the key's hash, mixed away from the low bits the
     * index uses */
    *a = (hash * 0x9e3779b1u) >> 11;
    *b = ((hash ^ (hash >> 16)) * 0x85ebca6bu) >> 11;
}

static void filter_set(tomb_log *t, uint32_t hash)
{
    uint32_t a, b;
    if (!t->filter)
        return;
    filter_bits(hash, &a, &b);
    t->filter[a / 64] |= 1ull << (a % 64);
    t->filter[b / 64] |= 1ull << (b % 64);
}

/* 0 when the id of this hash has certainly no tomb. */
static int filter_maybe(const tomb_log *t, uint32_t hash)
{
    uint32_t a, b;
    if (!t->filter)
        return 1;
    filter_bits(hash, &a, &b);
    return (t->filter[a / 64] >> (a % 64) & 1) && (t->filter[b / 64] >> (b % 64) & 1);
}

tomb_log *tomb_log_new(void)
{
    tomb_log *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->index = calloc(INDEX_MIN, sizeof *t->index);
    if (!t->index) {
        free(t);
        return NULL;
    }
    t->cap = INDEX_MIN;
    t->filter = calloc(FILTER_BITS / 64, sizeof *t->filter);
    return t;
}

void tomb_log_free(tomb_log *t)
{
    if (!t)
        return;
    for (chunk *c = t->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(t->index);
    free(t->filter);
    free(t);
}

uint32_t tomb_log_count(const tomb_log *t)
{
    return t->count;
}

size_t tomb_log_bytes(const tomb_log *t)
{
    return sizeof *t + t->chunk_bytes + (size_t)t->cap * sizeof *t->index +
           (t->filter ? FILTER_BITS / 8 : 0);
}

/* The slot holding key, or the empty slot where it would go. */
static slot *find(const tomb_log *t, const char *key, uint32_t key_len, uint32_t hash)
{
    uint32_t mask = t->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        slot *s = &t->index[i];
        if (!s->e)
            return s;
        if (s->hash == hash && s->e->key_len == key_len && memcmp(s->e->key, key, key_len) == 0)
            return s;
    }
}

static int resize(tomb_log *t, uint32_t cap)
{
    slot *index = calloc(cap, sizeof *index);
    if (!index)
        return -1;
    for (uint32_t i = 0; i < t->cap; i++) {
        slot s = t->index[i];
        if (!s.e)
            continue;
        uint32_t j = s.hash & (cap - 1);
        while (index[j].e)
            j = (j + 1) & (cap - 1);
        index[j] = s;
    }
    free(t->index);
    t->index = index;
    t->cap = cap;
    return 0;
}

/* Empties slot s, moving back the entries after it that linear probing
 * placed past their home (so that no lookup stops short). */
static void index_remove(tomb_log *t, slot *s)
{
    uint32_t mask = t->cap - 1;
    uint32_t hole = (uint32_t)(s - t->index);
    for (uint32_t i = (hole + 1) & mask; t->index[i].e; i = (i + 1) & mask) {
        uint32_t home = t->index[i].hash & mask;
        /* the entry at i may fill the hole when its home is not in (hole, i] */
        if ((i > hole && (home <= hole || home > i)) || (i < hole && home <= hole && home > i)) {
            t->index[hole] = t->index[i];
            hole = i;
        }
    }
    t->index[hole].e = NULL;
}

/* The slot pointing at e (which the index holds). */
static slot *slot_of(const tomb_log *t, const entry *e)
{
    uint32_t mask = t->cap - 1;
    uint32_t i = e->hash & mask;
    while (t->index[i].e != e)
        i = (i + 1) & mask;
    return &t->index[i];
}

static entry *append(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
                     uint64_t until_ms)
{
    size_t size = entry_size(key_len);
    chunk *c = t->tail;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        chunk *n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->next = NULL;
        n->cap = cap;
        n->used = n->scan = 0;
        if (c)
            c->next = n;
        else
            t->head = n;
        t->tail = c = n;
        t->chunk_bytes += sizeof *n + cap;
    }
    entry *e = (entry *)(c->data + c->used);
    c->used += size;
    e->stamp = stamp;
    e->until_ms = until_ms;
    e->hash = hash;
    e->key_len = key_len;
    memcpy(e->key, key, key_len);
    return e;
}

static int fits(uint64_t count, uint32_t cap)
{
    return count * 10 <= (uint64_t)cap * 7;
}

int tomb_log_reserve(tomb_log *t, uint32_t extra)
{
    uint64_t want = (uint64_t)t->count + extra;
    uint32_t cap = t->cap;
    while (!fits(want, cap)) {
        if (cap > UINT32_MAX / 2)
            return -1;
        cap *= 2;
    }
    return cap == t->cap ? 0 : resize(t, cap);
}

void tomb_log_prefetch(const tomb_log *t, uint32_t hash)
{
    __builtin_prefetch(&t->index[hash & (t->cap - 1)]);
}

int tomb_log_put(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
                 uint64_t until_ms)
{
    if (key_len > TOMB_LOG_MAX_KEY)
        return -1;
    if (!fits((uint64_t)t->count + 1, t->cap) && tomb_log_reserve(t, 1) != 0)
        return -1;
    slot *s = find(t, key, key_len, hash);
    entry *old = s->e;
    if (old && old->stamp > stamp)
        stamp = old->stamp;
    /* a tomb put again moves to the log's end, in expiry order */
    entry *e = append(t, key, key_len, hash, stamp, until_ms);
    if (!e)
        return -1;
    if (old) {
        old->key_len |= DEAD;
    } else {
        s->hash = hash;
        t->count++;
        filter_set(t, hash);
    }
    s->e = e;
    return 0;
}

int tomb_log_get(const tomb_log *t, const char *key, uint32_t key_len, uint32_t hash,
                 uint64_t *stamp)
{
    if (!t->count || !filter_maybe(t, hash))
        return 0;
    const slot *s = find(t, key, key_len, hash);
    if (!s->e)
        return 0;
    *stamp = s->e->stamp;
    return 1;
}

void tomb_log_delete(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash)
{
    if (!t->count || !filter_maybe(t, hash))
        return;
    slot *s = find(t, key, key_len, hash);
    if (!s->e)
        return;
    s->e->key_len |= DEAD;
    index_remove(t, s);
    t->count--;
}

/* The filter cannot forget: made again from the tombs left. */
static void filter_rebuild(tomb_log *t)
{
    if (!t->filter)
        return;
    memset(t->filter, 0, FILTER_BITS / 8);
    for (uint32_t i = 0; i < t->cap; i++)
        if (t->index[i].e)
            filter_set(t, t->index[i].hash);
}

uint32_t tomb_log_prune(tomb_log *t, uint64_t now_ms)
{
    uint32_t gone = 0;
    chunk *c;
    while ((c = t->head) != NULL) {
        while (c->scan < c->used) {
            entry *e = (entry *)(c->data + c->scan);
            if (!(e->key_len & DEAD)) {
                if (e->until_ms > now_ms)
                    goto done;
                index_remove(t, slot_of(t, e));
                e->key_len |= DEAD;
                t->count--;
                gone++;
            }
            c->scan += entry_size(e->key_len & ~DEAD);
        }
        if (c == t->tail) { /* all gone: the last chunk is kept for what comes next */
            c->used = c->scan = 0;
            break;
        }
        t->head = c->next;
        t->chunk_bytes -= sizeof *c + c->cap;
        free(c);
    }
done:
    if (gone && t->cap > INDEX_MIN && (uint64_t)t->count * 10 < t->cap) {
        uint32_t cap = INDEX_MIN;
        while ((uint64_t)t->count * 20 > (uint64_t)cap * 7)
            cap *= 2;
        (void)resize(t, cap); /* out of memory: the bigger index still serves */
    }
    if (gone)
        filter_rebuild(t);
    return gone;
}
