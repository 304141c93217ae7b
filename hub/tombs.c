/* tombs.c - the tombs: ids this node stopped in the last TOMB_MS, with the
 * stop's stamp, so that a hand-off or registration sent before the stop
 * and arriving after it does not bring the child back. */
#include "hub/hub_internal.h"

/* How long a stopped id refuses hand-offs. A hand-off races a stop only
 * while both are in flight; 30 s covers any move (migr_base_timeout) and
 * any orphan check. */
#define TOMB_MS 30000

/* The tomb filter: 2^21 bits (256 KiB), two bits per tomb. With 200k
 * tombs (two rounds of 100k stops within TOMB_MS) about 3% of the ids
 * without a tomb still need the lookup. */
#define TOMB_FILTER_BITS (1u << 21)

static void tomb_bits(uint32_t hash, uint32_t *a, uint32_t *b)
{
    /* two positions from the key's hash, mixed away from the low bits
     * the tables index by */
    *a = (hash * 0x9e3779b1u) >> 11;
    *b = ((hash ^ (hash >> 15)) * 0x85ebca6bu) >> 11;
}

static void tomb_filter_set(hub *h, uint32_t hash)
{
    uint32_t a, b;
    if (!h->tomb_filter && !(h->tomb_filter = calloc(TOMB_FILTER_BITS / 64, sizeof(uint64_t))))
        return;
    tomb_bits(hash, &a, &b);
    h->tomb_filter[a / 64] |= 1ull << (a % 64);
    h->tomb_filter[b / 64] |= 1ull << (b % 64);
}

/* 0 when the id of this hash has certainly no tomb. */
static int tomb_maybe(const hub *h, uint32_t hash)
{
    uint32_t a, b;
    if (!registry_count(h->tombs))
        return 0;
    if (!h->tomb_filter) /* out of memory when it was made: ask the table */
        return 1;
    tomb_bits(hash, &a, &b);
    return (h->tomb_filter[a / 64] >> (a % 64) & 1) && (h->tomb_filter[b / 64] >> (b % 64) & 1);
}

/* The tomb of key, or NULL: the filter answers most ids without a lookup. */
static reg_row *tomb_find(hub *h, const char *key, uint32_t key_len)
{
    if (!registry_count(h->tombs))
        return NULL;
    uint32_t hash = registry_hash(key, key_len);
    return tomb_maybe(h, hash) ? registry_get_hashed(h->tombs, key, key_len, hash) : NULL;
}

void tomb_add(hub *h, const char *key, uint32_t key_len, uint64_t stamp)
{
    /* This runs per stopped child: the expiry is encoded on the stack, a
     * tomb already there (the id stopped again within TOMB_MS) is moved
     * in place, and a tomb names no node (a non-NULL empty list spares
     * registry_put the lookup that keeps a replaced row's nodes). A tomb
     * keeps the latest stop's stamp. */
    static const reg_node_pid no_nodes;
    char t[16];
    uint64_t until_ms = monotonic_ms() + TOMB_MS;
    reg_row *row = tomb_find(h, key, key_len);
    uint64_t had = row ? (row->stamp ? row->stamp : 1) : 0, keep = stamp > had ? stamp : had;
    if (row && registry_refresh_until(row, until_ms) == 0) {
        row->stamp = keep;
        return;
    }
    ph_term until = registry_until(t, until_ms);
    row = registry_put(h->tombs, key, key_len, until, until, &no_nodes, 0);
    if (row) {
        row->stamp = keep;
        tomb_filter_set(h, row->hash);
    } else {
        LOG_W("hub", "%s: out of memory remembering a stopped id", h->cfg.hub_id);
    }
}

void tomb_clear(hub *h, const char *key, uint32_t key_len)
{
    reg_row *t = tomb_find(h, key, key_len);
    if (t)
        registry_delete(h->tombs, t);
}

uint64_t tomb_stamp(hub *h, const char *key, uint32_t key_len)
{
    /* asked for every registered row a member publishes: no hash when
     * there is no tomb at all, the common case (tomb_find) */
    reg_row *t = tomb_find(h, key, key_len);
    return t ? (t->stamp ? t->stamp : 1) : 0;
}

int tomb_holds(hub *h, const reg_row *row)
{
    return tomb_stamp(h, row->data, row->key_len) > row->stamp;
}

void tombs_prune(hub *h)
{
    uint32_t i = 0;
    reg_row *t;
    /* The filter cannot forget: made again from the tombs left. */
    if (registry_prune_expired(h->tombs, monotonic_ms()) && h->tomb_filter) {
        memset(h->tomb_filter, 0, TOMB_FILTER_BITS / 8);
        i = 0;
        while ((t = registry_next(h->tombs, &i)) != NULL)
            tomb_filter_set(h, t->hash);
    }
}
