/* registry.c - open-addressing hash of rows keyed by canonical id bytes;
 * each row is one allocation (key, spec and metadata inline). Each slot's
 * hash is kept beside it, so a probe reads two dense arrays and touches a
 * row only when the hash matches: at 100k+ rows every row dereference is
 * a cache miss. */
#include "hub/registry.h"

#include <limits.h>

#include "hub/runtime/atoms.h"

#include <stdlib.h>
#include <string.h>

struct registry {
    reg_row **slots;  /* NULL = empty, TOMBSTONE = deleted */
    uint32_t *hashes; /* the hash of the row in the same slot */
    uint32_t cap;
    uint32_t count;
    uint32_t used;              /* count + tombstones */
    uint32_t running;           /* rows that name at least one node */
    registry_observer observer; /* told of every change of a row (subscription.c) */
    void *observer_arg;
    uint64_t changes; /* every change of a row, counted */
};

/* Key bytes are read before the row changes or is freed. */
#define OBSERVE(r, row)                                                                            \
    do {                                                                                           \
        (r)->changes++;                                                                            \
        if ((r)->observer)                                                                         \
            (r)->observer((r)->observer_arg, (row)->data, (row)->key_len);                         \
    } while (0)

void registry_observe(registry *r, registry_observer fn, void *arg)
{
    r->observer = fn;
    r->observer_arg = arg;
}

static reg_row tombstone_row;
#define TOMBSTONE (&tombstone_row)

static uint32_t hash_bytes(const char *p, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

registry *registry_new(void)
{
    registry *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cap = 64;
    r->slots = calloc(r->cap, sizeof *r->slots);
    r->hashes = calloc(r->cap, sizeof *r->hashes);
    if (!r->slots || !r->hashes) {
        free(r->slots);
        free(r->hashes);
        free(r);
        return NULL;
    }
    return r;
}

static void free_row(reg_row *row)
{
    if (row->nodes != &row->inline_node)
        free(row->nodes);
    free(row);
}

void registry_free(registry *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->cap; i++)
        if (r->slots[i] && r->slots[i] != TOMBSTONE)
            free_row(r->slots[i]);
    free(r->slots);
    free(r->hashes);
    free(r);
}

void registry_clear(registry *r)
{
    if (r->used == 0)
        return;
    for (uint32_t i = 0; i < r->cap; i++) {
        if (r->slots[i] && r->slots[i] != TOMBSTONE) {
            OBSERVE(r, r->slots[i]);
            free_row(r->slots[i]);
        }
        r->slots[i] = NULL;
    }
    r->count = r->used = r->running = 0;
}

uint64_t registry_changes(const registry *r)
{
    return r->changes;
}

uint32_t registry_count(const registry *r)
{
    return r->count;
}

uint32_t registry_running(const registry *r)
{
    return r->running;
}

int registry_key(ph_term id, ph_buf *out)
{
    char atom[PH_ATOM_BUF];
    const char *bin;
    size_t bin_len;
    int type, size, index = id.index;
    /* A binary's encoding is canonical already: copy it (the hot path). Ids
     * have no length limit of their own: what bounds them is the frame that
     * brought them (max_frame_bytes). */
    if (id.buf && ei_get_type(id.buf, &index, &type, &size) == 0 && type == ERL_BINARY_EXT &&
        size >= 0)
        return ei_x_append_buf(out, id.buf + id.index, 5 + size) == 0 ? 0 : -1;
    if (ph_match(id, "~a", atom) == 1) /* ~a gives UTF-8 text */
        return ei_x_encode_atom_len_as(out, atom, (int)strlen(atom), ERLANG_UTF8, ERLANG_UTF8) == 0
                   ? 0
                   : -1;
    if (ph_match(id, "~b", &bin, &bin_len) == 1 && bin_len <= INT_MAX - 16)
        return ei_x_encode_binary(out, bin, (long)bin_len) == 0 ? 0 : -1;
    return -1;
}

reg_row *registry_find(registry *r, ph_term id, ph_buf *scratch)
{
    scratch->index = 0;
    return registry_key(id, scratch) == 0 ? registry_get(r, scratch->buff, (uint32_t)scratch->index)
                                          : NULL;
}

static uint32_t find_slot(const registry *r, const char *key, uint32_t key_len, uint32_t h,
                          int *found)
{
    uint32_t first_free = UINT32_MAX;
    for (uint32_t i = h & (r->cap - 1), n = 0; n < r->cap; i = (i + 1) & (r->cap - 1), n++) {
        reg_row *row = r->slots[i];
        if (!row) {
            *found = 0;
            return first_free != UINT32_MAX ? first_free : i;
        }
        if (row == TOMBSTONE) {
            if (first_free == UINT32_MAX)
                first_free = i;
            continue;
        }
        if (r->hashes[i] == h && row->key_len == key_len && memcmp(row->data, key, key_len) == 0) {
            *found = 1;
            return i;
        }
    }
    *found = 0;
    return first_free;
}

uint32_t registry_hash(const char *key, uint32_t key_len)
{
    return hash_bytes(key, key_len);
}

void registry_prefetch(const registry *r, uint32_t hash)
{
    uint32_t i = hash & (r->cap - 1);
    __builtin_prefetch(&r->slots[i]);
    __builtin_prefetch(&r->hashes[i]);
}

void registry_prefetch_row(const registry *r, uint32_t hash)
{
    if (!r->cap)
        return;
    const reg_row *row = r->slots[hash & (r->cap - 1)];
    if (row && row != TOMBSTONE)
        __builtin_prefetch(row);
}

const reg_row *registry_peek(const registry *r, uint32_t hash)
{
    if (!r->cap)
        return NULL;
    uint32_t i = hash & (r->cap - 1);
    const reg_row *row = r->slots[i];
    return row && row != TOMBSTONE && r->hashes[i] == hash ? row : NULL;
}

int reg_ahead_init(reg_ahead *a)
{
    memset(a->hash, 0, sizeof a->hash);
    a->at = 0;
    return ph_buf_init(&a->key);
}

void reg_ahead_free(reg_ahead *a)
{
    ph_buf_free(&a->key);
}

void reg_ahead_next(reg_ahead *a, const registry *r, const ph_term *id)
{
    /* the row of the id REG_AHEAD_ROW on: its slot came in meanwhile */
    registry_prefetch_row(r, a->hash[(a->at + REG_AHEAD_ROW) % REG_AHEAD_SLOT]);
    /* hash[at] is the id looked up now, done with: it takes the new one
     * (an id past the end, or not a key, keeps the stale hash: a hint only) */
    a->key.index = 0;
    if (id && registry_key(*id, &a->key) == 0) {
        a->hash[a->at] = registry_hash(a->key.buff, (uint32_t)a->key.index);
        registry_prefetch(r, a->hash[a->at]);
    }
    a->at = (a->at + 1) % REG_AHEAD_SLOT;
}

const reg_row *reg_ahead_peek(const reg_ahead *a, const registry *r, unsigned k)
{
    return registry_peek(r, a->hash[(a->at + k) % REG_AHEAD_SLOT]);
}

uint32_t reg_ahead_hash(const reg_ahead *a, unsigned k)
{
    return a->hash[(a->at + k) % REG_AHEAD_SLOT];
}

reg_row *registry_get_hashed(registry *r, const char *key, uint32_t key_len, uint32_t hash)
{
    int found;
    uint32_t i = find_slot(r, key, key_len, hash, &found);
    return found ? r->slots[i] : NULL;
}

reg_row *registry_get(registry *r, const char *key, uint32_t key_len)
{
    return registry_get_hashed(r, key, key_len, hash_bytes(key, key_len));
}

/* Moves every row into a table of cap slots (dropping tombstones). */
static int rehash(registry *r, uint32_t cap)
{
    reg_row **slots = calloc(cap, sizeof *slots);
    uint32_t *hashes = malloc(cap * sizeof *hashes);
    if (!slots || !hashes) {
        free(slots);
        free(hashes);
        return -1;
    }
    for (uint32_t i = 0; i < r->cap; i++) {
        reg_row *row = r->slots[i];
        if (!row || row == TOMBSTONE)
            continue;
        uint32_t j = r->hashes[i] & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = row;
        hashes[j] = r->hashes[i];
    }
    free(r->slots);
    free(r->hashes);
    r->slots = slots;
    r->hashes = hashes;
    r->cap = cap;
    r->used = r->count;
    return 0;
}

/* The registry is denser than the other tables (table_cap.h): it is the
 * one every node holds in full, and a slot costs 12 bytes, 63 per row of
 * 100k at table_cap.h's at most 3/8 live. A probe reads the dense hash
 * array and touches a row only on a hash match, so it stays cheap up to
 * 3/4 full: a rehash comes when used slots (live + deleted) would pass
 * 3/4, and sizes for at most 1/2 live (31 bytes per row of 100k), which
 * leaves a quarter of the table for tombstones before the next one. */
static int registry_needs_rehash(uint32_t used, uint64_t extra, uint32_t cap)
{
    return ((uint64_t)used + extra) * 4 > (uint64_t)cap * 3;
}

static int registry_cap_for(uint32_t cap, uint64_t live, uint32_t *out)
{
    if (cap < 64)
        cap = 64;
    while (live * 2 > (uint64_t)cap) {
        if (cap > (1u << 30))
            return -1;
        cap *= 2;
    }
    *out = cap;
    return 0;
}

int registry_reserve(registry *r, uint32_t extra)
{
    uint32_t cap;
    if (!registry_needs_rehash(r->used, extra, r->cap))
        return 0;
    if (registry_cap_for(r->cap, (uint64_t)r->count + extra, &cap) != 0)
        return -1;
    return rehash(r, cap);
}

static int set_nodes(reg_row *row, const reg_node_pid *nodes, uint16_t n)
{
    reg_node_pid *dst = &row->inline_node;
    if (n > 1) {
        dst = malloc(n * sizeof *dst);
        if (!dst)
            return -1;
    }
    if (n)
        memcpy(dst, nodes, n * sizeof *dst);
    if (row->nodes && row->nodes != &row->inline_node)
        free(row->nodes);
    row->nodes = dst;
    row->n_nodes = n;
    return 0;
}

/* A new row from terms whose encoded lengths are known. */
static reg_row *row_build(const char *key, uint32_t key_len, uint32_t hash, ph_term spec,
                          uint32_t spec_len, ph_term metadata, uint32_t meta_len,
                          const reg_node_pid *nodes, uint16_t n_nodes)
{
    reg_row *row = malloc(sizeof *row + key_len + spec_len + meta_len);
    if (!row)
        return NULL;
    row->hash = hash;
    row->key_len = key_len;
    row->spec_len = spec_len;
    row->meta_len = meta_len;
    row->stamp = 0;
    row->nodes = NULL;
    row->n_nodes = 0;
    memcpy(row->data, key, key_len);
    memcpy(row->data + key_len, spec.buf + spec.index, spec_len);
    memcpy(row->data + key_len + spec_len, metadata.buf + metadata.index, meta_len);
    if (set_nodes(row, nodes, n_nodes) != 0) {
        free(row);
        return NULL;
    }
    return row;
}

reg_row *registry_row_new(const char *key, uint32_t key_len, ph_term spec, ph_term metadata,
                          const reg_node_pid *nodes, uint16_t n_nodes)
{
    int spec_end = ph_term_end(spec), meta_end = ph_term_end(metadata);
    if (spec_end < 0 || meta_end < 0)
        return NULL;
    return row_build(key, key_len, hash_bytes(key, key_len), spec,
                     (uint32_t)(spec_end - spec.index), metadata,
                     (uint32_t)(meta_end - metadata.index), nodes, n_nodes);
}

void registry_row_free(reg_row *row)
{
    if (row)
        free_row(row);
}

reg_row *registry_insert_row(registry *r, reg_row *row)
{
    if (registry_reserve(r, 1) != 0)
        return NULL;
    int found;
    uint32_t slot = find_slot(r, row->data, row->key_len, row->hash, &found);
    if (found) {
        r->running -= r->slots[slot]->n_nodes != 0;
        if (!row->stamp)
            row->stamp = r->slots[slot]->stamp;
        free_row(r->slots[slot]);
    } else {
        r->count++;
        if (!r->slots[slot])
            r->used++;
    }
    r->slots[slot] = row;
    r->hashes[slot] = row->hash;
    OBSERVE(r, row);
    r->running += row->n_nodes != 0;
    return row;
}

reg_row *registry_put_sized(registry *r, const char *key, uint32_t key_len, uint32_t hash,
                            ph_term spec, uint32_t spec_len, ph_term metadata, uint32_t meta_len,
                            const reg_node_pid *nodes, uint16_t n_nodes)
{
    reg_row *old = NULL;
    if (!nodes) {
        /* keep the nodes of the row this one replaces */
        old = registry_get_hashed(r, key, key_len, hash);
        nodes = old ? old->nodes : NULL;
        n_nodes = old ? old->n_nodes : 0;
    }
    reg_row *row =
        row_build(key, key_len, hash, spec, spec_len, metadata, meta_len, nodes, n_nodes);
    if (row && !registry_insert_row(r, row)) {
        free_row(row);
        return NULL;
    }
    return row;
}

reg_row *registry_put(registry *r, const char *key, uint32_t key_len, ph_term spec,
                      ph_term metadata, const reg_node_pid *nodes, uint16_t n_nodes)
{
    int spec_end = ph_term_end(spec), meta_end = ph_term_end(metadata);
    if (spec_end < 0 || meta_end < 0)
        return NULL;
    return registry_put_sized(r, key, key_len, hash_bytes(key, key_len), spec,
                              (uint32_t)(spec_end - spec.index), metadata,
                              (uint32_t)(meta_end - metadata.index), nodes, n_nodes);
}

int registry_set_node(registry *r, reg_row *row, uint32_t node, ph_pid pid)
{
    for (uint16_t i = 0; i < row->n_nodes; i++) {
        if (row->nodes[i].node == node) {
            /* the same pid again (a member's periodic repair) is no change:
             * subscribers are not sent the row once more */
            if (!ph_pid_equal(row->nodes[i].pid, pid)) {
                OBSERVE(r, row);
                row->nodes[i].pid = pid;
            }
            return 0;
        }
    }
    OBSERVE(r, row);
    if (row->n_nodes == 0) {
        row->nodes = &row->inline_node;
        row->inline_node = (reg_node_pid){node, pid};
        row->n_nodes = 1;
        r->running++;
        return 0;
    }
    if (row->n_nodes == 0xffff)
        return -1;
    /* A replica more: the list grows in place (one realloc per added
     * replica, not an allocation and a copy of the whole list). */
    reg_node_pid *n;
    if (row->nodes == &row->inline_node) {
        n = malloc(2 * sizeof *n);
        if (n)
            n[0] = row->inline_node;
    } else {
        n = realloc(row->nodes, (row->n_nodes + 1u) * sizeof *n);
    }
    if (!n)
        return -1;
    n[row->n_nodes] = (reg_node_pid){node, pid};
    row->nodes = n;
    row->n_nodes++;
    return 0;
}

void registry_delete(registry *r, reg_row *row)
{
    int found;
    uint32_t slot = find_slot(r, row->data, row->key_len, row->hash, &found);
    if (!found)
        return;
    OBSERVE(r, row);
    r->slots[slot] = TOMBSTONE;
    r->count--;
    r->running -= row->n_nodes != 0;
    free_row(row);
}

/* Drops node's entry; with keep_empty the row stays when it was the last. */
static int remove_node(registry *r, reg_row *row, uint32_t node, int keep_empty)
{
    for (uint16_t i = 0; i < row->n_nodes; i++) {
        if (row->nodes[i].node != node)
            continue;
        OBSERVE(r, row);
        row->nodes[i] = row->nodes[row->n_nodes - 1];
        row->n_nodes--;
        if (row->n_nodes == 0) {
            r->running--;
            if (row->nodes != &row->inline_node) {
                free(row->nodes);
                row->nodes = &row->inline_node;
            }
            if (keep_empty)
                return 0;
            registry_delete(r, row);
            return 1;
        }
        if (row->n_nodes == 1 && row->nodes != &row->inline_node) {
            row->inline_node = row->nodes[0];
            free(row->nodes);
            row->nodes = &row->inline_node;
        }
        return 0;
    }
    return 0;
}

int registry_remove_node(registry *r, reg_row *row, uint32_t node)
{
    return remove_node(r, row, node, 0);
}

void registry_orphan_node(registry *r, reg_row *row, uint32_t node)
{
    remove_node(r, row, node, 1);
}

/* Rows are scattered in the heap: a walk of 100k rows (a reconcile, a
 * failover, the registry sent to a newcomer) would wait on a cache miss
 * per row. The row a few slots ahead is loaded while this one is used. */
#define NEXT_PREFETCH 32

reg_row *registry_next(registry *r, uint32_t *i)
{
    while (*i < r->cap) {
        uint32_t ahead = *i + NEXT_PREFETCH;
        if (ahead < r->cap) {
            const reg_row *next = r->slots[ahead];
            if (next && next != TOMBSTONE) {
                __builtin_prefetch(next);
                __builtin_prefetch((const char *)next + 64);
            }
        }
        reg_row *row = r->slots[(*i)++];
        if (row && row != TOMBSTONE)
            return row;
    }
    return NULL;
}

ph_term registry_until(char buf[16], uint64_t until_ms)
{
    int index = 0;
    /* 9 bytes at most (a small big): always fits */
    (void)ei_encode_longlong(buf, &index, (long long)until_ms);
    return (ph_term){buf, 0};
}

int registry_refresh_until(reg_row *row, uint64_t until_ms)
{
    char t[16];
    int len = 0;
    if (ei_encode_longlong(t, &len, (long long)until_ms) != 0 || (uint32_t)len != row->spec_len)
        return -1;
    char *spec = row->data + row->key_len;
    if (row->meta_len == row->spec_len && memcmp(spec + row->spec_len, spec, row->spec_len) == 0)
        memcpy(spec + row->spec_len, t, (size_t)len);
    memcpy(spec, t, (size_t)len);
    return 0;
}

uint32_t registry_prune_expired(registry *r, uint64_t now_ms)
{
    uint32_t i = 0, gone = 0;
    reg_row *row;
    while ((row = registry_next(r, &i)) != NULL) {
        int index = 0;
        long long until = 0;
        if (ei_decode_longlong(reg_row_spec(row).buf, &index, &until) != 0 ||
            (uint64_t)until <= now_ms) {
            registry_delete(r, row); /* iteration goes on past a deleted slot */
            gone++;
        }
    }
    return gone;
}

/* The external format of a node-name atom, kept for the last node asked
 * (every row of a stream or a query names the same few nodes): 0 and the
 * bytes, or -1 when the name is not plain ASCII (ei encodes those). */
static int node_atom_bytes(uint32_t node, const unsigned char **bytes, size_t *len)
{
    static _Thread_local uint32_t last = ATOM_NONE;
    static _Thread_local unsigned char enc[2 + 255];
    static _Thread_local size_t enc_len;
    if (node != last) {
        const char *text = atom_text(node);
        size_t n = strlen(text);
        if (n == 0 || n > 255)
            return -1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)text[i] >= 0x80)
                return -1;
        enc[0] = ERL_SMALL_ATOM_UTF8_EXT;
        enc[1] = (unsigned char)n;
        memcpy(enc + 2, text, n);
        enc_len = n + 2;
        last = node;
    }
    *bytes = enc;
    *len = enc_len;
    return 0;
}

static unsigned char *put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

/* [{Node, Pid}] written as bytes (the same ones ei writes: the pid's
 * numbers masked to 15 and 13 bits, NEW_PID_EXT when the creation needs more
 * than 2 bits); names that are not plain ASCII go through ei, as UTF-8 (the
 * text ei decoded them into; encoding it as Latin-1 garbled such names). */
int registry_encode_nodes(ph_buf *b, const reg_row *row)
{
    if (ph_buf_reserve(b, 80u * row->n_nodes + 8) != 0)
        return -1;
    for (uint16_t i = 0; i < row->n_nodes; i++) {
        const unsigned char *atom;
        size_t alen;
        ph_pid pid = row->nodes[i].pid;
        const unsigned char *pid_atom;
        size_t plen;
        if (node_atom_bytes(row->nodes[i].node, &atom, &alen) != 0 ||
            node_atom_bytes(pid.node, &pid_atom, &plen) != 0 || pid.node != row->nodes[i].node) {
            /* atom texts are UTF-8 (as ei decodes them): encoded as such */
            const char *name = atom_text(row->nodes[i].node);
            if (ei_x_encode_list_header(b, 1) != 0 || ei_x_encode_tuple_header(b, 2) != 0 ||
                ei_x_encode_atom_len_as(b, name, (int)strlen(name), ERLANG_UTF8, ERLANG_UTF8) !=
                    0 ||
                ph_encode_pid(b, pid) != 0)
                return -1;
            continue;
        }
        /* list cell, 2-tuple, node, pid: at most 5 + 2 + 2 * 257 + 13 bytes */
        if (ph_buf_reserve(b, 5 + 2 + 2 * alen + 13) != 0)
            return -1;
        unsigned char *p = (unsigned char *)b->buff + b->index;
        *p++ = ERL_LIST_EXT;
        p = put_be32(p, 1);
        *p++ = ERL_SMALL_TUPLE_EXT;
        *p++ = 2;
        memcpy(p, atom, alen);
        p += alen;
        int wide = pid.creation > 3;
        *p++ = wide ? ERL_NEW_PID_EXT : ERL_PID_EXT;
        memcpy(p, atom, alen);
        p += alen;
        p = put_be32(p, pid.num & 0x7fff);
        p = put_be32(p, pid.serial & 0x1fff);
        if (wide)
            p = put_be32(p, pid.creation);
        else
            *p++ = (unsigned char)(pid.creation & 0x03);
        b->index = (int)(p - (unsigned char *)b->buff);
    }
    return ei_x_encode_empty_list(b) == 0 ? 0 : -1;
}
