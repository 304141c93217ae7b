/* stop_await.c - an awaited stop_children and the members: every member
 * confirms it (stop_await / stop_done) before the caller gets the answer. */
#include "hub/hub_internal.h"

/* An awaited stop returns once every member has stopped its copy or
 * forgotten the row: a registry still holding the row when a node it names
 * is lost (a cut a moment after the stop returned) would restart a child
 * the caller was told is stopped. */

/* Sends stop_await for cids to every member and makes w wait for their
 * stop_done. 0, or -1 when w cannot wait (the plain stop is sent then). */
int stop_await_members(hub *h, ph_ctx *ctx, stop_wait *w, ph_term cids)
{
    ph_buf msg;
    int n = h->members.n;
    if (n == 0 || !(w->awaiting = malloc((size_t)n * sizeof *w->awaiting)))
        return -1;
    if (ph_buf_init(&msg) != 0) {
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
    w->outstanding++;
    w->next = h->stop_waits;
    h->stop_waits = w;
    return 0;
}

/* Takes node out of w's awaited members; when none is left, w leaves the
 * hub's list (*link points at it there) and is done. Returns 1 then. */
static int stop_wait_drop(stop_wait **link, uint32_t node)
{
    stop_wait *w = *link;
    for (int i = 0; i < w->n_awaiting; i++)
        if (w->awaiting[i] == node) {
            w->awaiting[i] = w->awaiting[--w->n_awaiting];
            break;
        }
    if (w->n_awaiting > 0)
        return 0;
    *link = w->next;
    w->outstanding--;
    stop_wait_done(w);
    return 1;
}

void stop_wait_confirmed(hub *h, const ph_ref *ref, uint32_t node)
{
    for (stop_wait **link = &h->stop_waits; *link; link = &(*link)->next)
        if (ph_ref_equal(&(*link)->ref, ref)) {
            stop_wait_drop(link, node);
            return;
        }
}

void stop_waits_node_gone(hub *h, uint32_t node)
{
    stop_wait **link = &h->stop_waits;
    while (*link)
        if (!stop_wait_drop(link, node))
            link = &(*link)->next;
}

void stop_waits_finish(hub *h)
{
    while (h->stop_waits) {
        stop_wait *w = h->stop_waits;
        w->n_awaiting = 1;
        stop_wait_drop(&h->stop_waits, w->awaiting[0]);
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
