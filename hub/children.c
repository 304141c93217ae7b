/* children.c - the children this node supervises, by pid (open addressing). */
#include "hub/hub_internal.h"

static uint32_t pid_hash(ph_pid pid);
static int children_rehash(hub *h, uint32_t cap);

child hub_gone_child; /* the mark of a deleted slot */

/* --- children by pid ---------------------------------------------------- */

/* A batch's children have consecutive pid numbers (process-table slots
 * are handed out in order), and their stops and 'EXIT's come in about
 * that order: eight consecutive numbers share one cache line of slots
 * (pointers, 8 bytes), and the groups of eight are spread over the table.
 * Spread one by one, each lookup of a join's or a stop's 33k was a cache
 * miss on the table before the one on the record. */
static uint32_t pid_hash(ph_pid pid)
{
    uint32_t group = ((pid.num >> 3) * 2654435761u) ^ (pid.serial * 40503u);
    return (group << 3) | (pid.num & 7u);
}

/* A hint to load the slot where pid's record will be inserted or found
 * (see registry_prefetch). */
void children_prefetch(const hub *h, ph_pid pid)
{
    if (h->cap)
        __builtin_prefetch(&h->children[pid_hash(pid) & (h->cap - 1)]);
}

/* The second hint: the record in pid's first slot (its pid compared by
 * child_find, a second cache miss); a few lookups after children_prefetch. */
void children_prefetch_record(const hub *h, ph_pid pid)
{
    if (!h->cap)
        return;
    const child *c = h->children[pid_hash(pid) & (h->cap - 1)];
    if (c && c != GONE)
        __builtin_prefetch(c);
}

/* Room for extra more children at once: one rehash for a big batch. */
int children_reserve(hub *h, uint32_t extra)
{
    uint32_t cap;
    if (h->cap && !table_needs_rehash(h->used, extra, h->cap))
        return 0;
    if (table_cap_for(h->cap, (uint64_t)h->count + extra, &cap) != 0)
        return -1;
    return children_rehash(h, cap);
}

static int children_rehash(hub *h, uint32_t cap)
{
    child **n = calloc(cap, sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (!c || c == GONE)
            continue;
        uint32_t j = pid_hash(c->pid) & (cap - 1);
        while (n[j])
            j = (j + 1) & (cap - 1);
        n[j] = c;
    }
    free(h->children);
    h->children = n;
    h->cap = cap;
    h->used = h->count;
    return 0;
}

child *child_find(hub *h, ph_pid pid, uint32_t *slot)
{
    if (!h->cap)
        return NULL;
    for (uint32_t i = pid_hash(pid) & (h->cap - 1), n = 0; n < h->cap;
         i = (i + 1) & (h->cap - 1), n++) {
        child *c = h->children[i];
        if (!c)
            return NULL;
        if (c != GONE && ph_pid_equal(c->pid, pid)) {
            if (slot)
                *slot = i;
            return c;
        }
    }
    return NULL;
}

/* A supervision record, not yet in the table (any thread may build one). */
child *child_new(ph_pid pid, const char *key, uint32_t key_len, const spec_info *s)
{
    child *c = calloc(1, sizeof *c + key_len);
    if (!c)
        return NULL;
    c->pid = pid;
    c->restart = (uint8_t)s->restart;
    c->shutdown_ms = s->shutdown_ms;
    c->key_len = key_len;
    memcpy(c->key, key, key_len);
    return c;
}

child *child_add(hub *h, ph_pid pid, const char *key, uint32_t key_len, const spec_info *s)
{
    child *c = child_new(pid, key, key_len, s);
    if (c && child_insert(h, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

int child_insert(hub *h, child *c)
{
    if (children_reserve(h, 1) != 0)
        return -1;
    uint32_t i = pid_hash(c->pid) & (h->cap - 1);
    while (h->children[i] && h->children[i] != GONE)
        i = (i + 1) & (h->cap - 1);
    if (!h->children[i])
        h->used++;
    h->children[i] = c;
    h->count++;
    return 0;
}

void child_remove(hub *h, child *c)
{
    uint32_t slot;
    if (child_find(h, c->pid, &slot) == c) {
        h->children[slot] = GONE;
        h->count--;
        h->stopping -= c->stopping != 0;
    }
    free(c);
}
