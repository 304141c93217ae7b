/* handoff.c - what a hand-off may not take: ids stopped a moment ago
 * (tombstones) and children this node is moving away (the moving set);
 * and, under a sticky strategy, the children moved here whose old copy
 * has yet to stop (the moved-in set). */
#include "hub/hub_internal.h"

/* --- stopped ids and moving ids ----------------------------------------- */

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

/* A hand-off of key comes after its stop: a tomb newer than our row. */
static int handoff_stopped(hub *h, const char *key, uint32_t key_len)
{
    uint64_t tomb = tomb_stamp(h, key, key_len);
    if (!tomb)
        return 0;
    reg_row *row = registry_get(h->reg, key, key_len);
    return !row || tomb > row->stamp;
}

/* The member a local child is being moved to, or ATOM_NONE. */
uint32_t moving_target(hub *h, const char *key, uint32_t key_len)
{
    reg_row *m = registry_count(h->moving) ? registry_get(h->moving, key, key_len) : NULL;
    return m && m->n_nodes ? m->nodes[0].node : ATOM_NONE;
}

/* Whether a hand-off of spec is refused (see handoff_filter). */
static int handoff_refused(hub *h, ph_term spec)
{
    spec_info s;
    ph_buf *key = &h->key_scratch;
    key->index = 0;
    return parse_spec(spec, &s) == 0 && registry_key(s.id, key) == 0 &&
           (handoff_stopped(h, key->buff, (uint32_t)key->index) ||
            moving_target(h, key->buff, (uint32_t)key->index) != ATOM_NONE);
}

/* The specs of a hand-off this node accepts, in out: not a child stopped
 * since the sender decided (the stop overtook the hand-off: a tomb newer
 * than the line of copies our row names, or any tomb when we have no row),
 * nor one this node is itself moving away (both copies would stop). The
 * sender keeps what is refused. Returns the number refused. When none is
 * (the common case: a join hands the newcomer a third of the children),
 * out is left empty and specs themselves are what is accepted: no copy. */
int handoff_filter(hub *h, ph_term specs, ph_buf *out)
{
    list_walk w;
    ph_term spec;
    elist keep;
    int refused = 0;
    if (h->leaving) { /* on our way out: the sender keeps them */
        ph_build(out, "[]");
        return list_begin(&w, specs) > 0 ? w.left : 0;
    }
    if (list_begin(&w, specs) < 0)
        return 0;
    while (list_next(&w, &spec) > 0 && !refused)
        refused = handoff_refused(h, spec);
    if (!refused || list_begin(&w, specs) < 0 || elist_init(&keep) != 0)
        return 0; /* (out of memory: all of them start) */
    refused = 0;
    while (list_next(&w, &spec) > 0) {
        if (handoff_refused(h, spec))
            refused++;
        else if (ph_buf_append_term(&keep.b, spec) == 0)
            keep.n++;
    }
    elist_to(out, &keep);
    elist_free(&keep);
    return refused;
}

/* Puts the ids of a move into the moving set (on), or takes them out. */
void moving_mark(hub *h, const move *mv, int on)
{
    list_walk w;
    ph_term cid;
    ph_buf key;
    if (ph_buf_init(&key) != 0)
        return;
    struct term_trust saved = term_trust_push(mv->cids.buff, mv->cids.index);
    if (list_begin(&w, ph_buf_term(&mv->cids)) >= 0)
        while (list_next(&w, &cid) > 0) {
            key.index = 0;
            if (registry_key(cid, &key) != 0)
                continue;
            reg_row *r = registry_get(h->moving, key.buff, (uint32_t)key.index);
            reg_node_pid np = {mv->target, {0}};
            if (on && !registry_put(h->moving, key.buff, (uint32_t)key.index, cid, cid, &np, 1))
                LOG_W("hub", "%s: out of memory marking a moving child", h->cfg.hub_id);
            else if (!on && r && r->nodes[0].node == mv->target)
                registry_delete(h->moving, r);
        }
    term_trust_pop(saved);
    ph_buf_free(&key);
}

/* --- children moved here ------------------------------------------------- */

/* A move here (under a sticky strategy) was accepted: until until_ms (the
 * sender's move timeout and handover wait) each of specs' ids is ours
 * while the row still lists from's copy. The sender stops that copy once
 * it has our answer, or stops ours (undo_move) at its timeout; meanwhile
 * a view of ours that places the child elsewhere (another scoreboard)
 * must not send it back or on. */
void moved_in_mark(hub *h, ph_term specs, uint32_t from, uint64_t until_ms)
{
    list_walk w;
    ph_term spec;
    char t[16];
    ph_buf *key = &h->key_scratch;
    ph_term until = registry_until(t, until_ms);
    reg_node_pid np = {from, {0}};
    if (list_begin(&w, specs) < 0)
        return;
    while (list_next(&w, &spec) > 0) {
        spec_info s;
        key->index = 0;
        if (parse_spec(spec, &s) != 0 || registry_key(s.id, key) != 0)
            continue;
        if (!registry_put(h->moved_in, key->buff, (uint32_t)key->index, until, until, &np, 1))
            LOG_W("hub", "%s: out of memory marking a child moved here", h->cfg.hub_id);
    }
}

/* 1 when row's copy here came by a move whose sender's copy the row still
 * lists, within the move's time. */
int moved_in_holds(hub *h, const reg_row *row)
{
    reg_row *m =
        registry_count(h->moved_in) ? registry_get(h->moved_in, row->data, row->key_len) : NULL;
    int index = 0, here = 0, sender = 0;
    long long until = 0;
    if (!m || !m->n_nodes || ei_decode_longlong(reg_row_spec(m).buf, &index, &until) != 0 ||
        (uint64_t)until <= monotonic_ms())
        return 0;
    for (uint16_t i = 0; i < row->n_nodes; i++) {
        here |= row->nodes[i].node == h->self_node;
        sender |= row->nodes[i].node == m->nodes[0].node;
    }
    return here && sender;
}

void moved_in_prune(hub *h)
{
    registry_prune_expired(h->moved_in, monotonic_ms());
}
