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
        atom_encode(&msg, h->self_node) != 0 || ph_buf_append_term(&msg, cids) != 0 ||
        ei_x_encode_ulonglong(&msg, (unsigned long long)w->stamp) != 0) {
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

void unconfirmed_stops_add(hub *h, ph_term cids, uint32_t node, uint64_t stamp)
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
                : !(row = registry_put(h->unconfirmed_stops, key->buff, (uint32_t)key->index, until,
                                       cid, &np, 1))) {
            LOG_W("hub", "%s: out of memory remembering a stop %s missed", h->cfg.hub_id,
                  atom_text(node));
            break;
        }
        if (stamp > row->stamp) /* the latest stop of the id */
            row->stamp = stamp;
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
                unconfirmed_stops_add(h, ph_buf_term(&w->cids), node, w->stamp);
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

/* {'$ph_hub', stop_await, Ref, Node, [Cid], Stamp}: stopped or forgotten
 * here as a stop is, then confirmed. From a node that is not a member as
 * well: the user's stop applies, and the asker is waiting for us. */
void stop_awaited_here(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    ph_buf msg;
    hub_stamp_seen(h, m->seq);
    stop_batch_at(h, ctx, m->term, NULL, STOP_REMOTE, m->seq);
    if (ph_buf_init(&msg) != 0)
        return;
    if (hub_msg_begin(&msg, HM_STOP_DONE) == 0 && ph_encode_ref(&msg, &m->ref) == 0 &&
        atom_encode(&msg, h->self_node) == 0 && ph_build(&msg, "ok") == 0)
        ph_send_named(ctx, h->cfg.hub_id, atom_text(m->node), ph_buf_term(&msg));
    ph_buf_free(&msg);
}

/* --- stops a member missed ------------------------------------------------ */

/* {'$ph_hub', stop_late, Self, [{Cid, Stamp}]} of l's entries to node. */
void send_stop_late_to(hub *h, ph_ctx *ctx, uint32_t node, const elist *l)
{
    member *m = membership_find(&h->members, node);
    ph_buf msg, list;
    if (!m || !l->n || ph_buf_init(&msg) != 0)
        return;
    if (ph_buf_init(&list) == 0) {
        if (elist_to(&list, l) == 0 && hub_msg_begin(&msg, HM_STOP_LATE) == 0 &&
            atom_encode(&msg, h->self_node) == 0 &&
            ph_buf_append_term(&msg, ph_buf_term(&list)) == 0)
            ph_send(ctx, m->hub, ph_buf_term(&msg));
        ph_buf_free(&list);
    }
    ph_buf_free(&msg);
}

/* A node that becomes a member gets every stop kept here, not only those
 * it missed itself: a node back under its name after a restart, or a
 * newcomer, may be handed a copy of a stopped child at the heal by a node
 * that missed the stop as well, and must refuse it or stop it. Each stop
 * carries its stamp: a copy of a line started after the stop stays. */
void unconfirmed_stops_send(hub *h, ph_ctx *ctx, uint32_t node)
{
    uint32_t i = 0;
    reg_row *row;
    elist ids;
    int missed = 0;
    if (!registry_count(h->unconfirmed_stops) || elist_init(&ids) != 0)
        return;
    while ((row = registry_next(h->unconfirmed_stops, &i)) != NULL) {
        elist_add(&ids, "{~t, ~u}", reg_row_meta(row), (unsigned long long)row->stamp);
        for (uint16_t x = 0; x < row->n_nodes; x++)
            if (row->nodes[x].node == node) {
                missed++;
                registry_remove_node(h->unconfirmed_stops, row, node); /* the last: row deleted */
                break;
            }
    }
    if (ids.n) {
        LOG_I("hub",
              "%s: %s is back and missed the stop of %d child(ren); sent with the %d other "
              "stop(s) kept here",
              h->cfg.hub_id, atom_text(node), missed, ids.n - missed);
        send_stop_late_to(h, ctx, node, &ids);
    }
    elist_free(&ids);
}

/* One run of entries with the same stamp: the rows it names on other
 * nodes (not from, where it came from) get it next, and it is applied
 * here as a member's stop made at that stamp. */
static void stop_late_run(hub *h, ph_ctx *ctx, uint32_t from, elist *run, uint64_t stamp)
{
    ph_buf list;
    list_walk w;
    ph_term cid;
    elist fwd;
    uint8_t *to = NULL;
    if (!run->n || ph_buf_init(&list) != 0)
        return;
    if (elist_to(&list, run) != 0 || elist_init(&fwd) != 0) {
        ph_buf_free(&list);
        return;
    }
    if (h->members.n && !(to = calloc((size_t)h->members.n, 1)))
        LOG_W("hub", "%s: out of memory passing %d kept stop(s) on to other members", h->cfg.hub_id,
              run->n);
    list_begin(&w, ph_buf_term(&list));
    while (list_next(&w, &cid) > 0) {
        reg_row *row = registry_find(h->reg, cid, &h->key_scratch);
        int named = 0;
        for (uint16_t x = 0; row && x < row->n_nodes; x++) {
            uint32_t n = row->nodes[x].node;
            if (n == h->self_node || n == from)
                continue;
            for (int k = 0; to && k < h->members.n; k++)
                if (h->members.members[k].node == n)
                    to[k] = named = 1;
        }
        if (named)
            elist_add(&fwd, "{~t, ~u}", cid, (unsigned long long)stamp);
    }
    for (int k = 0; to && fwd.n && k < h->members.n; k++)
        if (to[k])
            send_stop_late_to(h, ctx, h->members.members[k].node, &fwd);
    free(to);
    elist_free(&fwd);
    stop_batch_at(h, ctx, ph_buf_term(&list), NULL, STOP_LATE, stamp);
    ph_buf_free(&list);
}

/* Stops kept by a member for nodes that missed them (unconfirmed_stops_send,
 * or passed on by stop_late_run): each stops the copies of its id whose
 * line was started before it, here and on the nodes our row names, and
 * leaves a tomb that refuses a hand-off of such a copy. A line started
 * after the stop (its row's stamp is newer) is left alone. */
void stop_late(hub *h, ph_ctx *ctx, uint32_t from, ph_term list)
{
    list_walk w;
    ph_term e, cid;
    unsigned long long stamp, run_stamp = 0;
    elist run;
    int bad = 0, newer = 0;
    if (list_begin(&w, list) < 0) {
        LOG_W("hub", "%s: ignored a malformed stop_late message from %s", h->cfg.hub_id,
              atom_text(from));
        return;
    }
    if (elist_init(&run) != 0)
        return;
    while (list_next(&w, &e) > 0) {
        h->key_scratch.index = 0;
        if (ph_match(e, "{~t, ~u}", &cid, &stamp) != 1 || stamp == 0 ||
            registry_key(cid, &h->key_scratch) != 0) {
            bad++;
            continue;
        }
        hub_stamp_seen(h, stamp);
        reg_row *row = registry_get(h->reg, h->key_scratch.buff, (uint32_t)h->key_scratch.index);
        if (row && row->stamp >= stamp) { /* started again after that stop */
            newer++;
            continue;
        }
        if (run.n && stamp != run_stamp) {
            stop_late_run(h, ctx, from, &run, run_stamp);
            elist_free(&run);
            if (elist_init(&run) != 0)
                return;
        }
        run_stamp = stamp;
        elist_add(&run, "~t", cid);
    }
    stop_late_run(h, ctx, from, &run, run_stamp);
    elist_free(&run);
    if (bad)
        LOG_W("hub", "%s: %d malformed entr(ies) in a stop_late message from %s ignored",
              h->cfg.hub_id, bad, atom_text(from));
    if (newer)
        LOG_I("hub", "%s: %d stop(s) kept by %s left alone: started again since", h->cfg.hub_id,
              newer, atom_text(from));
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
