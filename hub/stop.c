/* stop.c - stopping children: here, on the members, and the awaited stop result. */
#include "hub/hub_internal.h"

/* --- stopping children -------------------------------------------------- */

void stop_wait_done(stop_wait *w)
{
    if (w->outstanding > 0 || !w->from)
        return;
    ph_buf b, s, e;
    ph_buf_init(&b);
    ph_buf_init(&s);
    ph_buf_init(&e);
    elist_to(&s, &w->stopped);
    elist_to(&e, &w->errors);
    if (w->formatted) /* async_wait: StopResult.format */
        encode_formatted_result(&b, &w->stopped, &w->errors, 0, 0);
    else
        ph_build(&b, "{ok, #{status => ~a, stopped => ~t, errors => ~t}}",
                 w->errors.n ? "error" : "ok", ph_buf_term(&s), ph_buf_term(&e));
    ph_reply(w->from, ph_buf_term(&b));
    ph_buf_free(&b);
    ph_buf_free(&s);
    ph_buf_free(&e);
    elist_free(&w->stopped);
    elist_free(&w->errors);
    free(w->awaiting);
    if (w->cids.buff)
        ph_buf_free(&w->cids);
    free(w);
}

/* The shutdown timers of a batch of stops: one timer per distinct
 * shutdown time carrying every pid it covers, instead of one per child. */
#define SHUTDOWN_GROUPS 4
typedef struct shutdown_timers {
    int n;
    long ms[SHUTDOWN_GROUPS];
    elist pids[SHUTDOWN_GROUPS];
} shutdown_timers;

/* {'$hub_shutdown_timeout', Pids} after ms: Pids a pid or a list of them. */
static void send_shutdown_timer(ph_ctx *ctx, long ms, ph_term pids)
{
    send_self_after(ctx, (unsigned)ms, "{'$hub_shutdown_timeout', ~t}", pids);
}

static void shutdown_timers_flush(ph_ctx *ctx, shutdown_timers *t)
{
    for (int i = 0; i < t->n; i++) {
        ph_buf l;
        if (ph_buf_init(&l) == 0) {
            if (elist_to(&l, &t->pids[i]) == 0)
                send_shutdown_timer(ctx, t->ms[i], ph_buf_term(&l));
            ph_buf_free(&l);
        }
        elist_free(&t->pids[i]);
    }
    t->n = 0;
}

/* Sends the child its exit signal; its shutdown timer goes into t when
 * there is one (sent by shutdown_timers_flush), else out at once. */
static void stop_child_timed(hub *h, ph_ctx *ctx, child *c, stop_wait *w, shutdown_timers *t)
{
    /* the reasons, encoded once and with their version byte (a signal
     * carries them as they are): this runs per child of a stop batch */
    static const char shutdown_atom[] = {
        (char)131, ERL_SMALL_ATOM_UTF8_EXT, 8, 's', 'h', 'u', 't', 'd', 'o', 'w', 'n'};
    static const char kill_atom[] = {(char)131, ERL_SMALL_ATOM_UTF8_EXT, 4, 'k', 'i', 'l', 'l'};
    h->stopping += !c->stopping;
    c->stopping = 1;
    c->wait = w;
    if (w)
        w->outstanding++;
    ph_exit(ctx, c->pid,
            (ph_term){c->shutdown_ms == SHUTDOWN_BRUTAL ? kill_atom : shutdown_atom, 1});
    if (c->shutdown_ms < 0)
        return;
    /* Killed if it has not stopped by then (OTP's shutdown timeout). */
    int g = 0;
    while (t && g < t->n && t->ms[g] != c->shutdown_ms)
        g++;
    if (t && g == t->n && t->n < SHUTDOWN_GROUPS && elist_init(&t->pids[g]) == 0) {
        t->ms[g] = c->shutdown_ms;
        t->n++;
    }
    if (t && g < t->n) {
        ph_buf *b = &t->pids[g].b;
        if (ph_buf_reserve(b, 64) == 0 && ph_encode_pid(b, c->pid) == 0) {
            t->pids[g].n++;
            return;
        }
    }
    ph_buf tmo;
    if (ph_buf_init(&tmo) == 0) {
        send_shutdown_timer(ctx, c->shutdown_ms, pid_term(c->pid, &tmo));
        ph_buf_free(&tmo);
    }
}

void stop_child_here(hub *h, ph_ctx *ctx, child *c, stop_wait *w)
{
    stop_child_timed(h, ctx, c, w, NULL);
}

/* {'$ph_hub', stop, Node, [Cid], Stamp} to a member's hub: the stamp moves
 * its clock past the stop, so a start it makes after is stamped after. */
void send_stop(hub *h, ph_ctx *ctx, uint32_t node, ph_term cids, uint64_t stamp)
{
    member *m = membership_find(&h->members, node);
    ph_buf msg;
    if (!m || ph_buf_init(&msg) != 0)
        return;
    if (hub_msg_begin(&msg, HM_STOP) == 0 && atom_encode(&msg, h->self_node) == 0 &&
        ph_buf_append_term(&msg, cids) == 0 &&
        ei_x_encode_ulonglong(&msg, (unsigned long long)stamp) == 0)
        ph_send(ctx, m->hub, ph_buf_term(&msg));
    ph_buf_free(&msg);
}

/* Drops a row this node does not run: the nodes that run its copies were
 * told to stop them. */
void forget_row(hub *h, ph_ctx *ctx, reg_row *row)
{
    ph_buf key;
    if (!hooks_has(h->hooks, "registry_pid_remove_hook")) { /* no key to copy */
        registry_delete(h->reg, row);
        return;
    }
    if (ph_buf_init(&key) != 0)
        return;
    ph_buf_append_term(&key, reg_row_key(row));
    for (uint16_t i = 0; i < row->n_nodes; i++)
        fire_remove(h, ctx, ph_buf_term(&key), row->nodes[i].node);
    registry_delete(h->reg, row);
    ph_buf_free(&key);
}

/* STOP_ANYWHERE (stop_children): a copy here stops here, and every id is
 * sent to every member first (STOP_REMOTE), which stops its copy or
 * forgets the row. Telling every member, not only the nodes the row names,
 * ends duplicates this node does not know of, and leaves no orphan to
 * restart when a node dies before it stops its copy. An awaited stop sends
 * them as stop_await and answers once all confirmed (or left). Every
 * scope but STOP_HERE remembers the
 * id (a hand-off of it still in flight is refused) and passes the stop on
 * to where this node is moving the child. */
void stop_batch(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope)
{
    stop_batch_at(h, ctx, list, w, scope, 0);
}

/* Stops between two wake-ups of the schedulers (the run queue's deferral
 * holds 256 processes). */
#define STOP_WAKE_EVERY 256

/* stop_batch with the stop's stamp given (a stop made elsewhere, kept and
 * passed on: stop_late), or 0 for a stop made now. */
void stop_batch_at(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope,
                   uint64_t stamp)
{
    ph_iter it, ahead;
    ph_term cid, next;
    ph_buf key, one;
    reg_ahead hint;
    shutdown_timers timers = {0};
    const char *node = atom_text(h->self_node);
    /* the stop's stamp: above the start stamp of every copy this node
     * knows of, so a stop kept for a member that missed it removes them */
    if (!stamp && scope != STOP_HERE)
        stamp = hub_stamp_now(h);
    if (w)
        w->stamp = stamp;
    if (ph_buf_init(&key) != 0)
        return;
    if (ph_buf_init(&one) != 0 || reg_ahead_init(&hint) != 0) {
        ph_buf_free(&key);
        ph_buf_free(&one);
        reg_ahead_free(&hint);
        return;
    }
    /* Every member gets the whole list before this node walks it, so that
     * the members stop their copies meanwhile (the walk of a 100k stop
     * took this node 320 ms, the members waiting for its end). A member
     * forgets the rows of the copies that run here, which our
     * unregistration would have removed a moment later. An awaited stop
     * waits for every member's answer (stop_await). */
    int awaited =
        w && scope == STOP_ANYWHERE && stop_await_members(h, ctx, w, list) == 0; /* w->stamp */
    if (scope == STOP_ANYWHERE && !awaited)
        for (int i = 0; i < h->members.n; i++)
            send_stop(h, ctx, h->members.members[i].node, list, stamp);
    /* A second walk runs ahead and asks for the slots, then the rows, of
     * the ids to come: at 100k rows every lookup is a cache miss on each. */
    ph_iter_begin(&it, list);
    ph_iter_begin(&ahead, list);
    for (int i = 0; i < REG_AHEAD_SLOT; i++)
        reg_ahead_next(&hint, h->reg, ph_iter_next(&ahead, &next) > 0 ? &next : NULL);
    uint64_t tomb_until = tomb_expiry();
    if (scope != STOP_HERE) { /* one index resize for the batch's tombs */
        list_walk lw;
        int n = list_begin_trusted(&lw, list);
        if (n > 0)
            tombs_reserve(h, (uint32_t)n);
    }
    /* The children's exit signals make them runnable in groups: one
     * wake-up of an idle scheduler per group instead of one per sleep of
     * it (a 17k stop woke the other scheduler about a thousand times). */
    int deferring = !scheduler_deferring();
    unsigned since_wake = 0;
    if (deferring)
        scheduler_defer_begin();
    while (ph_iter_next(&it, &cid) > 0) {
        if (deferring && ++since_wake == STOP_WAKE_EVERY) {
            scheduler_defer_end(0);
            scheduler_defer_begin();
            since_wake = 0;
        }
        /* the children table's slot, then the record, of the copies here
         * of the ids 2 and 1 ahead (their rows are in by now) */
        ph_pid local;
        const reg_row *peek = reg_ahead_peek(&hint, h->reg, 2);
        if (peek && row_local_pid(h, peek, &local))
            children_prefetch(h, local);
        peek = reg_ahead_peek(&hint, h->reg, 1);
        if (peek && row_local_pid(h, peek, &local))
            children_prefetch_record(h, local);
        if (scope != STOP_HERE) /* the tomb's index slot, 4 ahead */
            tomb_prefetch(h, reg_ahead_hash(&hint, 4));
        reg_ahead_next(&hint, h->reg, ph_iter_next(&ahead, &next) > 0 ? &next : NULL);
        ph_buf_reset(&key);
        if (registry_key(cid, &key) != 0) {
            if (w)
                elist_add(&w->errors, "{~t, ~a, not_found}", cid, node);
            continue;
        }
        uint32_t key_len = (uint32_t)key.index;
        uint32_t hash = registry_hash(key.buff, key_len); /* the row's and the tomb's */
        reg_row *row = registry_get_hashed(h->reg, key.buff, key_len, hash);
        child *c = NULL;
        for (uint16_t i = 0; row && i < row->n_nodes && !c; i++)
            if (row->nodes[i].node == h->self_node)
                c = child_find(h, row->nodes[i].pid, NULL);
        if (scope != STOP_HERE) {
            tomb_add(h, key.buff, key_len, hash, stamp, tomb_until);
            uint32_t target = moving_target(h, key.buff, key_len);
            if (target != ATOM_NONE && scope == STOP_LATE) {
                /* a kept stop: the target decides by its line (it may run
                 * a newer one, and answer our hand-off already_started) */
                elist one_late;
                if (elist_init(&one_late) == 0) {
                    elist_add(&one_late, "{~t, ~u}", cid, (unsigned long long)stamp);
                    send_stop_late_to(h, ctx, target, &one_late);
                    elist_free(&one_late);
                }
            } else if (target != ATOM_NONE) {
                /* sent after the move's start: it reaches the new copy */
                ph_buf_reset(&one);
                if (ph_build(&one, "[~t]", cid) == 0)
                    send_stop(h, ctx, target, ph_buf_term(&one), stamp);
            }
        }
        int elsewhere = row && (row->n_nodes == 0 || row->n_nodes > (c ? 1 : 0));
        if (scope == STOP_ANYWHERE && elsewhere) {
            if (w && row->n_nodes == 0)
                elist_add(&w->stopped, "{~t, []}", cid);
            for (uint16_t i = 0; w && i < row->n_nodes; i++)
                if (row->nodes[i].node != h->self_node)
                    elist_add(&w->stopped, "{~t, [~a]}", cid, atom_text(row->nodes[i].node));
        }
        if (c) {
            if (w)
                elist_add(&w->stopped, "{~t, [~a]}", cid, node);
            if (unregister_local_row(h, ctx, row))
                row = NULL; /* it named only this node */
            if (!c->stopping)
                stop_child_timed(h, ctx, c, w, &timers);
            if (scope != STOP_HERE)
                metric_inc(&hm_stops);
        } else if (!row || scope == STOP_HERE) {
            if (w)
                elist_add(&w->errors, "{~t, ~a, not_found}", cid, node);
            continue;
        }
        if (scope != STOP_HERE && row)
            forget_row(h, ctx, row);
    }
    if (deferring)
        scheduler_defer_end(0);
    shutdown_timers_flush(ctx, &timers);
    /* Members lost to a split (or a crash) get the stop when they are
     * back: their copies, or those they restarted, stop then. Every node
     * the stop reached remembers it, so it is not lost with the asker. */
    for (int i = 0; scope != STOP_HERE && i < h->members.n_lost; i++)
        unconfirmed_stops_add(h, list, h->members.lost[i], stamp);
    ph_buf_free(&one);
    reg_ahead_free(&hint);
    ph_buf_free(&key);
}

/* Children with no copy anywhere that will not run again (their restart
 * failed, or no node may run them): their rows go here and on every
 * member. Ids whose row has a copy again are left alone. Returns how many
 * went. */
int forget_orphans_everywhere(hub *h, ph_ctx *ctx, const elist *ids)
{
    ph_buf all, key, gone_list;
    elist gone;
    list_walk w;
    ph_term cid;
    int n = 0;
    if (ph_buf_init(&all) != 0)
        return 0;
    if (ph_buf_init(&key) != 0 || ph_buf_init(&gone_list) != 0 || elist_init(&gone) != 0 ||
        elist_to(&all, ids) != 0) {
        ph_buf_free(&all);
        ph_buf_free(&key);
        ph_buf_free(&gone_list);
        return 0;
    }
    list_begin(&w, ph_buf_term(&all));
    while (list_next(&w, &cid) > 0) {
        key.index = 0;
        reg_row *row = registry_key(cid, &key) == 0
                           ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                           : NULL;
        if (row && row->n_nodes == 0) {
            elist_add(&gone, "~t", cid);
            forget_row(h, ctx, row);
        }
    }
    uint64_t stamp = gone.n ? hub_stamp_now(h) : 0;
    if (gone.n && elist_to(&gone_list, &gone) == 0)
        for (int i = 0; i < h->members.n; i++)
            send_stop(h, ctx, h->members.members[i].node, ph_buf_term(&gone_list), stamp);
    n = gone.n;
    elist_free(&gone);
    ph_buf_free(&all);
    ph_buf_free(&key);
    ph_buf_free(&gone_list);
    return n;
}
