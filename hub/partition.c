/* partition.c - partition tolerance on this node: the strategy in use
 * (strategies/partition/, chosen by partition_tolerance_strategy's type),
 * asked after every membership change; partition mode (children stopped,
 * registry kept, starts and stops refused) and the way out of it; the
 * requests about it; the hook that reports a doubled child resolved. */
#include "hub/hub_internal.h"

#include "strategies/partition/partition_ops.h"

static const partition_ops *const partition_types[] = {
    &divergence_partition,
    &static_quorum_partition,
    &dynamic_quorum_partition,
    &majority_quorum_partition,
};

int partition_init(hub *h, char *err, size_t err_size)
{
    const char *type = h->cfg.partition_type[0] ? h->cfg.partition_type : "divergence";
    h->part = NULL;
    for (size_t i = 0; i < sizeof partition_types / sizeof partition_types[0]; i++)
        if (strcmp(partition_types[i]->type, type) == 0)
            h->part = partition_types[i];
    if (!h->part) {
        snprintf(err, err_size, "no partition tolerance strategy \"%s\"", type);
        return -1;
    }
    return h->part->init(h, err, err_size);
}

void partition_free(hub *h)
{
    if (h->part && h->part->free)
        h->part->free(h);
    h->part = NULL;
}

/* {Event, [Node]}: partitioned | healed, and the nodes of the hub now. */
static void fire_partition_hook(hub *h, ph_ctx *ctx, const char *key, const char *event)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    int rc = ei_x_encode_tuple_header(&b, 2) || ei_x_encode_atom(&b, event) ||
             ei_x_encode_list_header(&b, h->members.n + 1) || atom_encode(&b, h->self_node);
    for (int i = 0; i < h->members.n && rc == 0; i++)
        rc = atom_encode(&b, h->members.members[i].node);
    if (rc == 0 && ei_x_encode_empty_list(&b) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

static void fire_priority_hook(hub *h, ph_ctx *ctx, int locked)
{
    ph_buf b;
    if (!hooks_has(h->hooks, "priority_state_updated_hook") || ph_buf_init(&b) != 0)
        return;
    if ((locked ? ph_build(&b, "{10, #{local_priority_set => true}}") : ph_build(&b, "{0, #{}}")) ==
        0)
        fire(h, ctx, "priority_state_updated_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* Quorum lost: every child here stops (no restart, no unregistration: the
 * registry keeps their rows, as ProcessHub's does); starts and stops are
 * refused until the quorum is back. */
static void enter(hub *h, ph_ctx *ctx, const char *why)
{
    if (h->partitioned)
        return;
    fire_partition_hook(h, ctx, "pre_partition_hook", "partitioned");
    h->partitioned = 1;
    metric_gauge_set(&hm_partitioned, 1);
    metric_inc(&hm_partition_changes);
    int n = 0;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (c && c != GONE && !c->stopping) {
            stop_child_here(h, ctx, c, NULL);
            n++;
        }
    }
    LOG_W("hub",
          "%s: partitioned (%s, %s, %d node(s)): %d child(ren) stopped here, "
          "starts and stops refused until the quorum is back",
          h->cfg.hub_id, h->part->type, why, h->members.n + 1, n);
    fire_priority_hook(h, ctx, 1);
    fire_partition_hook(h, ctx, "post_partition_hook", "partitioned");
}

/* Quorum regained: the rows of the children stopped here lose this node
 * (here and, first, on every member), then the ordinary reconcile starts
 * with fresh pids those this node owns in today's view and hands the
 * others to their owners (orphan adoption), which may run them already. */
static void heal(hub *h, ph_ctx *ctx)
{
    if (!h->partitioned)
        return;
    fire_partition_hook(h, ctx, "pre_partition_hook", "healed");
    h->partitioned = 0;
    metric_gauge_set(&hm_partitioned, 0);
    metric_inc(&hm_partition_changes);
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    ph_buf key;
    int n = 0;
    if (ph_buf_init(&key) == 0) {
        while ((row = registry_next(h->reg, &i)) != NULL) {
            if (!row_local_pid(h, row, &pid))
                continue;
            ph_buf_reset(&key);
            ph_buf_append_term(&key, reg_row_key(row));
            note_unregistered(h, ph_buf_term(&key));
            registry_orphan_node(h->reg, row, h->self_node);
            fire_remove(h, ctx, ph_buf_term(&key), h->self_node);
            n++;
        }
        ph_buf_free(&key);
    }
    flush_sync(h, ctx); /* the members drop the stopped copies before any new one */
    LOG_W("hub", "%s: quorum regained (%s, %d node(s)): %d child(ren) that ran here placed again",
          h->cfg.hub_id, h->part->type, h->members.n + 1, n);
    reconcile(h, ctx, FILL_SHORT);
    fire_priority_hook(h, ctx, 0);
    fire_partition_hook(h, ctx, "post_partition_hook", "healed");
}

/* The hub started (static children running): below its quorum already? */
void partition_start(hub *h, ph_ctx *ctx)
{
    if (h->part->starts_partitioned && h->part->starts_partitioned(h))
        enter(h, ctx, "below the quorum at start");
}

/* A member left (the member list no longer has it). */
void partition_member_left(hub *h, ph_ctx *ctx, uint32_t node)
{
    if (h->part->left(h, node) && !h->partitioned) {
        char why[PH_ATOM_BUF + 16];
        snprintf(why, sizeof why, "%s left", atom_text(node));
        enter(h, ctx, why);
    }
}

/* A member joined (the member list has it); before this node sends it
 * its rows, so that a node healing here sends only children that run. */
void partition_member_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    if (h->part->joined(h, ctx, node) && h->partitioned)
        heal(h, ctx);
}

/* A member's partition_log. It may come before the welcome that makes its
 * sender a member here (the sender sends it while it handles our hello):
 * taken from any hub of this hub_id. */
void partition_message(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    if (!h->part->message) {
        LOG_D("hub", "%s: a partition_log from %s, not used by %s; dropped", h->cfg.hub_id,
              atom_text(m->node), h->part->type);
        return;
    }
    h->part->message(h, ctx, m->node, m->term);
}

/* A hand-off of a child found that its owner runs a copy already (two
 * halves of a split both ran it, two racing joins): the copy here stops.
 * conflict_resolved_hook: {Cid, {OwnerNode, OwnerPid}, [{Node, StoppedPid}]}. */
void partition_note_conflict(hub *h, ph_ctx *ctx, uint32_t owner, ph_term cid, ph_term reason)
{
    ph_term winner;
    ph_pid pid;
    metric_inc(&hm_conflicts);
    if (!hooks_has(h->hooks, "conflict_resolved_hook") ||
        ph_match(reason, "{already_started, ~t}", &winner) != 1)
        return;
    if (!h->key_scratch.buff && ph_buf_init(&h->key_scratch) != 0)
        return;
    ph_buf_reset(&h->key_scratch);
    reg_row *row = registry_key(cid, &h->key_scratch) == 0
                       ? registry_get(h->reg, h->key_scratch.buff, (uint32_t)h->key_scratch.index)
                       : NULL;
    ph_buf b, p;
    if (!row || !row_local_pid(h, row, &pid) || ph_buf_init(&b) != 0)
        return;
    if (ph_buf_init(&p) == 0) {
        if (ph_build(&b, "{~t, {~a, ~t}, [{~a, ~t}]}", cid, atom_text(owner), winner,
                     atom_text(h->self_node), pid_term(pid, &p)) == 0)
            fire(h, ctx, "conflict_resolved_hook", ph_buf_term(&b));
        ph_buf_free(&p);
    }
    ph_buf_free(&b);
}

/* A start sent here by a member while this node is partitioned: every
 * child of it fails with partitioned (a hand-off's sender keeps its copy). */
void partition_refuse_start(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    elist errors;
    list_walk w;
    ph_term spec;
    spec_info s;
    if (ph_match(m->id, "undefined") == 1) {
        LOG_W("hub", "%s: a start from %s not awaited, refused: partitioned", h->cfg.hub_id,
              atom_text(m->pid.node));
        return;
    }
    if (elist_init(&errors) != 0)
        return;
    list_begin(&w, m->list);
    while (list_next(&w, &spec) > 0)
        if (parse_spec(spec, &s) == 0)
            elist_add(&errors, "{~t, ~a, partitioned}", s.id, atom_text(h->self_node));
    ph_buf msg, tmp;
    if (ph_buf_init(&msg) == 0 && ph_buf_init(&tmp) == 0) {
        elist_to(&tmp, &errors);
        if (hub_msg_begin(&msg, HM_START_RESULT) == 0 && ph_buf_append_term(&msg, m->id) == 0 &&
            atom_encode(&msg, h->self_node) == 0 &&
            ph_build(&msg,
                     "{ok, #{status => error, started => [], errors => ~t, rollback => false}}",
                     ph_buf_term(&tmp)) == 0)
            ph_send(ctx, m->pid, ph_buf_term(&msg));
        ph_buf_free(&tmp);
    }
    ph_buf_free(&msg);
    elist_free(&errors);
}

/* The requests about partitions (docs/api.md): 0 when req was one of them
 * (the answer is in reply), -1 when it was not. */
int partition_request(hub *h, ph_ctx *ctx, ph_term req, ph_buf *reply)
{
    long n;
    if (ph_match(req, "is_partitioned") == 1)
        return ph_build(reply, "~a", h->partitioned ? "true" : "false"), 0;
    if (ph_match(req, "is_locked") == 1) /* a join or departure at work, or partition mode */
        return ph_build(reply, "~a", h->partitioned || h->locked > 0 ? "true" : "false"), 0;
    if (ph_match(req, "toggle_quorum_failure") == 1) {
        if (h->partitioned)
            return ph_build(reply, "{error, already_partitioned}"), 0;
        enter(h, ctx, "toggle_quorum_failure");
        return ph_build(reply, "ok"), 0;
    }
    if (ph_match(req, "toggle_quorum_success") == 1) {
        if (!h->partitioned)
            return ph_build(reply, "{error, not_partitioned}"), 0;
        heal(h, ctx);
        return ph_build(reply, "ok"), 0;
    }
    if (ph_match(req, "partition_state") == 1) {
        ph_buf d;
        if (ph_buf_init(&d) != 0)
            return ph_build(reply, "{error, enomem}"), 0;
        if (h->part->describe(h, &d) == 0)
            ph_build(reply, "{~a, ~t}", h->partitioned ? "partitioned" : "ok", ph_buf_term(&d));
        else
            ph_build(reply, "{error, enomem}");
        ph_buf_free(&d);
        return 0;
    }
    if (ph_match(req, "{reset_cluster_size, ~t}", NULL) == 1) {
        int present = 0;
        if (ph_match(req, "{reset_cluster_size, ~i}", &n) != 1 || n < 1)
            return ph_build(reply, "{error, {bad_cluster_size, ~t}}", req), 0;
        if (!h->part->reset_size || h->part->reset_size(h, n, &present) != 0)
            return ph_build(reply, "{error, {not_supported, ~a}}", h->part->type), 0;
        /* the new size counts at once, either way */
        if (present)
            heal(h, ctx);
        else
            enter(h, ctx, "reset_cluster_size");
        return ph_build(reply, "ok"), 0;
    }
    return -1;
}
