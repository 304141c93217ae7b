/* migration.c - moving children to their owner: hand-offs grouped per
 * owner and metadata, their answers, timeouts and undo. When the old
 * copies stop is the migration strategy's (strategies/migration/). */
#include "hub/hub_internal.h"
#include "strategies/migration/migration_ops.h"

static void send_move(ph_ctx *ctx, const member *m, const reg_row *row, int forwarded);
static void move_group_free(move_group *g);
static void group_send(hub *h, ph_ctx *ctx, move_group *g, int is_move);

void move_free(move *mv)
{
    if (!mv)
        return;
    ph_buf_free(&mv->cids);
    elist_free(&mv->stop);
    free(mv);
}

/* Asks member m to start the child of row (with its metadata, no
 * duplicate check: m may run it already). forwarded: m starts it even if
 * its own ring names another owner. */
static void send_move(ph_ctx *ctx, const member *m, const reg_row *row, int forwarded)
{
    ph_buf msg, pidb;
    if (ph_buf_init(&msg) != 0)
        return;
    if (ph_buf_init(&pidb) == 0) {
        if (ph_build(&msg,
                     "{'$ph_hub', ~a, undefined, ~t, [~t], [{metadata, ~t}, {check_existing, "
                     "false}, {forwarded, ~B}, {handoff, true}]}",
                     hub_msg_name(HM_START), pid_term(ph_self(ctx), &pidb), reg_row_spec(row),
                     reg_row_meta(row), forwarded) == 0)
            ph_send(ctx, m->hub, ph_buf_term(&msg));
        ph_buf_free(&pidb);
    }
    ph_buf_free(&msg);
}

/* While this node leaves, another member left too (or died): the children
 * that ran only there go to their owners among the remaining members, as
 * our ring (without us) names them. An owner whose ring still counted on
 * us would otherwise leave them to us, and we do not start anything now.
 * A child its owner started already is not started twice. */
void hand_off_orphans(hub *h, ph_ctx *ctx, uint32_t gone)
{
    uint32_t i = 0;
    int n = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        member *m;
        int orphan = row->n_nodes == 0 || (row->n_nodes == 1 && row->nodes[0].node == gone);
        if (!orphan || !(m = membership_find(&h->members, hub_owner(h, reg_row_key(row)))))
            continue;
        send_move(ctx, m, row, 1);
        n++;
    }
    if (n)
        LOG_I("hub", "%s: %d child(ren) of %s handed to their owners", h->cfg.hub_id, n,
              atom_text(gone));
    drop_node_rows(h, ctx, gone, 0, NULL, NULL);
}

static void move_group_free(move_group *g)
{
    elist_free(&g->specs);
    elist_free(&g->ids);
}

/* After an undo_move: the target's late start replaced the rows of these
 * children with its own copies, and its undo deleted them; our rows (sent
 * after the undo, so applied after it) put them back. */
void republish_moved(hub *h, ph_ctx *ctx, const move *mv)
{
    elist rows;
    list_walk w;
    ph_term cid;
    ph_buf key;
    ph_pid pid;
    if (elist_init(&rows) != 0)
        return;
    if (ph_buf_init(&key) == 0) {
        struct term_trust saved = term_trust_push(mv->cids.buff, mv->cids.index);
        if (list_begin(&w, ph_buf_term(&mv->cids)) >= 0)
            while (list_next(&w, &cid) > 0) {
                reg_row *row = registry_find(h->reg, cid, &key);
                if (row && row_local_pid(h, row, &pid))
                    append_row_entry(&rows, row, pid);
            }
        term_trust_pop(saved);
        ph_buf_free(&key);
    }
    if (rows.n)
        send_sync(h, ctx, mv->target, HM_REGISTERED, &rows);
    elist_free(&rows);
}

/* Sends a group as one hand-off. A move (children running here) is
 * remembered until its result, and its children stop here then; an
 * adoption (orphans) is not answered. */
static void group_send(hub *h, ph_ctx *ctx, move_group *g, int is_move)
{
    move *mv = NULL;
    ph_buf opts, id;
    if (ph_buf_init(&opts) != 0 || ph_buf_init(&id) != 0) {
        ph_buf_free(&opts);
        LOG_E("hub", "%s: out of memory handing children over; they stay here", h->cfg.hub_id);
        return;
    }
    if (is_move) {
        mv = calloc(1, sizeof *mv);
        if (!mv || ph_buf_init(&mv->cids) != 0 || elist_init(&mv->stop) != 0 ||
            elist_to(&mv->cids, &g->ids) != 0) {
            ph_buf_free(&opts);
            ph_buf_free(&id);
            move_free(mv);
            LOG_E("hub", "%s: out of memory moving children; they stay here", h->cfg.hub_id);
            return;
        }
        mv->id = ph_make_ref();
        mv->target = g->to->node;
        mv->seq = ++h->move_seq;
        mv->n = g->ids.n;
        metric_add(&hm_migrations_out, (uint64_t)mv->n);
        mv->next = h->moves;
        h->moves = mv;
        moving_mark(h, mv, 1);
        ph_encode_ref(&id, &mv->id);
    } else {
        ph_build(&id, "undefined");
    }
    /* forwarded: it starts them even if its ring has changed again
     * meanwhile; it re-plans from its own view afterwards. The ring digest
     * names the view this placement was made under. handover: the new
     * copies wait that long for the state of the old ones (hot_swap). */
    ph_build(&opts,
             "[{metadata, ~t}, {check_existing, false}, {forwarded, true}, {handoff, true}, "
             "{ring, ~i}, {handover, ~i}]",
             reg_row_meta(g->meta_of), hub_view_digest(h),
             mv ? (long)h->migration->handover_wait(h) : 0L);
    send_start(h, ctx, g->to->node, ph_buf_term(&id), ph_self(ctx), &g->specs, ph_buf_term(&opts));
    if (mv)
        send_self_after(ctx, h->migration->move_timeout(h), "{'$ph_hub', ~a, ~t}",
                        hub_msg_name(HM_MOVE_TIMEOUT), ph_buf_term(&id));
    ph_buf_free(&opts);
    ph_buf_free(&id);
}

/* Adds row to the group of its target and metadata, sending the oldest
 * group first when all are taken. 0, or -1 when out of memory (the child
 * stays where it is). */
int group_add(hub *h, ph_ctx *ctx, move_group *groups, int *n_groups, const member *m,
              const reg_row *row, int is_move)
{
    int g = 0;
    while (g < *n_groups && !(groups[g].to == m && groups[g].meta_of->meta_len == row->meta_len &&
                              memcmp(reg_row_meta(groups[g].meta_of).buf, reg_row_meta(row).buf,
                                     row->meta_len) == 0))
        g++;
    if (g == *n_groups) {
        if (*n_groups == MOVE_GROUPS) { /* full: send the oldest group now */
            group_send(h, ctx, &groups[0], is_move);
            move_group_free(&groups[0]);
            groups[0] = groups[--*n_groups];
        }
        g = (*n_groups)++;
        groups[g] = (move_group){.to = m, .meta_of = row};
        if (elist_init(&groups[g].specs) != 0 || elist_init(&groups[g].ids) != 0) {
            move_group_free(&groups[g]);
            (*n_groups)--;
            return -1;
        }
    }
    int specs_end = groups[g].specs.b.index, ids_end = groups[g].ids.b.index;
    if (ph_buf_append_term(&groups[g].specs.b, reg_row_spec(row)) != 0 ||
        ph_buf_append_term(&groups[g].ids.b, reg_row_key(row)) != 0) {
        groups[g].specs.b.index = specs_end;
        groups[g].ids.b.index = ids_end;
        return -1;
    }
    groups[g].specs.n++;
    groups[g].ids.n++;
    return 0;
}

void groups_flush(hub *h, ph_ctx *ctx, move_group *groups, int n_groups, int is_move)
{
    for (int g = 0; g < n_groups; g++) {
        group_send(h, ctx, &groups[g], is_move);
        move_group_free(&groups[g]);
    }
}

move *move_find(hub *h, const ph_ref *id)
{
    for (move *mv = h->moves; mv; mv = mv->next)
        if (ph_ref_equal(&mv->id, id))
            return mv;
    return NULL;
}

move *move_take(hub *h, const ph_ref *id)
{
    for (move **pm = &h->moves; *pm; pm = &(*pm)->next)
        if (ph_ref_equal(&(*pm)->id, id)) {
            move *mv = *pm;
            *pm = mv->next;
            return mv;
        }
    return NULL;
}

/* No move is in flight any more: a graceful leave that waited for them
 * tells the members now. */
void moves_settled(hub *h, ph_ctx *ctx)
{
    if (h->leave_after_moves && !h->moves) {
        h->leave_after_moves = 0;
        leave_announce(h, ctx);
    }
}

/* The strategy is done with mv (taken from h->moves): its old copies stop
 * here, and its children may move again. */
void move_finish(hub *h, ph_ctx *ctx, move *mv)
{
    moving_mark(h, mv, 0);
    if (mv->stop.n) {
        ph_buf l;
        if (ph_buf_init(&l) == 0) {
            if (elist_to(&l, &mv->stop) == 0) {
                fire_children_migrated(h, ctx, mv->target, ph_buf_term(&l));
                stop_batch(h, ctx, ph_buf_term(&l), NULL, STOP_HERE);
            }
            ph_buf_free(&l);
        }
    }
    move_free(mv);
    moves_settled(h, ctx);
}

/* The new owner answered a move: what it started is the strategy's (the
 * old copies stop now, or after their handover); what it ran already
 * stops here at once; what it could not start, or refused, keeps running
 * here and is planned again later. */
void move_done(hub *h, ph_ctx *ctx, move *mv, ph_term result)
{
    ph_term map, list, e, cid, reason, started = {"\x6a", 0};
    list_walk w;
    int failed = 0, n_started = 0;
    member *to = membership_find(&h->members, mv->target);
    if (to) /* it answers in time again: a later timeout pauses afresh */
        to->move_retry_ms = 0;
    if (ph_match(result, "{ok, ~t}", &map) == 1) {
        if (ph_map_get_atom(map, "started", &list) == 1 && (n_started = list_begin(&w, list)) >= 0)
            started = list;
        else
            n_started = 0;
        if (ph_map_get_atom(map, "errors", &list) == 1 && list_begin(&w, list) >= 0)
            while (list_next(&w, &e) > 0) {
                if (ph_match(e, "{~t, _, ~t}", &cid, &reason) != 1)
                    continue;
                if (ph_match(reason, "{already_started, _}") == 1) {
                    partition_note_conflict(h, ctx, mv->target, cid, reason);
                    elist_add(&mv->stop, "~t", cid);
                } else
                    failed++;
            }
    }
    int refused = mv->n - n_started - mv->stop.n - failed;
    if (failed) {
        /* e.g. a worker module the owner lacks: tried again, less and
         * less often while it keeps failing */
        LOG_W("hub", "%s: %d child(ren) could not start on %s and keep running here", h->cfg.hub_id,
              failed, atom_text(mv->target));
        h->retry_ms = h->retry_ms ? h->retry_ms * 2 : RECONCILE_MS * 4;
        if (h->retry_ms > (int)h->cfg.sync_interval)
            h->retry_ms = (int)h->cfg.sync_interval;
        schedule_reconcile(h, ctx, (unsigned)h->retry_ms);
    } else {
        h->retry_ms = 0;
    }
    if (refused > 0) /* moving the other way, or stopped: views settle soon */
        schedule_reconcile(h, ctx, RECONCILE_MS * 4);
    h->migration->moved(h, ctx, mv, started);
}

/* Tells the old copies of a move that hand their state over to a member
 * that left: they serve again themselves. */
static void cancel_handover(hub *h, ph_ctx *ctx, move *mv)
{
    list_walk w;
    ph_term cid;
    ph_buf l, msg, *key = &h->key_scratch;
    ph_pid pid;
    if (ph_buf_init(&l) != 0)
        return;
    if (ph_buf_init(&msg) == 0) {
        if (elist_to(&l, &mv->stop) == 0 && ph_build(&msg, "{'$ph_handover', cancel}") == 0 &&
            list_begin(&w, ph_buf_term(&l)) >= 0)
            while (list_next(&w, &cid) > 0) {
                reg_row *row = registry_find(h->reg, cid, key);
                if (row && row_local_pid(h, row, &pid))
                    ph_send(ctx, pid, ph_buf_term(&msg));
            }
        ph_buf_free(&msg);
    }
    ph_buf_free(&l);
}

/* A member left: moves to it will not be answered, and the handovers to it
 * will not complete; the children stay here and are planned again. */
void moves_drop_node(hub *h, ph_ctx *ctx, uint32_t node)
{
    for (move **pm = &h->moves; *pm;) {
        move *mv = *pm;
        if (mv->target == node) {
            *pm = mv->next;
            if (mv->handing_over) {
                LOG_W("hub",
                      "%s: %s left during the handover of %d child(ren); they keep running here",
                      h->cfg.hub_id, atom_text(node), mv->stop.n);
                cancel_handover(h, ctx, mv);
            }
            moving_mark(h, mv, 0);
            move_free(mv);
        } else {
            pm = &mv->next;
        }
    }
    moves_settled(h, ctx);
}

/* A move not answered in time: the children stay here. If the target
 * starts them after all, it stops them again: messages between two hubs
 * arrive in order, so the undo comes after the start. (A move whose
 * answer came and whose old copies hand their state over is the
 * strategy's: its retention time bounds it.) */
void move_timed_out(hub *h, ph_ctx *ctx, const ph_ref *ref)
{
    move *mv = move_find(h, ref);
    if (!mv || mv->handing_over)
        return;
    move_take(h, ref);
    moving_mark(h, mv, 0);
    member *m = membership_find(&h->members, mv->target);
    int pause = 0;
    if (m) {
        /* Not at once: its late start of these registers here and would
         * re-plan the move at the next pass, and a target too slow for
         * migr_base_timeout would get the same children over and over. */
        pause = m->move_retry_ms ? m->move_retry_ms * 2 : RECONCILE_MS * 4;
        if (pause > (int)h->cfg.sync_interval)
            pause = (int)h->cfg.sync_interval;
        m->move_retry_ms = pause;
        m->moves_held_ms = monotonic_ms() + (uint64_t)pause;
        schedule_reconcile(h, ctx, (unsigned)pause);
    }
    LOG_W("hub",
          "%s: %s did not answer a move in %u ms; the children stay here (moved again in %d ms)",
          h->cfg.hub_id, atom_text(mv->target), h->migration->move_timeout(h), pause);
    ph_buf undo;
    if (m && ph_buf_init_versioned(&undo) == 0) {
        if (hub_msg_begin(&undo, HM_UNDO_MOVE) == 0 && atom_encode(&undo, h->self_node) == 0 &&
            ei_x_append_buf(&undo, mv->cids.buff, mv->cids.index) == 0)
            send_own(ctx, m->hub, &undo);
        ph_buf_free(&undo);
        republish_moved(h, ctx, mv);
    }
    move_free(mv);
    moves_settled(h, ctx);
}
