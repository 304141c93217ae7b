/*
 * hub.c - the hub process: ProcessHub's API on this node (docs/api.md).
 *
 * One process, registered as hub_id, does everything for the node: it
 * answers the API, owns the registry and the hook handlers, and is the
 * supervisor of the children started here (they are linked to it and it
 * traps exits). Doing it in one process keeps the registry, the supervisor
 * and the hooks consistent without locks; starting a child is cheap enough
 * (the worker's init runs inline) that this is also the fast way.
 */
#include "hub/hub_internal.h"
#include "strategies/migration/migration_ops.h"

static ph_result hub_info_inner(ph_ctx *ctx, void *state, ph_term msg);
static const char *request_kind(ph_term t, char *out);
static void note_slow(hub *h, ph_term t, uint64_t t0);
static ph_result hub_call(ph_ctx *ctx, void *state, ph_term req, const ph_from *from,
                          ph_buf *reply);
static ph_result hub_info(ph_ctx *ctx, void *state, ph_term msg);
static ph_result hub_init(ph_ctx *ctx, ph_term args, void **state);
static void hub_terminate(ph_ctx *ctx, void *state, ph_term reason);

static const hub_config *start_config;
/* hub_network_ready ran: a restarted hub announces itself at once. */
static _Atomic int network_ready;

/* The hub's gauges (docs/operations.md), after every request and message:
 * two relaxed stores. The cluster count includes orphans for the moment
 * their owner restarts them. */
static void update_gauges(hub *h)
{
    uint64_t changes = registry_changes(h->reg);
    if (changes != h->reg_changes_seen) {
        struct timespec now;
        h->reg_changes_seen = changes;
        if (clock_gettime(CLOCK_REALTIME, &now) == 0)
            h->reg_changed_wall_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
    metric_gauge_set(&hm_children_local, (int64_t)h->count);
    metric_gauge_set(&hm_children_cluster, (int64_t)registry_count(h->reg));
    metric_gauge_set(&hm_members, (int64_t)h->members.n + 1);
}

/* A start_result: the answer of an owner to an awaited start, or of the
 * target of a move. */
static void start_answered(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    pending_start *ps = pending_find(h, &m->ref);
    ph_term map, started;
    move *mv = ps ? NULL : move_take(h, &m->ref);
    if (mv) {
        move_done(h, ctx, mv, m->term);
    } else if (ps && ps->answered) {
        /* Too late: the caller was told this start was rolled back. */
        if (ph_match(m->term, "{ok, ~t}", &map) == 1 &&
            ph_map_get_atom(map, "started", &started) == 1)
            stop_started(h, ctx, started);
        pending_node_done(h, ctx, ps, m->node);
    } else if (ps) {
        merge_result(&ps->started, &ps->errors, m->term);
        pending_node_done(h, ctx, ps, m->node);
    }
}

static void leave_after_hook(void *arg, ph_ctx *ctx, ph_term data)
{
    (void)data;
    begin_leave(arg, ctx);
}

/* A message of another hub (docs/protocol.md), or one of the hub's timers. */
static void handle_hub_msg(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    member *e;
    switch (m->kind) {
    case HM_HELLO:
    case HM_WELCOME:
        if (!h->leaving)
            handle_hello(h, ctx, m->pid, m->list, m->kind == HM_HELLO);
        return;
    case HM_LEAVE:
        e = membership_find(&h->members, m->pid.node);
        if (e && ph_pid_equal(e->hub, m->pid)) {
            member_left(h, ctx, e, "left");
            /* Its children run here now (and the others know): confirm. */
            flush_sync(h, ctx);
            send_hub_message(h, ctx, m->pid.node, HM_LEAVE_DONE);
        }
        return;
    case HM_LEAVE_DONE:
        if (h->leaving)
            leave_confirmed(h, m->pid.node);
        return;
    case HM_LEAVING:
        /* It moves its children to their owners before it leaves (hot_swap):
         * nothing is placed on it from now on, and nothing of its is taken
         * over until it says leave. */
        e = membership_find(&h->members, m->pid.node);
        if (e && ph_pid_equal(e->hub, m->pid)) {
            LOG_I("hub", "%s: %s is leaving and hands its children over", h->cfg.hub_id,
                  atom_text(e->node));
            strategy_node_removed(h, e->node);
        }
        return;
    case HM_RETENTION_OVER:
        if (h->migration->retention_over)
            h->migration->retention_over(h, ctx, &m->ref);
        return;
    case HM_REGISTERED:
    case HM_UNREGISTERED:
    case HM_STOP:
    case HM_UNDO_MOVE:
    case HM_REPAIR:
    case HM_STOP_LATE:
        if (!membership_find(&h->members, m->node))
            return; /* not (yet) a member: its hello will bring the rows */
        if (m->kind == HM_REGISTERED || m->kind == HM_UNREGISTERED || m->kind == HM_REPAIR)
            metric_inc(&hm_sync_received);
        if (m->kind == HM_REGISTERED)
            apply_registered(h, ctx, m->node, m->list);
        else if (m->kind == HM_UNREGISTERED)
            apply_unregistered(h, ctx, m->node, m->list);
        else if (m->kind == HM_REPAIR)
            apply_repair(h, ctx, m->node, m->list);
        else if (m->kind == HM_STOP_LATE)
            stop_late(h, ctx, m->node, m->list);
        else if (m->kind == HM_UNDO_MOVE)
            stop_batch(h, ctx, m->list, NULL, STOP_HERE);
        else { /* a member's stop, made at its stamp */
            hub_stamp_seen(h, m->seq);
            stop_batch_at(h, ctx, m->list, NULL, STOP_REMOTE, m->seq);
        }
        return;
    case HM_START:
        if (h->partitioned)
            partition_refuse_start(h, ctx, m);
        else
            handle_remote_start(h, ctx, m->id, m->pid, m->list, m->opts);
        return;
    case HM_START_RESULT:
        start_answered(h, ctx, m);
        return;
    case HM_STOP_AWAIT:
        stop_awaited_here(h, ctx, m);
        return;
    case HM_STOP_DONE:
        stop_wait_confirmed(h, &m->ref, m->node);
        return;
    case HM_START_FORWARDED:
        pending_forwarded(h, ctx, &m->ref, m->term);
        return;
    case HM_MOVE_TIMEOUT:
        move_timed_out(h, ctx, &m->ref);
        return;
    case HM_START_TIMEOUT:
        pending_timed_out(h, ctx, &m->ref, m->id);
        return;
    case HM_STOP_TIMEOUT:
        stop_timed_out(h, &m->ref);
        return;
    case HM_RECONCILE:
        if (m->due == h->reconcile_due)
            h->reconcile_due = 0; /* the earliest one came: the next request schedules anew */
        reconcile(h, ctx, FILL_ORPHANS);
        return;
    case HM_REPAIR_TICK:
        if (h->partitioned) { /* ProcessHub skips the interval sync while partitioned */
            send_self_after(ctx, h->cfg.sync_interval, "{'$ph_hub', ~a}",
                            hub_msg_name(HM_REPAIR_TICK));
            return;
        }
        metric_inc(&hm_sync_repairs);
        send_repair(h, ctx);
        tombs_prune(h);
        moved_in_prune(h);
        unconfirmed_stops_prune(h);
        reconcile(h, ctx,
                  FILL_CONFIRMED); /* a backstop: a lost message misplaces nothing for long */
        return;
    case HM_ORPHAN_CHECK:
        adopt_orphans(h, ctx);
        return;
    case HM_CONFIRM_TICK:
        confirm_tick(h, ctx);
        return;
    case HM_GRACEFUL_LEAVE:
        if (h->leaving || h->shutdown_hook_fired)
            return;
        /* ProcessHub's terminate runs coordinator_shutdown_hook before it
         * tells the others: the leave starts once its handlers have run */
        h->shutdown_hook_fired = 1;
        fire_then(h, ctx, "coordinator_shutdown_hook", (ph_term){"\x77\x08shutdown", 0},
                  leave_after_hook, NULL, h);
        return;
    case HM_ANNOUNCE:
        if (h->leaving)
            return;
        if (!h->repairing) {
            h->repairing = 1;
            send_self_after(ctx, h->cfg.sync_interval, "{'$ph_hub', ~a}",
                            hub_msg_name(HM_REPAIR_TICK));
        }
        announce(h, ctx);
        strategy_network_up(h, ctx);
        return;
    case HM_GOSSIP_UPDATE:
    case HM_GOSSIP_SYNC:
    case HM_GOSSIP_SEQ:
    case HM_GOSSIP_TICK:
        sync_message(h, ctx, m);
        return;
    case HM_LB_REPORT:
    case HM_LB_SCORES:
    case HM_LB_TICK:
        strategy_message(h, ctx, m);
        return;
    case HM_PARTITION_LOG:
        partition_message(h, ctx, m);
        return;
    case HM_COUNT:
        return;
    }
}

static ph_result hub_info_inner(ph_ctx *ctx, void *state, ph_term msg)
{
    hub *h = state;
    ph_term p, reason;
    ph_pid pid;
    if (ph_match(msg, "{'EXIT', ~t, ~t}", &p, &reason) == 1 && ph_decode_pid(p, &pid) == 0) {
        child *c = child_find(h, pid, NULL);
        if (c)
            child_exited(h, ctx, c, reason);
        return PH_OK;
    }
    if (ph_match(msg, "{'$hub_shutdown_timeout', ~t}", &p) == 1) {
        /* one pid, or the pids of a stop batch with the same shutdown time */
        static const char kill_atom[] = {ERL_SMALL_ATOM_UTF8_EXT, 4, 'k', 'i', 'l', 'l'};
        ph_iter it;
        ph_term one = p;
        int is_list = ph_iter_begin(&it, p) >= 0;
        while (is_list ? ph_iter_next(&it, &one) > 0 : one.buf != NULL) {
            child *c = ph_decode_pid(one, &pid) == 0 ? child_find(h, pid, NULL) : NULL;
            if (c && c->stopping)
                ph_exit(ctx, pid, (ph_term){kill_atom, 0});
            if (!is_list)
                break;
        }
        return PH_OK;
    }
    if (ph_match(msg, "{rex, _}") == 1)
        return PH_OK; /* results of M/F/A hook handlers not waited for */
    if (hooks_message(h->hooks, ctx, msg))
        return PH_OK; /* an awaited M/F/A handler answered, or did not in time */
    ph_term cid;
    if (ph_match(msg, "{process_hub, retention_handled, ~t}", &cid) == 1 ||
        ph_match(msg, "{process_hub, handover_confirmed, ~t}", &cid) == 1) {
        if (h->migration->worker_message)
            h->migration->worker_message(h, ctx, cid,
                                         ph_match(msg, "{_, handover_confirmed, _}") == 1);
        return PH_OK;
    }
    ph_term tag, seen;
    ph_ref tag_ref;
    if (ph_match(msg, "{~t, ~t}", &tag, &seen) == 1 && ph_decode_ref(tag, &tag_ref) == 0) {
        if (ph_ref_equal(&tag_ref, &h->discover_ref))
            greet_seen_nodes(h, ctx, seen);
        return PH_OK;
    }
    hub_msg m;
    if (hub_msg_decode(msg, &m) == 0) {
        handle_hub_msg(h, ctx, &m);
        return PH_OK;
    }
    ph_term ref_term;
    ph_ref ref;
    if (ph_match(msg, "{'DOWN', ~t, process, _, ~t}", &ref_term, &reason) == 1 &&
        ph_decode_ref(ref_term, &ref) == 0) {
        if (subscription_down(h, &ref))
            return PH_OK;
        member *e = membership_find_monitor(&h->members, &ref);
        if (e) {
            char why[128];
            member_left(h, ctx, e, ph_term_format(reason, why, sizeof why));
        }
        return PH_OK;
    }
    char text[200];
    LOG_D("hub", "%s: ignored message %s", h->cfg.hub_id, ph_term_format(msg, text, sizeof text));
    return PH_OK;
}

/* The first atom of a request or hub message ({Tag, ...}, {'$ph_hub', Kind, ...}), for logs. */
static const char *request_kind(ph_term t, char *out)
{
    int index = t.index, arity;
    strcpy(out, "?");
    if (ei_decode_tuple_header(t.buf, &index, &arity) == 0 && arity > 0 &&
        atom_at(t.buf, &index, out) == 0 && strcmp(out, "$ph_hub") == 0 && arity > 1)
        atom_at(t.buf, &index, out);
    else if (arity <= 0)
        atom_at(t.buf, &(int){t.index}, out);
    return out;
}

static void note_slow(hub *h, ph_term t, uint64_t t0)
{
    uint64_t us = monotonic_us() - t0;
    char kind[PH_ATOM_BUF];
    if (us >= SLOW_HANDLING_US)
        LOG_D("hub", "%s: %s took %llu ms", h->cfg.hub_id, request_kind(t, kind),
              (unsigned long long)(us / 1000));
}

/* Every request and message: then the registry changes it made go to the
 * other members in one message each. */
static ph_result hub_call(ph_ctx *ctx, void *state, ph_term req, const ph_from *from, ph_buf *reply)
{
    /* timed only when the log would show it: this is every get_pid */
    uint64_t t0 = log_enabled(LOG_DEBUG) ? monotonic_us() : 0;
    ph_result r = hub_call_inner(ctx, state, req, from, reply);
    flush_sync(state, ctx);
    subscription_flush(state, ctx);
    update_gauges(state);
    if (t0)
        note_slow(state, req, t0);
    return r;
}

static ph_result hub_info(ph_ctx *ctx, void *state, ph_term msg)
{
    uint64_t t0 = log_enabled(LOG_DEBUG) ? monotonic_us() : 0;
    ph_result r = hub_info_inner(ctx, state, msg);
    flush_sync(state, ctx);
    subscription_flush(state, ctx);
    update_gauges(state);
    if (t0)
        note_slow(state, msg, t0);
    return r;
}

/* Frees the hub and everything it owns; safe on a hub whose init stopped
 * part way (every part is NULL or empty until made). */
static void hub_free(hub *h)
{
    subscription_free(h);
    membership_free(&h->members);
    free(h->leave_wait);
    ph_buf_free(&h->seeds);
    elist_free(&h->sync_registered);
    elist_free(&h->sync_unregistered);
    strategies_free(h);
    partition_free(h);
    sync_strategy_free(h);
    ph_buf_free(&h->key_scratch);
    ph_buf_free(&h->start_key);
    ph_buf_free(&h->start_reason);
    ph_buf_free(&h->start_pid);
    while (h->pending) {
        pending_start *ps = h->pending;
        h->pending = ps->next;
        ph_from_free(ps->from);
        elist_free(&ps->started);
        elist_free(&ps->errors);
        free(ps->waiting);
        free(ps);
    }
    while (h->moves) {
        move *mv = h->moves;
        h->moves = mv->next;
        move_free(mv);
    }
    free(h->children);
    registry_free(h->reg);
    registry_free(h->moving);
    registry_free(h->moved_in);
    tomb_log_free(h->tombs);
    registry_free(h->unconfirmed_stops);
    registry_free(h->short_before);
    registry_free(h->short_now);
    hooks_free(h->hooks);
    free(h->restarts);
    free(h);
}

static ph_result hub_init(ph_ctx *ctx, ph_term args, void **state)
{
    (void)args;
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return PH_STOP;
    h->cfg = *start_config;
    h->cfg.child_specs.buff = NULL; /* not owned */
    h->cfg.hooks.buff = NULL;
    h->cfg.seeds.buff = NULL;
    if (ph_buf_init(&h->seeds) != 0 ||
        ph_buf_append_term(&h->seeds, ph_buf_term(&start_config->seeds)) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    h->self_node = runtime_self_node();
    h->reg = registry_new();
    h->moving = registry_new();
    h->moved_in = registry_new();
    h->tombs = tomb_log_new();
    h->unconfirmed_stops = registry_new();
    h->short_before = registry_new();
    h->short_now = registry_new();
    h->hooks = hooks_new();
    char why[256] = "out of memory";
    h->cfg.distribution.buff = NULL; /* not owned: read from start_config below */
    if (strategies_init(h, start_config, why, sizeof why) != 0) {
        LOG_E("hub", "%s: %s", h->cfg.hub_id, why);
        ph_stop_reasonf(ctx, "bad_distribution_strategy");
        goto fail;
    }
    if (partition_init(h, why, sizeof why) != 0) {
        LOG_E("hub", "%s: partition_tolerance_strategy: %s", h->cfg.hub_id, why);
        ph_stop_reasonf(ctx, "bad_partition_tolerance_strategy");
        goto fail;
    }
    if (ph_buf_init(&h->key_scratch) != 0 || ph_buf_init(&h->start_key) != 0 ||
        ph_buf_init(&h->start_reason) != 0 || ph_buf_init(&h->start_pid) != 0 ||
        elist_init(&h->sync_registered) != 0 || elist_init(&h->sync_unregistered) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    uint32_t max = h->cfg.dsup_max_restarts ? h->cfg.dsup_max_restarts : 1;
    h->restarts = calloc(max, sizeof *h->restarts);
    if (!h->reg || !h->moving || !h->tombs || !h->unconfirmed_stops || !h->short_before ||
        !h->short_now || !h->hooks || !h->restarts || children_reserve(h, 0) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    hooks_install_pending(h->hooks);
    hooks_set_call_timeout(h->hooks, h->cfg.hook_timeout);
    const char *drop = getenv("PHNODE_TEST_DROP_SYNC");
    h->test_drop_syncs = drop ? atoi(drop) : 0;
    /* M/F/A handlers from the config file: {HookKey, Node, Handler} */
    list_walk hw;
    ph_term entry, hk, hn, handler;
    list_begin(&hw, ph_buf_term(&start_config->hooks));
    while (list_next(&hw, &entry) > 0) {
        char key[PH_ATOM_BUF], node[PH_ATOM_BUF];
        ph_buf one;
        if (ph_match(entry, "{~t, ~t, ~t}", &hk, &hn, &handler) != 1 ||
            ph_match(hk, "~a", key) != 1 || ph_match(hn, "~a", node) != 1 || ph_buf_init(&one) != 0)
            continue;
        ph_build(&one, "[~t]", handler);
        if (hooks_register_terms(h->hooks, key, ph_buf_term(&one), atom_intern(node)) != 0)
            LOG_W("hub", "%s: hook handler from the config not registered for %s", h->cfg.hub_id,
                  key);
        ph_buf_free(&one);
    }
    ph_trap_exit(ctx, 1);
    *state = h;
    ph_term specs = ph_buf_term(&start_config->child_specs);
    ph_iter it;
    if (adopt_pending()) {
        /* the static children are among the ones re-adopted */
        adopt_run(h, ctx);
    } else if (ph_iter_begin(&it, specs) > 0) {
        start_opts o;
        ph_buf result, none;
        ph_buf_init(&result);
        ph_buf_init(&none);
        ph_build(&none, "[]");
        parse_opts(ph_buf_term(&none), &o, &result);
        int rc = start_batch(h, ctx, specs, &o, &result);
        if (rc != 0) {
            char text[512];
            LOG_E("hub", "%s: static children failed to start: %s", h->cfg.hub_id,
                  ph_term_format(ph_buf_term(&result), text, sizeof text));
            ph_stop_reasonf(ctx, "{static_children_failed, ~t}", ph_buf_term(&result));
            /* init failed, so terminate will not run: stop the children that
             * did start and free the books here. */
            ph_buf_reset(&none);
            ph_build(&none, "shutdown");
            hub_terminate(ctx, h, ph_buf_term(&none));
            *state = NULL;
            ph_buf_free(&result);
            ph_buf_free(&none);
            return PH_STOP;
        }
        ph_buf_free(&result);
        ph_buf_free(&none);
    }
    partition_start(h, ctx); /* startup_confirm: below the quorum already */
    /* The first announcement waits for hub_network_ready(); a hub restarted
     * by the node's supervisor announces itself now. */
    if (atomic_load(&network_ready))
        send_self_after(ctx, 0, "{'$ph_hub', announce}");
    return PH_OK;
fail:
    hub_free(h);
    return PH_STOP;
}

static void hub_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    hub *h = state;
    helper_stop();
    if (!h)
        return;
    /* The runs still queued go out without waiting; nothing waits here. */
    hooks_flush_nowait(h->hooks, ctx);
    if (!h->shutdown_hook_fired) {
        ph_term data = reason;
        hooks_dispatch(h->hooks, ctx, "coordinator_shutdown_hook", &data, NULL);
    }
    /* Killed (Process.exit(hub, :kill)): the node's supervisor starts a new
     * hub, which re-adopts the children; they keep running (adopt.c). */
    int keep = ph_match(reason, "killed") == 1 && adopt_stash(h) >= 0;
    if (keep)
        LOG_E("hub", "%s: killed; its %u child(ren) keep running for the next hub", h->cfg.hub_id,
              h->count);
    /* Otherwise children are supervised (an implicit link): they get the
     * hub's exit reason as a link exit signal. Free the books. */
    uint32_t len;
    const char *bytes;
    ph_buf rb;
    ph_buf_init_versioned(&rb);
    ph_buf_append_term(&rb, reason);
    bytes = rb.buff;
    len = (uint32_t)rb.index;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (c && c != GONE) {
            if (!keep)
                route_exit(ph_self(ctx), c->pid, bytes, len, 0);
            if (c->wait) {
                c->wait->outstanding--;
                stop_wait_done(c->wait);
            }
            free(c);
        }
    }
    ph_buf_free(&rb);
    stop_waits_finish(h);
    /* Tell the other members now rather than let them wait for the DOWN
     * (after a graceful leave they know already). */
    for (int i = 0; i < h->members.n && !h->leaving; i++)
        send_hub_message(h, ctx, h->members.members[i].node, HM_LEAVE);
    hub_free(h);
}

static const ph_worker_module hub_module = {
    .name = "$hub",
    .init = hub_init,
    .handle_call = hub_call,
    .handle_info = hub_info,
    .terminate = hub_terminate,
    .system = 1,
};

int hub_config_defaults(hub_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->hub_id, "my_hub");
    c->hubs_discover_interval = 10000;
    c->deadlock_recovery_timeout = 60000;
    c->storage_purge_interval = 15000;
    c->migr_base_timeout = 15000;
    c->dsup_max_restarts = 100;
    c->dsup_max_seconds = 4;
    c->dsup_shutdown_timeout = 60000;
    c->sync_interval = 15000;
    c->hook_timeout = HOOKS_CALL_TIMEOUT_MS;
    c->beam_discovery = 1;
    c->replication_factor = 1;
    c->retention = 5000;
    c->handover_data_wait = 3000;
    c->child_migration_timeout = 10000;
    strcpy(c->partition_type, "divergence");
    c->threshold_time = 30;
    c->initial_cluster_size = 1;
    c->track_max_size = 1;
    strcpy(c->distribution_type, "consistent_hashing");
    if (ph_buf_init(&c->child_specs) != 0 || ph_buf_init(&c->hooks) != 0 ||
        ph_buf_init(&c->seeds) != 0 || ph_buf_init(&c->distribution) != 0)
        return -1;
    return ph_build(&c->child_specs, "[]") == 0 && ph_build(&c->hooks, "[]") == 0 &&
                   ph_build(&c->seeds, "[]") == 0 &&
                   ph_build(&c->distribution, "#{~s => ~s}", "type", "consistent_hashing") == 0
               ? 0
               : -1;
}

void hub_config_free(hub_config *c)
{
    if (c->child_specs.buff)
        ph_buf_free(&c->child_specs);
    if (c->hooks.buff)
        ph_buf_free(&c->hooks);
    if (c->seeds.buff)
        ph_buf_free(&c->seeds);
    if (c->distribution.buff)
        ph_buf_free(&c->distribution);
}

void hub_network_ready(const hub_config *c)
{
    atomic_store(&network_ready, 1);
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{'$ph_hub', announce}") == 0)
        ph_send_named(NULL, c->hub_id, NULL, ph_buf_term(&b));
    ph_buf_free(&b);
}

int hub_prepare(const hub_config *c)
{
    if (!ph_find_module(hub_module.name) && ph_register_module(&hub_module) != 0)
        return -1;
    if (leave_init() != 0)
        return -1;
    hub_metrics_register();
    start_config = c;
    return 0;
}

const char *hub_module_name(void)
{
    return hub_module.name;
}

int hub_start(const hub_config *c)
{
    if (hub_prepare(c) != 0)
        return -1;
    ph_buf args, error;
    ph_buf_init(&args);
    ph_buf_init(&error);
    ph_build(&args, "[]");
    ph_spawn_opts opts = {.name = c->hub_id};
    ph_pid pid;
    int rc = ph_spawn(NULL, hub_module.name, ph_buf_term(&args), &opts, &pid, &error);
    if (rc != 0) {
        char text[512];
        LOG_E("hub", "hub %s did not start: %s", c->hub_id,
              ph_term_format(ph_buf_term(&error), text, sizeof text));
    }
    ph_buf_free(&args);
    ph_buf_free(&error);
    return rc;
}
