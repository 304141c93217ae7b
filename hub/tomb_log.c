/*
 * tomb_log.c - a hub's tombs as a log of entries in expiry order with a
 * hash index and a Bloom filter (tomb_log.h).
 */
#include "hub/tomb_log.h"

#include <stdlib.h>
#include <string.h>

/* Log chunks: 64 KiB holds about 1,600 tombs of 14-byte ids. */
#define CHUNK_BYTES ((size_t)64 << 10)
/* An index holds at most 70% of its slots (linear probing stays short). */
#define INDEX_MIN 1024u
/* Generations of the index: a batch of stops that does not fit the
 * current index gets a new one of its own instead of a rehash of every
 * tomb into one twice the size (at 100k stops a round, that was a fresh
 * 8-16 MB index to fault in and fill). Lookups ask each; past MAX_GENS
 * they are merged into one. */
#define MAX_GENS 16
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

typedef struct gen {
    slot *index;
    uint32_t cap, count;
} gen;

struct tomb_log {
    gen *gens[MAX_GENS]; /* oldest first; the last takes the puts */
    uint32_t n_gens;
    uint32_t count;
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

static int fits(uint64_t count, uint32_t cap)
{
    return count * 10 <= (uint64_t)cap * 7;
}

/* The smallest index that holds n, or 0 when none can. */
static uint32_t cap_for(uint64_t n)
{
    uint32_t cap = INDEX_MIN;
    while (!fits(n, cap)) {
        if (cap > UINT32_MAX / 2)
            return 0;
        cap *= 2;
    }
    return cap;
}

static gen *gen_new(uint32_t cap)
{
    gen *g = cap ? malloc(sizeof *g) : NULL;
    if (!g)
        return NULL;
    g->index = calloc(cap, sizeof *g->index);
    if (!g->index) {
        free(g);
        return NULL;
    }
    g->cap = cap;
    g->count = 0;
    return g;
}

static void gen_free(gen *g)
{
    if (g) {
        free(g->index);
        free(g);
    }
}

static gen *current(const tomb_log *t)
{
    return t->gens[t->n_gens - 1];
}

tomb_log *tomb_log_new(void)
{
    tomb_log *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->gens[0] = gen_new(INDEX_MIN);
    if (!t->gens[0]) {
        free(t);
        return NULL;
    }
    t->n_gens = 1;
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
    for (uint32_t i = 0; i < t->n_gens; i++)
        gen_free(t->gens[i]);
    free(t->filter);
    free(t);
}

uint32_t tomb_log_count(const tomb_log *t)
{
    return t->count;
}

size_t tomb_log_bytes(const tomb_log *t)
{
    size_t n = sizeof *t + t->chunk_bytes + (t->filter ? FILTER_BITS / 8 : 0);
    for (uint32_t i = 0; i < t->n_gens; i++)
        n += sizeof(gen) + (size_t)t->gens[i]->cap * sizeof(slot);
    return n;
}

/* The slot of g holding key, or the empty slot where it would go. */
static slot *gen_find(const gen *g, const char *key, uint32_t key_len, uint32_t hash)
{
    uint32_t mask = g->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        slot *s = &g->index[i];
        if (!s->e)
            return s;
        if (s->hash == hash && s->e->key_len == key_len && memcmp(s->e->key, key, key_len) == 0)
            return s;
    }
}

/* Puts s into g, whose index has room and no entry of its key. */
static void gen_insert(gen *g, slot s)
{
    uint32_t mask = g->cap - 1, i = s.hash & mask;
    while (g->index[i].e)
        i = (i + 1) & mask;
    g->index[i] = s;
    g->count++;
}

/* Empties slot s of g, moving back the entries after it that linear
 * probing placed past their home (so that no lookup stops short). */
static void gen_remove(gen *g, slot *s)
{
    uint32_t mask = g->cap - 1;
    uint32_t hole = (uint32_t)(s - g->index);
    for (uint32_t i = (hole + 1) & mask; g->index[i].e; i = (i + 1) & mask) {
        uint32_t home = g->index[i].hash & mask;
        /* the entry at i may fill the hole when its home is not in (hole, i] */
        if ((i > hole && (home <= hole || home > i)) || (i < hole && home <= hole && home > i)) {
            g->index[hole] = g->index[i];
            hole = i;
        }
    }
    g->index[hole].e = NULL;
    g->count--;
}

/* The slot of g pointing at e, or NULL when g does not hold it. */
static slot *gen_slot_of(const gen *g, const entry *e)
{
    uint32_t mask = g->cap - 1;
    for (uint32_t i = e->hash & mask; g->index[i].e; i = (i + 1) & mask)
        if (g->index[i].e == e)
            return &g->index[i];
    return NULL;
}

/* The slot holding key's tomb, and its generation in *in; or NULL. */
static slot *lookup(const tomb_log *t, const char *key, uint32_t key_len, uint32_t hash, gen **in)
{
    for (uint32_t i = t->n_gens; i-- > 0;) {
        gen *g = t->gens[i];
        if (!g->count)
            continue;
        slot *s = gen_find(g, key, key_len, hash);
        if (s->e) {
            *in = g;
            return s;
        }
    }
    return NULL;
}

/* Forgets g when it is an older generation with nothing left. */
static void drop_if_empty(tomb_log *t, gen *g)
{
    if (g->count || g == current(t))
        return;
    for (uint32_t i = 0; i < t->n_gens; i++)
        if (t->gens[i] == g) {
            memmove(&t->gens[i], &t->gens[i + 1], (t->n_gens - i - 1) * sizeof g);
            t->n_gens--;
            break;
        }
    gen_free(g);
}

/* Every tomb into one generation of cap slots (cap holds them all). */
static int merge(tomb_log *t, uint32_t cap)
{
    gen *m = gen_new(cap);
    if (!m)
        return -1;
    for (uint32_t i = 0; i < t->n_gens; i++) {
        gen *g = t->gens[i];
        for (uint32_t j = 0; j < g->cap; j++)
            if (g->index[j].e)
                gen_insert(m, g->index[j]);
        gen_free(g);
    }
    t->gens[0] = m;
    t->n_gens = 1;
    return 0;
}

/* A new current generation with room for n: as big as the current one's
 * tombs and one more (single puts grow the index geometrically), or n. */
static int new_gen(tomb_log *t, uint32_t n)
{
    gen *cur = current(t);
    uint32_t a = cap_for(n), b = cap_for((uint64_t)cur->count + 1);
    uint32_t cap = a && b ? (a > b ? a : b) : 0;
    if (!cap)
        return -1;
    if (t->n_gens == MAX_GENS)
        return merge(t, cap_for((uint64_t)t->count + n));
    gen *g = gen_new(cap);
    if (!g)
        return -1;
    if (!cur->count) { /* an empty current one is replaced */
        gen_free(cur);
        t->n_gens--;
    }
    t->gens[t->n_gens++] = g;
    return 0;
}

int tomb_log_reserve(tomb_log *t, uint32_t extra)
{
    gen *cur = current(t);
    return fits((uint64_t)cur->count + extra, cur->cap) ? 0 : new_gen(t, extra);
}

void tomb_log_prefetch(const tomb_log *t, uint32_t hash)
{
    const gen *cur = current(t);
    __builtin_prefetch(&cur->index[hash & (cur->cap - 1)]);
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

int tomb_log_put(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
                 uint64_t until_ms)
{
    if (key_len > TOMB_LOG_MAX_KEY)
        return -1;
    int room = tomb_log_reserve(t, 1) == 0; /* first: it may merge the generations */
    gen *og = NULL;
    slot *os = t->count && filter_maybe(t, hash) ? lookup(t, key, key_len, hash, &og) : NULL;
    entry *old = os ? os->e : NULL;
    if (old && old->stamp > stamp)
        stamp = old->stamp;
    /* a tomb put again moves to the log's end, in expiry order */
    entry *e = room ? append(t, key, key_len, hash, stamp, until_ms) : NULL;
    if (!e) {
        if (!old)
            return -1;
        /* out of memory: the tomb there takes the new stop in place (and
         * holds back the prune of the entries after it until it expires) */
        old->stamp = stamp;
        if (until_ms > old->until_ms)
            old->until_ms = until_ms;
        return 0;
    }
    if (old) {
        old->key_len |= DEAD;
        gen_remove(og, os);
        t->count--;
        drop_if_empty(t, og);
    }
    gen_insert(current(t), (slot){.hash = hash, .e = e});
    t->count++;
    filter_set(t, hash);
    return 0;
}

int tomb_log_get(const tomb_log *t, const char *key, uint32_t key_len, uint32_t hash,
                 uint64_t *stamp)
{
    gen *g;
    if (!t->count || !filter_maybe(t, hash))
        return 0;
    const slot *s = lookup(t, key, key_len, hash, &g);
    if (!s)
        return 0;
    *stamp = s->e->stamp;
    return 1;
}

void tomb_log_delete(tomb_log *t, const char *key, uint32_t key_len, uint32_t hash)
{
    gen *g;
    if (!t->count || !filter_maybe(t, hash))
        return;
    slot *s = lookup(t, key, key_len, hash, &g);
    if (!s)
        return;
    s->e->key_len |= DEAD;
    gen_remove(g, s);
    t->count--;
    drop_if_empty(t, g);
}

/* The filter cannot forget: made again from the tombs left. */
static void filter_rebuild(tomb_log *t)
{
    if (!t->filter)
        return;
    memset(t->filter, 0, FILTER_BITS / 8);
    for (uint32_t i = 0; i < t->n_gens; i++)
        for (uint32_t j = 0; j < t->gens[i]->cap; j++)
            if (t->gens[i]->index[j].e)
                filter_set(t, t->gens[i]->index[j].hash);
}

/* Takes expired entry e out of the generation that holds it: the oldest
 * nearly always, as entries expire oldest first. */
static void expire(tomb_log *t, entry *e)
{
    for (uint32_t i = 0; i < t->n_gens; i++) {
        gen *g = t->gens[i];
        slot *s = gen_slot_of(g, e);
        if (s) {
            gen_remove(g, s);
            t->count--;
            drop_if_empty(t, g);
            return;
        }
    }
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
                expire(t, e);
                e->key_len |= DEAD;
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
    if (gone && t->n_gens == 1 && current(t)->cap > INDEX_MIN &&
        (uint64_t)t->count * 10 < current(t)->cap)
        (void)merge(t, cap_for((uint64_t)t->count * 2)); /* out of memory: the bigger one serves */
    if (gone)
        filter_rebuild(t);
    return gone;
}
