/* stop_await.c - an awaited stop_children and the members: every member
 * confirms it (stop_await / stop_done) before the caller gets the answer,
 * and a member that never confirmed gets the stop when it is back. */
#include "hub/hub_internal.h"

/* An awaited stop returns once every member has stopped its copy or
 * forgotten the row: a registry still holding the row when a node it names
 * is lost (a cut a moment after the stop returned) would restart a child
 * the caller was told is stopped. A member lost before it confirmed (a cut
 * while the stop was on its way) may still run its copy, or restart one:
 * the ids are kept for it, and when it is a member again (the split
 * heals) it is sent the stop before our rows. */

/* How long a member that missed a stop is waited for, and how many ids
 * are kept at most (a member that died for good is waited for too: each
 * stop while it is lost is kept for it). Beyond the limit a stop is not
 * kept, and a warning says so. */
#define UNCONFIRMED_STOP_MS (3600 * 1000)
#define UNCONFIRMED_STOPS_MAX 1000000u

/* Sends stop_await for cids to every member and makes w wait for their
 * stop_done. 0, or -1 when w cannot wait (the plain stop is sent then). */
int stop_await_members(hub *h, ph_ctx *ctx, stop_wait *w, ph_term cids)
{
    ph_buf msg;
    int n = h->members.n;
    if (n == 0 || !(w->awaiting = malloc((size_t)n * sizeof *w->awaiting)))
        return -1;
    if (ph_buf_init(&msg) != 0 || ph_buf_init(&w->cids) != 0 ||
        ph_buf_append_term(&w->cids, cids) != 0) {
        ph_buf_free(&msg);
        free(w->awaiting);
        w->awaiting = NULL;
        return -1;
    }
    w->ref = ph_make_ref();
    if (hub_msg_begin(&msg, HM_STOP_AWAIT) != 0 || ph_encode_ref(&msg, &w->ref) != 0 ||
        atom_encode(&msg, h->self_node) != 0 || ph_buf_append_term(&msg, cids) != 0) {
        ph_buf_free(&msg);
        free(w->awaiting);
        w->awaiting = NULL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        member *m = &h->members.members[i];
        w->awaiting[w->n_awaiting++] = m->node;
        ph_send(ctx, m->hub, ph_buf_term(&msg));
    }
    ph_buf_free(&msg);
    ph_buf t;
    if (ph_buf_init(&t) == 0 && ph_encode_ref(&t, &w->ref) == 0)
        send_self_after(ctx, (unsigned)w->timeout_ms, "{'$ph_hub', ~a, ~t}",
                        hub_msg_name(HM_STOP_TIMEOUT), ph_buf_term(&t));
    ph_buf_free(&t);
    w->outstanding++;
    w->next = h->stop_waits;
    h->stop_waits = w;
    return 0;
}

void unconfirmed_stops_add(hub *h, ph_term cids, uint32_t node)
{
    ph_iter it;
    ph_term cid;
    ph_buf kb, *key = &kb;
    char t[16];
    ph_term until = registry_until(t, monotonic_ms() + UNCONFIRMED_STOP_MS);
    if (ph_iter_begin(&it, cids) < 0 || ph_buf_init(&kb) != 0)
        return;
    reg_node_pid np = {node, {0}};
    while (ph_iter_next(&it, &cid) > 0) {
        key->index = 0;
        if (registry_key(cid, key) != 0)
            continue;
        reg_row *row = registry_get(h->unconfirmed_stops, key->buff, (uint32_t)key->index);
        if (!row && registry_count(h->unconfirmed_stops) >= UNCONFIRMED_STOPS_MAX) {
            LOG_W("hub",
                  "%s: %u stopped ids are kept for members that missed their stop already; "
                  "%s will not get the stop of the others when it is back",
                  h->cfg.hub_id, UNCONFIRMED_STOPS_MAX, atom_text(node));
            break;
        }
        if (row ? registry_set_node(h->unconfirmed_stops, row, node, np.pid) != 0
                : !registry_put(h->unconfirmed_stops, key->buff, (uint32_t)key->index, until, cid,
                                &np, 1)) {
            LOG_W("hub", "%s: out of memory remembering a stop %s missed", h->cfg.hub_id,
                  atom_text(node));
            break;
        }
    }
    ph_buf_free(&kb);
}

/* Takes node out of w's awaited members (lost: it left before it
 * answered, and its ids are kept for it); when none is left, w leaves the hub's list (*link
 * points at it there) and is done. Returns 1 then. */
static int stop_wait_drop(hub *h, stop_wait **link, uint32_t node, int lost)
{
    stop_wait *w = *link;
    for (int i = 0; i < w->n_awaiting; i++)
        if (w->awaiting[i] == node) {
            w->awaiting[i] = w->awaiting[--w->n_awaiting];
            if (lost)
                unconfirmed_stops_add(h, ph_buf_term(&w->cids), node);
            break;
        }
    if (w->n_awaiting > 0)
        return 0;
    *link = w->next;
    w->outstanding--;
    stop_wait_done(w);
    return 1;
}

static stop_wait **stop_wait_find(hub *h, const ph_ref *ref)
{
    for (stop_wait **link = &h->stop_waits; *link; link = &(*link)->next)
        if (ph_ref_equal(&(*link)->ref, ref))
            return link;
    return NULL;
}

void stop_wait_confirmed(hub *h, const ph_ref *ref, uint32_t node)
{
    stop_wait **link = stop_wait_find(h, ref);
    if (link)
        stop_wait_drop(h, link, node, 1);
}

void stop_waits_node_gone(hub *h, uint32_t node)
{
    stop_wait **link = &h->stop_waits;
    while (*link)
        if (!stop_wait_drop(h, link, node, 1))
            link = &(*link)->next;
}

/* The stop's timeout: it answers now, naming the members that did not
 * confirm (as a start names an owner that did not answer). They are
 * members still: the stop_await reaches them on the same connection. */
void stop_timed_out(hub *h, const ph_ref *ref)
{
    stop_wait **link = stop_wait_find(h, ref);
    if (!link)
        return;
    stop_wait *w = *link;
    for (int i = 0; i < w->n_awaiting; i++)
        elist_add(&w->errors, "{undefined, ~a, node_receive_timeout}", atom_text(w->awaiting[i]));
    while (!stop_wait_drop(h, link, w->awaiting[0], 0))
        ;
}

void stop_waits_finish(hub *h)
{
    while (h->stop_waits) {
        stop_wait *w = h->stop_waits;
        w->n_awaiting = 1;
        stop_wait_drop(h, &h->stop_waits, w->awaiting[0], 0);
    }
}

/* {'$ph_hub', stop_await, Ref, Node, [Cid]}: stopped or forgotten here as a
 * stop is, then confirmed. From a node that is not a member as well: the
 * user's stop applies, and the asker is waiting for us. */
void stop_awaited_here(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    ph_buf msg;
    stop_batch(h, ctx, m->term, NULL, STOP_REMOTE);
    if (ph_buf_init(&msg) != 0)
        return;
    if (hub_msg_begin(&msg, HM_STOP_DONE) == 0 && ph_encode_ref(&msg, &m->ref) == 0 &&
        atom_encode(&msg, h->self_node) == 0 && ph_build(&msg, "ok") == 0)
        ph_send_named(ctx, h->cfg.hub_id, atom_text(m->node), ph_buf_term(&msg));
    ph_buf_free(&msg);
}

/* --- stops a member missed ------------------------------------------------ */

void unconfirmed_stops_send(hub *h, ph_ctx *ctx, uint32_t node)
{
    uint32_t i = 0;
    reg_row *row;
    elist ids;
    ph_buf l;
    if (!registry_count(h->unconfirmed_stops) || elist_init(&ids) != 0)
        return;
    while ((row = registry_next(h->unconfirmed_stops, &i)) != NULL)
        for (uint16_t x = 0; x < row->n_nodes; x++)
            if (row->nodes[x].node == node) {
                elist_add(&ids, "~t", reg_row_meta(row));
                registry_remove_node(h->unconfirmed_stops, row, node); /* the last: row deleted */
                break;
            }
    if (ids.n && ph_buf_init(&l) == 0) {
        if (elist_to(&l, &ids) == 0) {
            LOG_I("hub", "%s: %s is back and missed the stop of %d child(ren): sent again",
                  h->cfg.hub_id, atom_text(node), ids.n);
            send_stop(h, ctx, node, ph_buf_term(&l));
        }
        ph_buf_free(&l);
    }
    elist_free(&ids);
}

void unconfirmed_stop_clear(hub *h, const char *key, uint32_t key_len)
{
    reg_row *row = registry_count(h->unconfirmed_stops)
                       ? registry_get(h->unconfirmed_stops, key, key_len)
                       : NULL;
    if (row)
        registry_delete(h->unconfirmed_stops, row);
}

void unconfirmed_stops_prune(hub *h)
{
    registry_prune_expired(h->unconfirmed_stops, monotonic_ms());
}
