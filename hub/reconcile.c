/* reconcile.c - every child once, on its owner: orphans restarted by their
 * owner, misplaced and doubled children handed over, orphan adoption. */
#include "hub/hub_internal.h"

static void schedule_orphan_check(hub *h, ph_ctx *ctx, int ms);
static void schedule_confirm(hub *h, ph_ctx *ctx);
static void reconcile_pass_run(hub *h, ph_ctx *ctx, enum reconcile_fill fill, int moves);
static void start_owed(hub *h, ph_ctx *ctx, elist *specs, elist *metas);
static void start_owed_now(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, void *arg);

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

/* Starts here the copies this node owes (specs and metas in step): orphans
 * it owns and replicas it is missing. An orphan that cannot start leaves
 * the registry everywhere, as a child whose restart fails does; a missing
 * replica that cannot start is logged and tried again later. */
static void start_owed(hub *h, ph_ctx *ctx, elist *specs, elist *metas)
{
    ph_buf sl, ml, opts;
    if (ph_buf_init(&sl) != 0 || ph_buf_init(&ml) != 0 || ph_buf_init(&opts) != 0 ||
        elist_to(&sl, specs) != 0 || elist_to(&ml, metas) != 0 ||
        ph_build(&opts, "[{migration_add, true}]") != 0) {
        LOG_E("hub", "%s: out of memory restarting orphaned children", h->cfg.hub_id);
        return;
    }
    /* as ProcessHub's NodeDown restarts them (a start on this node): the
     * start hooks fire, the alter hook's handlers are awaited */
    run_start_hooks(h, ctx, ph_buf_term(&sl), ph_buf_term(&ml), ph_buf_term(&opts), start_owed_now,
                    NULL, NULL);
    ph_buf_free(&sl);
    ph_buf_free(&ml);
    ph_buf_free(&opts);
}

static void start_owed_now(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, void *arg)
{
    list_walk ws, wm;
    ph_term spec, meta;
    start_result r;
    elist failed;
    ph_buf scratch;
    (void)arg;
    if (elist_init(&failed) != 0 || result_init(&r) != 0 || ph_buf_init(&scratch) != 0) {
        LOG_E("hub", "%s: out of memory restarting orphaned children", h->cfg.hub_id);
        return;
    }
    int want_post = hooks_has(h->hooks, "post_children_start_hook") ||
                    hooks_has(h->hooks, "process_startups_hook");
    list_begin(&ws, specs);
    list_begin(&wm, metas);
    while (list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0) {
        start_opts o;
        spec_info si;
        memset(&o, 0, sizeof o);
        o.metadata = meta;
        o.timeout = 10000;
        o.handoff = 1; /* a restart, not a new start: a stop since still holds */
        o.want_post = want_post;
        int errors = r.errors.n;
        start_one(h, ctx, spec, &o, &r);
        if (r.errors.n != errors && parse_spec(spec, &si) == 0)
            elist_add(&failed, "~t", si.id);
    }
    if (want_post) {
        fire(h, ctx, "post_children_start_hook", elist_term(&r.post, &scratch));
        if (r.startups.n)
            fire(h, ctx, "process_startups_hook", elist_term(&r.startups, &scratch));
    }
    ph_buf_free(&scratch);
    LOG_I("hub", "%s: %d child(ren) started here (orphans, missing replicas), %d failed",
          h->cfg.hub_id, r.started.n, r.errors.n);
    if (failed.n)
        forget_orphans_everywhere(h, ctx, &failed);
    result_free(&r);
    elist_free(&failed);
}

/* A replica missing from a row that still has copies is started at once
 * only when the members changed (a node took its copy along). Otherwise
 * the row must be short at two confirming passes in a row, about
 * CONFIRM_MS apart or more: a start in flight also leaves rows short until its
 * part reaches this owner, and starting the copy here first would make
 * that part fail. */
static int confirmed_short(hub *h, const reg_row *row)
{
    return registry_count(h->short_before) &&
           monotonic_ms() - h->short_before_ms >= CONFIRM_MS * 3 / 4 &&
           registry_get(h->short_before, row->data, row->key_len) != NULL;
}

/* Churn (members joined or left, hand-offs arrived) can leave rows short
 * of a replica after the reconcile it caused: a copy moved under one view
 * whose old holder stops it once the next view's plan is made, so no
 * owner is left to push the missing replica. Confirmation passes follow
 * churn (the first CONFIRM_MS / 2 after it, then every CONFIRM_MS while
 * such rows remain, up to CONFIRM_PASSES), so they get their copy about
 * 1.5 s after the churn, not after two sync_intervals. */
static void schedule_confirm(hub *h, ph_ctx *ctx)
{
    h->confirm_passes = CONFIRM_PASSES;
    if (h->confirm_armed || h->leaving)
        return;
    h->confirm_armed = 1;
    send_self_after(ctx, CONFIRM_MS / 2, "{'$ph_hub', ~a}", hub_msg_name(HM_CONFIRM_TICK));
}

void confirm_tick(hub *h, ph_ctx *ctx)
{
    h->confirm_armed = 0;
    if (h->leaving || h->partitioned || h->confirm_passes <= 0)
        return;
    h->confirm_passes--;
    reconcile_pass_run(h, ctx, FILL_CONFIRMED, 0);
    if (registry_count(h->short_before) && h->confirm_passes > 0) { /* short rows wait */
        h->confirm_armed = 1;
        send_self_after(ctx, CONFIRM_MS, "{'$ph_hub', ~a}", hub_msg_name(HM_CONFIRM_TICK));
    }
}

static void note_short(hub *h, const reg_row *row)
{
    if (!registry_put(h->short_now, row->data, row->key_len, reg_row_key(row), reg_row_key(row),
                      NULL, 0))
        LOG_W("hub", "%s: out of memory noting a missing replica", h->cfg.hub_id);
}

/* A copy here (pid) whose node is none of the owners: it goes to an owner
 * that has none yet (one that has one answers so, and ours stops).
 * Returns 1 when it joined a move. */
static int move_misplaced(hub *h, ph_ctx *ctx, move_group *groups, int *n_groups,
                          const reg_row *row, ph_pid pid, const uint32_t *owners, int k)
{
    uint32_t to = owners[0];
    for (int j = k - 1; j >= 0; j--) {
        int has = 0;
        for (uint16_t x = 0; x < row->n_nodes && !has; x++)
            has = row->nodes[x].node == owners[j];
        if (!has)
            to = owners[j];
    }
    member *m = membership_find(&h->members, to);
    uint64_t now = m && m->moves_held_ms ? monotonic_ms() : 0;
    if (m && !h->leaving && m->moves_held_ms > now) {
        /* its last move timed out: this waits for the retry's pass */
        schedule_reconcile(h, ctx, (unsigned)(m->moves_held_ms - now));
        return 0;
    }
    child *c = m ? child_find(h, pid, NULL) : NULL;
    if (!c || c->stopping || moving_target(h, row->data, row->key_len) != ATOM_NONE)
        return 0;
    if (group_add(h, ctx, groups, n_groups, m, row, 1) != 0) {
        LOG_E("hub", "%s: out of memory moving children; they stay here", h->cfg.hub_id);
        return 0;
    }
    return 1;
}

/* The members changed and a row with a copy here lacks replicas: each
 * owner without a copy that is a member is sent one (started there; our
 * copy stays). Only the first owner with a copy sends, so a newcomer gets
 * its replicas at once even when it joined before it had the rows (it
 * then starts nothing itself); one that has a copy already answers so.
 * Returns how many were sent. */
static int push_replicas(hub *h, ph_ctx *ctx, move_group *pushes, int *n_pushes, const reg_row *row,
                         const uint32_t *owners, int k)
{
    int sent = 0, first = 1;
    for (int j = 0; j < k && first; j++)
        for (uint16_t x = 0; x < row->n_nodes; x++)
            if (row->nodes[x].node == owners[j]) {
                if (owners[j] != h->self_node)
                    return 0; /* an owner before us has a copy: it sends */
                first = 0;
                break;
            }
    for (int j = 0; j < k; j++) {
        int has = 0;
        for (uint16_t x = 0; x < row->n_nodes && !has; x++)
            has = row->nodes[x].node == owners[j];
        member *m = has ? NULL : membership_find(&h->members, owners[j]);
        if (m && group_add(h, ctx, pushes, n_pushes, m, row, 0) == 0)
            sent++;
    }
    return sent;
}

/* A graceful leave with handover: every child here moves to its owner in
 * the ring without this node. Returns how many move. */
int move_all_away(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0, owners[MAX_REPLICAS];
    reg_row *row;
    ph_pid pid;
    move_group groups[MOVE_GROUPS];
    int n_groups = 0, moving = 0;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        int k;
        if (row_local_pid(h, row, &pid) &&
            (k = hub_owners(h, reg_row_key(row), owners, MAX_REPLICAS)) > 0)
            moving += move_misplaced(h, ctx, groups, &n_groups, row, pid, owners, k);
    }
    groups_flush(h, ctx, groups, n_groups, 1);
    return moving;
}

/* One pass of the rule: what it collects while it looks at rows. */
typedef struct reconcile_pass {
    enum reconcile_fill fill;
    /* 0 in a confirmation pass: it starts missing replicas only; moving
     * misplaced children is for the passes that churn and the periodic
     * one cause (a move that times out would otherwise be re-planned by
     * every confirmation pass, and each reconcile arms those again) */
    int moves;
    elist specs, metas, lost;
    move_group groups[MOVE_GROUPS], pushes[MOVE_GROUPS];
    int n_groups, moving, orphans_elsewhere, n_pushes, pushed;
    int rf; /* hub_replication_factor: place() gives at most that many owners */
} reconcile_pass;

/* The rule above, for one row. */
static void reconcile_row(hub *h, ph_ctx *ctx, reconcile_pass *p, const reg_row *row)
{
    uint32_t owners[MAX_REPLICAS];
    ph_pid pid;
    int local = row_local_pid(h, row, &pid);
    /* A row that runs elsewhere only and is no orphan: below, only a pass
     * that fills short replicas (FILL_SHORT, FILL_CONFIRMED) may act on it.
     * The others skip it before placing it (two thirds of a 3-node
     * registry; all of it on a newcomer). */
    if (!local && row->n_nodes > 0 && p->fill != FILL_SHORT && p->fill != FILL_CONFIRMED)
        return;
    /* Neither can a row elsewhere with all its copies (owners are at most
     * rf: none is owed one), nor, in a pass that moves nothing and pushes
     * no replicas (a confirmation pass), a row that runs here. Each would
     * cost an MD5 and a walk of the ring; a confirmation pass after a join
     * placed all 100k rows for nothing. */
    if (!local && row->n_nodes >= p->rf)
        return;
    if (local && !p->moves && p->fill != FILL_SHORT && p->fill != FILL_JOINED)
        return;
    int k = hub_owners(h, reg_row_key(row), owners, MAX_REPLICAS);
    if (k == 0 && row->n_nodes == 0) /* no node may run it (Guided: mapped to gone nodes) */
        elist_add(&p->lost, "~t", reg_row_key(row));
    if (k <= 0)
        return;
    int mine = 0;
    for (int j = 0; j < k && !mine; j++)
        mine = owners[j] == h->self_node;
    if (!local) {
        /* Fewer copies than owners: each owner without one starts its
         * own (an orphan's owner restarts it; a replica lost with its
         * node comes back). */
        int owed = mine && row->n_nodes < k && !tomb_holds(h, row) && /* stopped: no comeback */
                   (row->n_nodes == 0 || p->fill == FILL_SHORT ||
                    (p->fill == FILL_CONFIRMED && confirmed_short(h, row)));
        if (mine && row->n_nodes < k && row->n_nodes > 0 && !owed && p->fill == FILL_CONFIRMED)
            note_short(h, row);
        if (owed) {
            if (ph_buf_append_term(&p->specs.b, reg_row_spec(row)) == 0 &&
                ph_buf_append_term(&p->metas.b, reg_row_meta(row)) == 0) {
                p->specs.n++;
                p->metas.n++;
            }
        } else if (row->n_nodes == 0) {
            p->orphans_elsewhere++;
        }
        return;
    }
    if (!mine) {
        if (p->moves)
            p->moving += move_misplaced(h, ctx, p->groups, &p->n_groups, row, pid, owners, k);
    } else if ((p->fill == FILL_SHORT || p->fill == FILL_JOINED) && row->n_nodes < k)
        p->pushed += push_replicas(h, ctx, p->pushes, &p->n_pushes, row, owners, k);
}

static int pass_begin(hub *h, reconcile_pass *p, enum reconcile_fill fill)
{
    memset(p, 0, sizeof *p);
    p->fill = fill;
    p->moves = 1;
    p->rf = hub_replication_factor(h);
    if (elist_init(&p->specs) != 0 || elist_init(&p->metas) != 0 || elist_init(&p->lost) != 0) {
        elist_free(&p->specs);
        elist_free(&p->metas);
        LOG_E("hub", "%s: out of memory reconciling the registry", h->cfg.hub_id);
        return -1;
    }
    return 0;
}

/* Sends the moves and pushes, starts what this node owes, and frees p. */
static void pass_end(hub *h, ph_ctx *ctx, reconcile_pass *p)
{
    groups_flush(h, ctx, p->groups, p->n_groups, 1);
    groups_flush(h, ctx, p->pushes, p->n_pushes, 0);
    if (p->moving)
        LOG_I("hub", "%s: %d child(ren) move to their owners", h->cfg.hub_id, p->moving);
    if (p->pushed)
        LOG_I("hub", "%s: %d missing replica(s) started on their new owners", h->cfg.hub_id,
              p->pushed);
    if (p->specs.n)
        start_owed(h, ctx, &p->specs, &p->metas);
    if (p->lost.n && forget_orphans_everywhere(h, ctx, &p->lost))
        LOG_I("hub", "%s: %d child(ren) whose nodes are all gone leave the registry", h->cfg.hub_id,
              p->lost.n);
    elist_free(&p->specs);
    elist_free(&p->metas);
    elist_free(&p->lost);
    if (p->fill == FILL_CONFIRMED && (!registry_count(h->short_before) ||
                                      monotonic_ms() - h->short_before_ms >= CONFIRM_MS * 3 / 4)) {
        /* this pass's short rows are the next pass's confirmed (a pass
         * too soon after the last one keeps the older notes) */
        registry *old = h->short_before;
        h->short_before = h->short_now;
        h->short_now = old;
        h->short_before_ms = monotonic_ms();
    }
    if (p->fill == FILL_CONFIRMED)
        registry_clear(h->short_now);
    else
        schedule_confirm(h, ctx);
    if (p->orphans_elsewhere)
        schedule_orphan_check(h, ctx, ORPHAN_CHECK_MS);
    signal_roles(h, ctx);
}

/* The rule above, applied to the whole registry once. */
static void reconcile_pass_run(hub *h, ph_ctx *ctx, enum reconcile_fill fill, int moves)
{
    uint32_t i = 0;
    reg_row *row;
    reconcile_pass p;
    if (h->leaving || h->partitioned) /* partitioned: nothing starts here (partition.c) */
        return;
    if (pass_begin(h, &p, fill) != 0)
        return;
    p.moves = moves;
    while ((row = registry_next(h->reg, &i)) != NULL)
        reconcile_row(h, ctx, &p, row);
    pass_end(h, ctx, &p);
}

void reconcile(hub *h, ph_ctx *ctx, enum reconcile_fill fill)
{
    reconcile_pass_run(h, ctx, fill, 1);
}

/* How many rows ahead the join's pass asks for the next rows. */
#define TODO_PREFETCH 16

/* A member joined: the rows this node runs go to it (send_local_registry)
 * and the rule is applied (FILL_JOINED), with one walk of the registry
 * instead of two. A join's pass acts only on rows that run here and on
 * orphans (reconcile_row skips the rest), so the walk that lists our rows
 * for the newcomer also notes those, and the pass visits them alone, in
 * the registry's order as before: a member of a 3-node cluster with 100k
 * rows visits 33k of them a second time, not 100k. The rows are sent
 * before any move, as before. The caller fires no hook in between (a
 * handler may change the registry, and the rows noted are pointers into
 * it). Returns -1 when it did nothing (leaving, partitioned, out of
 * memory): the caller does it the long way. */
int reconcile_joined(hub *h, ph_ctx *ctx, uint32_t node, int detach)
{
    uint32_t i = 0, n = 0, cap = 4096;
    reg_row *row, **todo;
    ph_pid pid;
    reconcile_pass p;
    elist l;
    if (h->leaving || h->partitioned || !(todo = malloc(cap * sizeof *todo)))
        return -1;
    if (elist_init(&l) != 0) {
        free(todo);
        return -1;
    }
    if (h->local_rows_bytes) /* a hint, as in sync_local_rows */
        (void)ph_buf_reserve(&l.b, h->local_rows_bytes + h->local_rows_bytes / 8);
    while ((row = registry_next(h->reg, &i)) != NULL) {
        int local = row_local_pid(h, row, &pid);
        if (!local && row->n_nodes > 0)
            continue;
        if (local)
            append_row_entry(&l, row, pid);
        if (n == cap) {
            reg_row **more = realloc(todo, 2u * cap * sizeof *todo);
            if (!more) {
                free(todo);
                elist_free(&l);
                return -1;
            }
            todo = more;
            cap *= 2;
        }
        todo[n++] = row;
    }
    h->local_rows_bytes = (size_t)l.b.index;
    send_rows_to_member(h, ctx, node, detach, &l);
    elist_free(&l);
    if (pass_begin(h, &p, FILL_JOINED) == 0) {
        for (uint32_t j = 0; j < n; j++) {
            /* Rows the walk above touched long ago: a cache miss each, and
             * one on the children table and one on the record for the
             * child's lookup (move_misplaced). Each is asked for ahead,
             * the next from what the last brought in. */
            ph_pid ahead;
            if (j + TODO_PREFETCH < n) {
                __builtin_prefetch(todo[j + TODO_PREFETCH]);
                __builtin_prefetch((const char *)todo[j + TODO_PREFETCH] + 64);
            }
            if (j + TODO_PREFETCH / 2 < n && row_local_pid(h, todo[j + TODO_PREFETCH / 2], &ahead))
                children_prefetch(h, ahead);
            if (j + TODO_PREFETCH / 4 < n && row_local_pid(h, todo[j + TODO_PREFETCH / 4], &ahead))
                children_prefetch_record(h, ahead);
            reconcile_row(h, ctx, &p, todo[j]);
        }
        pass_end(h, ctx, &p);
    }
    free(todo);
    return 0;
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
    if (h->leaving || h->partitioned) /* the heal reconciles and checks again */
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
        reconcile(h, ctx, FILL_ORPHANS);
    if (sent || waiting) {
        int next = delay * 2;
        if (next > (int)h->cfg.sync_interval)
            next = (int)h->cfg.sync_interval;
        schedule_orphan_check(h, ctx, next > ORPHAN_CHECK_MS ? next : ORPHAN_CHECK_MS);
    }
}

static void failover_row(hub *h, ph_ctx *ctx, void *arg, reg_row *row)
{
    reconcile_row(h, ctx, arg, row);
}

/* A member left: its children that ran only there are orphans now; each
 * is restarted by its owner in the view without it (reconcile). When the
 * strategy moves only the ids the gone node owned (consistent hashing),
 * only the rows it ran and the orphans can need anything: the rule is
 * applied to those as they are dropped, not to every row after (with 100k
 * rows, two thirds of the placements computed for nothing). A row that was
 * misplaced already stays what it was, for the periodic pass to see. */
void failover(hub *h, ph_ctx *ctx, uint32_t gone)
{
    reconcile_pass p;
    if (h->leaving || h->partitioned || !strategy_removal_is_local(h) ||
        pass_begin(h, &p, FILL_SHORT) != 0) {
        drop_node_rows(h, ctx, gone, 1, NULL, NULL);
        reconcile(h, ctx, FILL_SHORT);
        return;
    }
    drop_node_rows(h, ctx, gone, 1, failover_row, &p);
    pass_end(h, ctx, &p);
}
