/* atoms.c - a mutex-guarded open-addressing hash for interning, plus a
 * chunked index -> text array whose chunks never move (lock-free reads). */
#include "hub/atoms.h"

#include <ei.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define MAX_CHUNKS 1024u

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(char **) chunks[MAX_CHUNKS];
static uint32_t count;
static uint32_t *slots; /* hash slots holding index+1, 0 = empty */
static uint32_t slot_cap;

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
    const char *t = chunk[atom & (CHUNK_SIZE - 1)];
    return t ? t : "";
}

static uint32_t find_locked(const char *text, uint64_t h, uint32_t *free_slot)
{
    if (slot_cap == 0) {
        *free_slot = UINT32_MAX;
        return ATOM_NONE;
    }
    for (uint32_t i = (uint32_t)h & (slot_cap - 1);; i = (i + 1) & (slot_cap - 1)) {
        if (slots[i] == 0) {
            *free_slot = i;
            return ATOM_NONE;
        }
        if (strcmp(atom_text(slots[i] - 1), text) == 0)
            return slots[i] - 1;
    }
}

static int grow_locked(void)
{
    uint32_t cap = slot_cap ? slot_cap * 2 : 256;
    uint32_t *n = calloc(cap, sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < slot_cap; i++) {
        if (!slots[i])
            continue;
        uint32_t j = (uint32_t)hash_text(atom_text(slots[i] - 1)) & (cap - 1);
        while (n[j])
            j = (j + 1) & (cap - 1);
        n[j] = slots[i];
    }
    free(slots);
    slots = n;
    slot_cap = cap;
    return 0;
}

uint32_t atom_lookup(const char *text)
{
    uint32_t free_slot;
    pthread_mutex_lock(&lock);
    uint32_t a = find_locked(text, hash_text(text), &free_slot);
    pthread_mutex_unlock(&lock);
    return a;
}

uint32_t atom_intern(const char *text)
{
    if (!text || strlen(text) >= MAXATOMLEN_UTF8)
        return ATOM_NONE;
    uint64_t h = hash_text(text);
    uint32_t free_slot, result = ATOM_NONE;
    pthread_mutex_lock(&lock);
    result = find_locked(text, h, &free_slot);
    if (result != ATOM_NONE)
        goto out;
    if ((count + 1) * 2 > slot_cap) {
        if (grow_locked() != 0)
            goto out;
        find_locked(text, h, &free_slot);
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
    /* The text is written before count moves on, and readers only ask for
     * indexes they were handed after this function returned. */
    __atomic_store_n(&chunk[count & (CHUNK_SIZE - 1)], copy, __ATOMIC_RELEASE);
    slots[free_slot] = count + 1;
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
    free(slots);
    slots = NULL;
    slot_cap = 0;
    count = 0;
    pthread_mutex_unlock(&lock);
}
