/* handoff.c - what a hand-off may not take: ids stopped a moment ago
 * (their tombs: tombs.c), children this node is moving away (the moving
 * set) and, under a sticky strategy, the children moved here whose old
 * copy has yet to stop (the moved-in set). */
#include "hub/hub_internal.h"

/* --- moving ids ------------------------------------------------------- */

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
