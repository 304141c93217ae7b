/* awaited_start.c - awaitable starts spread over several members: answers
 * expected per node, timeouts, rollback of late answers. */
#include "hub/hub_internal.h"

/* Merges a start result {ok, #{started, errors, ...}} into started/errors. */
void merge_result(elist *started, elist *errors, ph_term result)
{
    ph_term map, v;
    if (ph_match(result, "{ok, ~t}", &map) != 1)
        return;
    if (ph_map_get_atom(map, "started", &v) == 1)
        elist_extend(started, v);
    if (ph_map_get_atom(map, "errors", &v) == 1)
        elist_extend(errors, v);
}

/* Stops the children of a started list [{Cid, [{Node, Pid}]}] wherever
 * they run (stop_batch forwards to members). */
void stop_started(hub *h, ph_ctx *ctx, ph_term started)
{
    elist cids;
    list_walk w;
    ph_term e, cid;
    ph_buf l;
    if (elist_init(&cids) != 0)
        return;
    ph_buf_init(&l);
    list_begin(&w, started);
    while (list_next(&w, &e) > 0)
        if (ph_match(e, "{~t, _}", &cid) == 1)
            elist_add(&cids, "~t", cid);
    if (cids.n) {
        elist_to(&l, &cids);
        stop_batch(h, ctx, ph_buf_term(&l), NULL, STOP_ANYWHERE);
    }
    elist_free(&cids);
    ph_buf_free(&l);
}

/* With replication every owner reports its own copy: the started list
 * gets one {Cid, [{Node, Pid}, ...]} per child, with every replica, in the
 * order the children were first reported (a third of the entries and of
 * the ids to decode with rf 3). Left as it is when out of memory. */
static void group_replicas(pending_start *ps)
{
    registry *by_id = registry_new();
    elist order, grouped;
    ph_buf all, key;
    list_walk w;
    ph_term e, cid, nps, np, node_t, pid_t;
    if (!by_id || elist_init(&order) != 0) {
        registry_free(by_id);
        return;
    }
    if (elist_init(&grouped) != 0 || ph_buf_init(&all) != 0 || ph_buf_init(&key) != 0 ||
        elist_to(&all, &ps->started) != 0) {
        registry_free(by_id);
        elist_free(&order);
        elist_free(&grouped);
        ph_buf_free(&all);
        ph_buf_free(&key);
        return;
    }
    int ok = 1;
    struct term_trust saved = term_trust_push(all.buff, all.index); /* our own encoding */
    list_begin(&w, ph_buf_term(&all));
    while (ok && list_next(&w, &e) > 0) {
        list_walk nw;
        if (ph_match(e, "{~t, ~t}", &cid, &nps) != 1 || list_begin(&nw, nps) < 0)
            continue;
        key.index = 0;
        if (registry_key(cid, &key) != 0)
            continue;
        reg_row *row = registry_get(by_id, key.buff, (uint32_t)key.index);
        while (ok && list_next(&nw, &np) > 0) {
            char name[PH_ATOM_BUF];
            reg_node_pid x;
            if (ph_match(np, "{~t, ~t}", &node_t, &pid_t) != 1 ||
                ph_match(node_t, "~a", name) != 1 || ph_decode_pid(pid_t, &x.pid) != 0 ||
                (x.node = atom_intern(name)) == ATOM_NONE)
                continue;
            if (!row) {
                row = registry_put(by_id, key.buff, (uint32_t)key.index, cid, cid, &x, 1);
                ok = row != NULL && ph_buf_append_term(&order.b, cid) == 0;
                order.n += ok;
            } else {
                ok = registry_set_node(by_id, row, x.node, x.pid) == 0;
            }
        }
    }
    if (ok) {
        ph_buf ids;
        if (ph_buf_init(&ids) == 0 && elist_to(&ids, &order) == 0) {
            list_begin(&w, ph_buf_term(&ids));
            while (ok && list_next(&w, &cid) > 0) {
                key.index = 0;
                reg_row *row = registry_key(cid, &key) == 0
                                   ? registry_get(by_id, key.buff, (uint32_t)key.index)
                                   : NULL;
                ok = row && ei_x_encode_tuple_header(&grouped.b, 2) == 0 &&
                     ph_buf_append_term(&grouped.b, cid) == 0 &&
                     registry_encode_nodes(&grouped.b, row) == 0;
                grouped.n += ok;
            }
            ph_buf_free(&ids);
        } else {
            ok = 0;
        }
    }
    term_trust_pop(saved);
    if (ok) { /* the grouped list replaces the per-replica one */
        elist tmp = ps->started;
        ps->started = grouped;
        grouped = tmp;
    }
    registry_free(by_id);
    elist_free(&order);
    elist_free(&grouped);
    ph_buf_free(&all);
    ph_buf_free(&key);
}

void pending_reply(hub *h, ph_ctx *ctx, pending_start *ps)
{
    if (hub_replication_factor(h) > 1 && ps->started.n > 1)
        group_replicas(ps);
    int rollback = ps->rollback && ps->errors.n > 0;
    if (rollback) {
        ph_buf b;
        ph_buf_init(&b);
        elist_to(&b, &ps->started);
        stop_started(h, ctx, ph_buf_term(&b));
        ph_buf_free(&b);
    }
    /* The registry changes made so far go to subscribers before the reply
     * (a subscriber's client that holds the reply finds them in its
     * mailbox); with registry_seq the result says up to which message. */
    subscription_flush(h, ctx);
    long long seq = ps->has_sub ? subscription_seq(h, ctx, &ps->sub) : -1;
    /* The result can be megabytes: the started list goes out from where
     * the owners' answers were merged, between the reply's head and tail. */
    ph_buf out = {0}, tail = {0};
    struct iovec pieces[3];
    if (ph_buf_init(&out) == 0 && ph_buf_init(&tail) == 0 && ps->from &&
        gen_reply_begin(&out, ps->from) == 0) {
        if (ps->formatted) {
            if (encode_formatted_result(&out, &ps->started, &ps->errors, rollback, ps->first) == 0)
                gen_reply_send(ps->from, out.buff, (uint32_t)out.index);
        } else if (encode_start_result_pieces(&out, &tail, &ps->started, &ps->errors, rollback, seq,
                                              pieces) == 0) {
            gen_reply_send_pieces(ps->from, pieces, 3);
        }
    }
    ph_buf_free(&out);
    ph_buf_free(&tail);
    ph_from_free(ps->from);
    ps->from = NULL;
}

void pending_free(hub *h, pending_start *ps)
{
    for (pending_start **pp = &h->pending; *pp; pp = &(*pp)->next)
        if (*pp == ps) {
            *pp = ps->next;
            break;
        }
    ph_from_free(ps->from);
    elist_free(&ps->started);
    elist_free(&ps->errors);
    free(ps->waiting);
    free(ps);
}

pending_start *pending_find(hub *h, const ph_ref *id)
{
    for (pending_start *ps = h->pending; ps; ps = ps->next)
        if (ph_ref_equal(&ps->id, id))
            return ps;
    return NULL;
}

/* delta more (or, negative, fewer) answers expected from node. */
int pending_expect(pending_start *ps, uint32_t node, int delta)
{
    for (int i = 0; i < ps->n_waiting; i++)
        if (ps->waiting[i].node == node) {
            ps->waiting[i].count += delta;
            if (ps->waiting[i].count == 0)
                ps->waiting[i] = ps->waiting[--ps->n_waiting];
            return 0;
        }
    if (ps->n_waiting == ps->cap_waiting) {
        int cap = ps->cap_waiting ? 2 * ps->cap_waiting : 4;
        struct awaited *w = realloc(ps->waiting, (size_t)cap * sizeof *w);
        if (!w)
            return -1;
        ps->waiting = w;
        ps->cap_waiting = cap;
    }
    ps->waiting[ps->n_waiting++] = (struct awaited){node, delta};
    return 0;
}

/* Replies (unless done already) and frees ps once no answer is outstanding. */
void pending_check(hub *h, ph_ctx *ctx, pending_start *ps)
{
    if (ps->n_waiting == 0) {
        if (!ps->answered)
            pending_reply(h, ctx, ps);
        pending_free(h, ps);
    }
}

/* node answered for ps; replies when all did. */
void pending_node_done(hub *h, ph_ctx *ctx, pending_start *ps, uint32_t node)
{
    if (pending_expect(ps, node, -1) != 0)
        LOG_E("hub", "%s: out of memory counting start results", h->cfg.hub_id);
    pending_check(h, ctx, ps);
}

/* Every answer still expected fails with reason (node_down, node_receive_timeout). */
void pending_fail_nodes(pending_start *ps, uint32_t only, const char *reason)
{
    for (int i = 0; i < ps->n_waiting;) {
        struct awaited *a = &ps->waiting[i];
        if (only != ATOM_NONE && a->node != only) {
            i++;
            continue;
        }
        if (a->count > 0)
            elist_add(&ps->errors, "{undefined, ~a, ~a}", atom_text(a->node), reason);
        *a = ps->waiting[--ps->n_waiting];
    }
}

/* A member left while starts waited for it: its part fails now. */
void pending_node_gone(hub *h, ph_ctx *ctx, uint32_t node)
{
    pending_start *ps = h->pending;
    while (ps) {
        pending_start *next = ps->next; /* ps may be freed below */
        int before = ps->n_waiting;
        pending_fail_nodes(ps, node, "node_down");
        if (ps->n_waiting != before)
            pending_check(h, ctx, ps);
        ps = next;
    }
}

/* {'$ph_hub', start_forwarded, Ref, Node, [OtherNode]}: the start waits for
 * those nodes' answers too. */
void pending_forwarded(hub *h, ph_ctx *ctx, const ph_ref *ref, ph_term nodes)
{
    pending_start *ps = pending_find(h, ref);
    list_walk w;
    ph_term t;
    char fwd[PH_ATOM_BUF];
    if (!ps)
        return;
    if (list_begin(&w, nodes) >= 0)
        while (list_next(&w, &t) > 0) {
            if (ph_match(t, "~a", fwd) != 1)
                continue;
            uint32_t node = atom_intern(fwd);
            int known = 0;
            for (int i = 0; i < ps->n_waiting && !known; i++)
                known = ps->waiting[i].node == node; /* its answer came first */
            if (!known && node != h->self_node && !membership_find(&h->members, node))
                /* lost already (a cut): its answer will not come, and
                 * waiting for it would hold the reply until the timeout */
                elist_add(&ps->errors, "{undefined, ~a, node_down}", fwd);
            else
                pending_expect(ps, node, 1);
        }
    pending_check(h, ctx, ps);
}

/* An awaited start's timeout (id_term: its ref as a term, for the next
 * timer). */
void pending_timed_out(hub *h, ph_ctx *ctx, const ph_ref *ref, ph_term id_term)
{
    pending_start *ps = pending_find(h, ref);
    if (ps && ps->answered) {
        pending_free(h, ps); /* the late owners had their time */
    } else if (ps && ps->rollback && ps->n_waiting > 0) {
        /* Reply now, but keep counting: what the late owners start
         * still has to go (stop_started). */
        for (int i = 0; i < ps->n_waiting; i++)
            if (ps->waiting[i].count > 0)
                elist_add(&ps->errors, "{undefined, ~a, node_receive_timeout}",
                          atom_text(ps->waiting[i].node));
        pending_reply(h, ctx, ps);
        ps->answered = 1;
        send_self_after(ctx, LATE_ROLLBACK_MS, "{'$ph_hub', ~a, ~t}",
                        hub_msg_name(HM_START_TIMEOUT), id_term);
    } else if (ps) {
        pending_fail_nodes(ps, ATOM_NONE, "node_receive_timeout");
        pending_check(h, ctx, ps);
    }
}
