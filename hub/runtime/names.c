/* names.c - a small open-addressing map under one mutex; registrations are
 * rare next to lookups, and a lookup holds the lock for a handful of loads. */
#include "hub/runtime/names.h"

#include "hub/runtime/atoms.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct name_entry {
    uint32_t name; /* ATOM_NONE = empty; TOMBSTONE = deleted */
    ph_pid pid;
} name_entry;

#define TOMBSTONE (ATOM_NONE - 1)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static name_entry *table;
static uint32_t cap, used;

static uint32_t slot_of(uint32_t name)
{
    return (name * 2654435761u) & (cap - 1);
}

static name_entry *find_locked(uint32_t name)
{
    if (!cap)
        return NULL;
    for (uint32_t i = slot_of(name), n = 0; n < cap; i = (i + 1) & (cap - 1), n++) {
        if (table[i].name == ATOM_NONE)
            return NULL;
        if (table[i].name == name)
            return &table[i];
    }
    return NULL;
}

static int grow_locked(void)
{
    uint32_t ncap = cap ? cap * 2 : 64;
    name_entry *n = malloc(ncap * sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < ncap; i++)
        n[i].name = ATOM_NONE;
    name_entry *old = table;
    uint32_t ocap = cap;
    table = n;
    cap = ncap;
    used = 0;
    for (uint32_t i = 0; i < ocap; i++) {
        if (old[i].name == ATOM_NONE || old[i].name == TOMBSTONE)
            continue;
        uint32_t j = slot_of(old[i].name);
        while (table[j].name != ATOM_NONE)
            j = (j + 1) & (cap - 1);
        table[j] = old[i];
        used++;
    }
    free(old);
    return 0;
}

int names_register(uint32_t name, ph_pid pid, ph_pid *holder)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    name_entry *e = find_locked(name);
    if (e) {
        if (holder)
            *holder = e->pid;
        goto out;
    }
    if ((used + 1) * 2 > cap && grow_locked() != 0)
        goto out;
    uint32_t i = slot_of(name);
    while (table[i].name != ATOM_NONE && table[i].name != TOMBSTONE)
        i = (i + 1) & (cap - 1);
    if (table[i].name == ATOM_NONE)
        used++;
    table[i].name = name;
    table[i].pid = pid;
    rc = 0;
out:
    pthread_mutex_unlock(&lock);
    return rc;
}

void names_unregister(uint32_t name, ph_pid pid)
{
    pthread_mutex_lock(&lock);
    name_entry *e = find_locked(name);
    if (e && ph_pid_equal(e->pid, pid))
        e->name = TOMBSTONE;
    pthread_mutex_unlock(&lock);
}

int names_whereis(uint32_t name, ph_pid *pid)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    name_entry *e = find_locked(name);
    if (e) {
        *pid = e->pid;
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

void names_shutdown(void)
{
    pthread_mutex_lock(&lock);
    free(table);
    table = NULL;
    cap = used = 0;
    pthread_mutex_unlock(&lock);
}
