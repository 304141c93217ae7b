/* atoms.c - interning with lock-free lookups of atoms that exist already
 * (every decoded pid and ref names its node, so this is on the hot path).
 *
 * The open-addressing table is replaced, never resized in place: a grown
 * table is published with one atomic store and the old one is kept until
 * shutdown, so a reader never sees freed memory. Slots are written with
 * release stores after the atom's text is in place. A reader that misses an
 * atom being added concurrently falls back to the locked path. */
#include "hub/runtime/atoms.h"

#include <ei.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024u

typedef struct hash_table {
    struct hash_table *older; /* retired tables, freed at shutdown */
    uint32_t cap;
    _Atomic uint32_t slots[]; /* index+1, 0 = empty */
} hash_table;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(char **) chunks[MAX_CHUNKS];
static uint32_t count;
static _Atomic(hash_table *) table;

static uint64_t hash_text(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

const char *atom_text(uint32_t atom)
{
    if (atom == ATOM_NONE || (atom >> CHUNK_BITS) >= MAX_CHUNKS)
        return "";
    char **chunk = atomic_load_explicit(&chunks[atom >> CHUNK_BITS], memory_order_acquire);
    if (!chunk)
        return "";
    const char *t = __atomic_load_n(&chunk[atom & (CHUNK_SIZE - 1)], __ATOMIC_ACQUIRE);
    return t ? t : "";
}

/* Probes t for text; returns the atom or ATOM_NONE, and the first empty
 * slot in *free_slot. Safe without the lock. */
static uint32_t probe(hash_table *t, const char *text, uint64_t h, uint32_t *free_slot)
{
    *free_slot = UINT32_MAX;
    if (!t)
        return ATOM_NONE;
    for (uint32_t i = (uint32_t)h & (t->cap - 1), n = 0; n < t->cap;
         i = (i + 1) & (t->cap - 1), n++) {
        uint32_t v = atomic_load_explicit(&t->slots[i], memory_order_acquire);
        if (v == 0) {
            *free_slot = i;
            return ATOM_NONE;
        }
        if (strcmp(atom_text(v - 1), text) == 0)
            return v - 1;
    }
    return ATOM_NONE;
}

static int grow_locked(void)
{
    hash_table *old = atomic_load(&table);
    uint32_t cap = old ? old->cap * 2 : 256;
    hash_table *t = calloc(1, sizeof *t + cap * sizeof t->slots[0]);
    if (!t)
        return -1;
    t->cap = cap;
    t->older = old;
    for (uint32_t a = 0; a < count; a++) {
        uint32_t j = (uint32_t)hash_text(atom_text(a)) & (cap - 1);
        while (atomic_load_explicit(&t->slots[j], memory_order_relaxed))
            j = (j + 1) & (cap - 1);
        atomic_store_explicit(&t->slots[j], a + 1, memory_order_relaxed);
    }
    atomic_store_explicit(&table, t, memory_order_release);
    return 0;
}

uint32_t atom_lookup(const char *text)
{
    uint32_t free_slot;
    uint64_t h = hash_text(text);
    uint32_t a = probe(atomic_load_explicit(&table, memory_order_acquire), text, h, &free_slot);
    if (a != ATOM_NONE)
        return a;
    pthread_mutex_lock(&lock);
    a = probe(atomic_load(&table), text, h, &free_slot);
    pthread_mutex_unlock(&lock);
    return a;
}

uint32_t atom_intern(const char *text)
{
    if (!text || strlen(text) >= MAXATOMLEN_UTF8)
        return ATOM_NONE;
    uint64_t h = hash_text(text);
    uint32_t free_slot;
    uint32_t result =
        probe(atomic_load_explicit(&table, memory_order_acquire), text, h, &free_slot);
    if (result != ATOM_NONE)
        return result;
    pthread_mutex_lock(&lock);
    hash_table *t = atomic_load(&table);
    result = probe(t, text, h, &free_slot);
    if (result != ATOM_NONE)
        goto out;
    if (!t || (count + 1) * 2 > t->cap) {
        if (grow_locked() != 0)
            goto out;
        t = atomic_load(&table);
        probe(t, text, h, &free_slot);
    }
    uint32_t chunk_no = count >> CHUNK_BITS;
    if (chunk_no >= MAX_CHUNKS)
        goto out;
    char **chunk = atomic_load_explicit(&chunks[chunk_no], memory_order_relaxed);
    if (!chunk) {
        chunk = calloc(CHUNK_SIZE, sizeof *chunk);
        if (!chunk)
            goto out;
        atomic_store_explicit(&chunks[chunk_no], chunk, memory_order_release);
    }
    char *copy = strdup(text);
    if (!copy)
        goto out;
    /* Text first, then the slot that makes it findable. */
    __atomic_store_n(&chunk[count & (CHUNK_SIZE - 1)], copy, __ATOMIC_RELEASE);
    atomic_store_explicit(&t->slots[free_slot], count + 1, memory_order_release);
    result = count++;
out:
    pthread_mutex_unlock(&lock);
    return result;
}

void atoms_shutdown(void)
{
    pthread_mutex_lock(&lock);
    for (uint32_t c = 0; c < MAX_CHUNKS; c++) {
        char **chunk = atomic_load(&chunks[c]);
        if (!chunk)
            continue;
        for (uint32_t i = 0; i < CHUNK_SIZE; i++)
            free(chunk[i]);
        free(chunk);
        atomic_store(&chunks[c], NULL);
    }
    hash_table *t = atomic_exchange(&table, NULL);
    while (t) {
        hash_table *older = t->older;
        free(t);
        t = older;
    }
    count = 0;
    pthread_mutex_unlock(&lock);
}

int atom_encode_text(ei_x_buff *b, const char *text)
{
    return ei_x_encode_atom_len_as(b, text, (int)strlen(text), ERLANG_UTF8, ERLANG_UTF8) == 0 ? 0
                                                                                              : -1;
}

int atom_encode(ei_x_buff *b, uint32_t atom)
{
    return atom_encode_text(b, atom_text(atom));
}
