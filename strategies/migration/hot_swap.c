/* hot_swap.c - the HotSwap migration strategy: a moved child's state goes
 * from its old copy to its new one before the old one stops, on joins and
 * on a graceful leave (docs/strategies.md, "The handover protocol"; the
 * workers' side is hub/runtime/handover.c).
 *
 * After the new owner answered a move, every old copy is told
 * {process_hub, send_handover_state, NewPid, Cid, Opts}; it sends its
 * state to the new copy (which waited for it since its start) and answers
 * this hub {process_hub, retention_handled, Cid}; with confirm_handover the
 * new copy also answers {process_hub, handover_confirmed, Cid}. When every
 * answer came, or the retention time is over, the old copies stop. The
 * moving set's row of each child records what is still expected of it:
 * the move's number as the pid's num, the answers as bits of its serial. */
#include "strategies/migration/migration_ops.h"

#define AWAIT_RETENTION 1u
#define AWAIT_CONFIRMATION 2u
/* Timed-out children are logged one by one up to this many per move. */
#define LOG_IDS_MAX 100

static unsigned hot_wait(const hub *h)
{
    return h->cfg.handover ? h->cfg.handover_data_wait : 0;
}

static unsigned hot_timeout(const hub *h)
{
    return h->cfg.child_migration_timeout;
}

static reg_row *moving_row(hub *h, ph_term cid)
{
    return registry_count(h->moving) ? registry_find(h->moving, cid, &h->key_scratch) : NULL;
}

/* Asks the old copy of cid to hand its state to new_pid; returns the
 * answers now expected, 0 when it runs here no more. */
static unsigned ask_for_state(hub *h, ph_ctx *ctx, move *mv, ph_term cid, ph_term new_pid)
{
    ph_buf *key = &h->key_scratch, msg, self;
    ph_pid old;
    reg_row *row = registry_find(h->reg, cid, key);
    if (!row || !row_local_pid(h, row, &old))
        return 0;
    unsigned bits = AWAIT_RETENTION | (h->cfg.confirm_handover ? AWAIT_CONFIRMATION : 0);
    reg_row *m = registry_get(h->moving, key->buff, (uint32_t)key->index);
    if (!m || ph_buf_init(&msg) != 0)
        return 0;
    if (ph_buf_init(&self) == 0) {
        ph_term me = pid_term(ph_self(ctx), &self);
        if (ph_build(&msg,
                     "{process_hub, send_handover_state, ~t, ~t, [{retention_receiver, ~t}, "
                     "{confirmation_receiver, ~t}, {confirm_handover, ~B}, {hub_id, ~a}]}",
                     new_pid, cid, me, me, h->cfg.confirm_handover, h->cfg.hub_id) == 0 &&
            ph_send(ctx, old, ph_buf_term(&msg)) == 0) {
            ph_pid marks = {0, mv->seq, bits, 0};
            if (registry_set_node(h->moving, m, mv->target, marks) != 0)
                bits = 0; /* not tracked: its retention bounds it */
        } else {
            bits = 0;
        }
        ph_buf_free(&self);
    }
    ph_buf_free(&msg);
    return bits == (AWAIT_RETENTION | AWAIT_CONFIRMATION) ? 2 : bits ? 1 : 0;
}

static void hot_moved(hub *h, ph_ctx *ctx, move *mv, ph_term started)
{
    list_walk w;
    ph_term e, cid, new_pid;
    if (list_begin(&w, started) >= 0)
        while (list_next(&w, &e) > 0) {
            if (ph_match(e, "{~t, [{_, ~t}]}", &cid, &new_pid) != 1)
                continue;
            elist_add(&mv->stop, "~t", cid);
            if (h->cfg.handover)
                mv->awaiting += (int)ask_for_state(h, ctx, mv, cid, new_pid);
        }
    if (mv->awaiting == 0) {
        move_finish(h, ctx, mv);
        return;
    }
    /* Back among the moves until the old copies answered. */
    mv->handing_over = 1;
    mv->next = h->moves;
    h->moves = mv;
    ph_buf ref;
    if (ph_buf_init(&ref) == 0) {
        if (ph_encode_ref(&ref, &mv->id) == 0)
            send_self_after(ctx, h->cfg.retention, "{'$ph_hub', ~a, ~t}",
                            hub_msg_name(HM_RETENTION_OVER), ph_buf_term(&ref));
        ph_buf_free(&ref);
    }
}

static move *handing_over(hub *h, uint32_t seq)
{
    for (move *mv = h->moves; mv; mv = mv->next)
        if (mv->handing_over && mv->seq == seq)
            return mv;
    return NULL;
}

static void hot_worker_message(hub *h, ph_ctx *ctx, ph_term cid, int confirmed)
{
    reg_row *m = moving_row(h, cid);
    unsigned bit = confirmed ? AWAIT_CONFIRMATION : AWAIT_RETENTION;
    if (!m || !m->n_nodes || !(m->nodes[0].pid.serial & bit))
        return; /* late (its retention was over), or not ours */
    move *mv = handing_over(h, m->nodes[0].pid.num);
    ph_pid marks = m->nodes[0].pid;
    marks.serial &= ~bit;
    registry_set_node(h->moving, m, m->nodes[0].node, marks);
    if (!mv || --mv->awaiting > 0)
        return;
    move_take(h, &mv->id);
    move_finish(h, ctx, mv);
}

/* The retention time of a move is over: its old copies stop now, whatever
 * is still missing (each logged by child id). */
static void hot_retention_over(hub *h, ph_ctx *ctx, const ph_ref *ref)
{
    move *mv = move_find(h, ref);
    if (!mv || !mv->handing_over)
        return;
    move_take(h, ref);
    ph_buf l;
    list_walk w;
    ph_term cid;
    int logged = 0, late = 0;
    if (ph_buf_init(&l) == 0) {
        if (elist_to(&l, &mv->stop) == 0 && list_begin(&w, ph_buf_term(&l)) >= 0)
            while (list_next(&w, &cid) > 0) {
                reg_row *m = moving_row(h, cid);
                if (!m || !m->n_nodes || m->nodes[0].pid.num != mv->seq ||
                    !(m->nodes[0].pid.serial & (AWAIT_RETENTION | AWAIT_CONFIRMATION)))
                    continue;
                late++;
                if (logged++ < LOG_IDS_MAX) {
                    char text[256];
                    LOG_W("hub",
                          "%s: handover of %s to %s not %s within retention (%u ms); "
                          "its old copy stops now",
                          h->cfg.hub_id, ph_term_format(cid, text, sizeof text),
                          atom_text(mv->target),
                          m->nodes[0].pid.serial & AWAIT_RETENTION ? "handled" : "confirmed",
                          h->cfg.retention);
                }
            }
        ph_buf_free(&l);
    }
    if (late > LOG_IDS_MAX)
        LOG_W("hub", "%s: %d more handovers to %s not done within retention", h->cfg.hub_id,
              late - LOG_IDS_MAX, atom_text(mv->target));
    move_finish(h, ctx, mv);
}

/* A graceful leave with handover: the members drop this node from their
 * rings first (leaving), so none places anything here or takes over our
 * children afresh; then every child here moves to its new owner with its
 * state, as on a join; the members are told we leave (leave_announce)
 * when the last move is done. */
static void hot_leave(hub *h, ph_ctx *ctx)
{
    if (!h->cfg.handover || h->members.n == 0) {
        leave_announce(h, ctx);
        return;
    }
    for (int i = 0; i < h->members.n; i++)
        send_hub_message(h, ctx, h->members.members[i].node, HM_LEAVING);
    int n = move_all_away(h, ctx);
    LOG_I("hub", "%s: leaving; %d child(ren) hand their state to their new owners", h->cfg.hub_id,
          n);
    h->leave_after_moves = 1;
    moves_settled(h, ctx);
}

const migration_ops hot_swap_migration = {
    .type = "hot_swap",
    .handover_wait = hot_wait,
    .move_timeout = hot_timeout,
    .moved = hot_moved,
    .leave = hot_leave,
    .worker_message = hot_worker_message,
    .retention_over = hot_retention_over,
};
