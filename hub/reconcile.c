/* reconcile.c - every child once, on its owner: orphans restarted by their
 * owner, misplaced and doubled children handed over, orphan adoption. */
#include "hub/hub_internal.h"

static void schedule_orphan_check(hub *h, ph_ctx *ctx, int ms);
static void restart_orphans(hub *h, ph_ctx *ctx, elist *specs, elist *metas);

/* --- reconciliation: every child once, on its owner (ColdSwap) ---------- *
 *
 * One rule, applied by every node to the registry it holds whenever its view
 * of the members changes (docs/cluster.md, "Invariants"):
 *  - an orphan (a row whose every copy ran on members that left) that this
 *    node owns is started here; one owned by another member waits for it,
 *    and is handed to it (adopted) if it is still an orphan a moment later;
 *  - a child running here that another member owns is moved there: started
 *    there, stopped here once the owner says it runs it. That also ends a
 *    second copy: the owner answers that it runs one already.
 * Decisions use the view at hand; a later view re-plans. Orphans are kept
 * (not dropped with their node), so two members leaving at once lose
 * nothing: what the first departure assigned to the second is restarted
 * when the second one goes. */

void schedule_reconcile(hub *h, ph_ctx *ctx, unsigned ms)
{
    uint64_t due = monotonic_ms() + ms;
    if (h->leaving || (h->reconcile_due && h->reconcile_due <= due))
        return;
    /* an earlier one than the one on its way: both come, the later one
     * finds little to do */
    h->reconcile_due = due;
    send_self_after(ctx, ms, "{'$ph_hub', ~a, ~u}", hub_msg_name(HM_RECONCILE),
                    (unsigned long long)due);
}

static void schedule_orphan_check(hub *h, ph_ctx *ctx, int ms)
{
    if (h->orphan_check_ms || h->leaving)
        return;
    h->orphan_check_ms = ms;
    send_self_after(ctx, (unsigned)ms, "{'$ph_hub', ~a}", hub_msg_name(HM_ORPHAN_CHECK));
}

/* Starts here the orphans this node owns (specs and metas in step). One
 * that cannot start leaves the registry everywhere, as a child whose
 * restart fails does. */
static void restart_orphans(hub *h, ph_ctx *ctx, elist *specs, elist *metas)
{
    ph_buf sl, ml, gone;
    list_walk ws, wm;
    ph_term spec, meta;
    start_result r;
    elist failed;
    if (ph_buf_init(&sl) != 0 || ph_buf_init(&ml) != 0 || ph_buf_init(&gone) != 0 ||
        elist_init(&failed) != 0 || result_init(&r) != 0) {
        LOG_E("hub", "%s: out of memory restarting orphaned children", h->cfg.hub_id);
        return;
    }
    elist_to(&sl, specs);
    elist_to(&ml, metas);
    list_begin(&ws, ph_buf_term(&sl));
    list_begin(&wm, ph_buf_term(&ml));
    while (list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0) {
        start_opts o;
        spec_info si;
        memset(&o, 0, sizeof o);
        o.metadata = meta;
        o.timeout = 10000;
        o.handoff = 1; /* a restart, not a new start: a stop since still holds */
        int errors = r.errors.n;
        start_one(h, ctx, spec, &o, &r);
        if (r.errors.n != errors && parse_spec(spec, &si) == 0)
            elist_add(&failed, "~t", si.id);
    }
    LOG_I("hub", "%s: %d orphaned child(ren) restarted here, %d failed", h->cfg.hub_id, r.started.n,
          r.errors.n);
    if (failed.n && elist_to(&gone, &failed) == 0) {
        list_walk w;
        ph_term cid;
        ph_buf key;
        ph_buf_init(&key);
        list_begin(&w, ph_buf_term(&gone));
        while (list_next(&w, &cid) > 0) {
            key.index = 0;
            reg_row *row = registry_key(cid, &key) == 0
                               ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                               : NULL;
            if (row && row->n_nodes == 0)
                forget_row(h, ctx, row);
        }
        ph_buf_free(&key);
        for (int i = 0; i < h->members.n; i++)
            send_stop(h, ctx, h->members.members[i].node, ph_buf_term(&gone));
    }
    result_free(&r);
    elist_free(&failed);
    ph_buf_free(&sl);
    ph_buf_free(&ml);
    ph_buf_free(&gone);
}

/* The rule above, applied to the whole registry once. */
void reconcile(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    elist specs, metas;
    move_group groups[MOVE_GROUPS];
    int n_groups = 0, moving = 0, orphans_elsewhere = 0;
    if (h->leaving)
        return;
    if (elist_init(&specs) != 0 || elist_init(&metas) != 0) {
        elist_free(&specs);
        LOG_E("hub", "%s: out of memory reconciling the registry", h->cfg.hub_id);
        return;
    }
    while ((row = registry_next(h->reg, &i)) != NULL) {
        uint32_t owner = hub_owner(h, reg_row_key(row));
        if (owner == ATOM_NONE)
            continue;
        if (row->n_nodes == 0) {
            if (owner != h->self_node) {
                orphans_elsewhere++;
            } else if (ph_buf_append_term(&specs.b, reg_row_spec(row)) == 0 &&
                       ph_buf_append_term(&metas.b, reg_row_meta(row)) == 0) {
                specs.n++;
                metas.n++;
            }
            continue;
        }
        if (owner == h->self_node || !row_local_pid(h, row, &pid))
            continue;
        member *m = membership_find(&h->members, owner);
        child *c = m ? child_find(h, pid, NULL) : NULL;
        if (!c || c->stopping || moving_target(h, row->data, row->key_len) != ATOM_NONE)
            continue;
        if (group_add(h, ctx, groups, &n_groups, m, row, 1) != 0) {
            LOG_E("hub", "%s: out of memory moving children; they stay here", h->cfg.hub_id);
            continue;
        }
        moving++;
    }
    groups_flush(h, ctx, groups, n_groups, 1);
    if (moving)
        LOG_I("hub", "%s: %d child(ren) move to their owners", h->cfg.hub_id, moving);
    if (specs.n)
        restart_orphans(h, ctx, &specs, &metas);
    elist_free(&specs);
    elist_free(&metas);
    if (orphans_elsewhere)
        schedule_orphan_check(h, ctx, ORPHAN_CHECK_MS);
}

/* Orphans still waiting for another member a moment after they became
 * orphans: that owner may never have had their rows (it joined since, or
 * the dying node's last update did not reach it). They are handed to it;
 * an owner that runs one already answers so, and one stopped meanwhile is
 * refused there. Checked again, less and less often, while any remain. */
void adopt_orphans(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0;
    reg_row *row;
    move_group groups[MOVE_GROUPS];
    int n_groups = 0, sent = 0, waiting = 0, mine = 0;
    int delay = h->orphan_check_ms;
    h->orphan_check_ms = 0;
    if (h->leaving)
        return;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        uint32_t owner = row->n_nodes == 0 ? hub_owner(h, reg_row_key(row)) : ATOM_NONE;
        if (owner == ATOM_NONE)
            continue;
        member *m = owner != h->self_node ? membership_find(&h->members, owner) : NULL;
        if (owner == h->self_node)
            mine++;
        else if (!m || group_add(h, ctx, groups, &n_groups, m, row, 0) != 0)
            waiting++;
        else
            sent++;
    }
    groups_flush(h, ctx, groups, n_groups, 0);
    if (sent)
        LOG_I("hub", "%s: %d orphaned child(ren) handed to their owners", h->cfg.hub_id, sent);
    if (mine)
        reconcile(h, ctx);
    if (sent || waiting) {
        int next = delay * 2;
        if (next > (int)h->cfg.sync_interval)
            next = (int)h->cfg.sync_interval;
        schedule_orphan_check(h, ctx, next > ORPHAN_CHECK_MS ? next : ORPHAN_CHECK_MS);
    }
}

/* A member left: its children that ran only there are orphans now; each
 * is restarted by its owner in the view without it (reconcile). */
void failover(hub *h, ph_ctx *ctx, uint32_t gone)
{
    drop_node_rows(h, ctx, gone, 1);
    reconcile(h, ctx);
}
