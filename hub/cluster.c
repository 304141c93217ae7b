/* cluster.c - hub membership: greetings, joins, departures, discovery through
 * BEAM nodes (docs/cluster.md; the member list itself is membership.c). */
#include "hub/hub_internal.h"
#include "hub/runtime/remote.h"

static void add_connected(uint32_t node, void *arg);
static void ask_connected_nodes(hub *h, ph_ctx *ctx);
static int lists_node(ph_term nodes, uint32_t node);
static void send_greeting(hub *h, ph_ctx *ctx, uint32_t node, hub_msg_kind kind, uint32_t omit);

/* --- membership (docs/protocol.md, "Between hub nodes") ---------------- */

/* {'$ph_hub', Kind, HubPid, [MemberNode]} to the hub on node. */
void send_hub_message(hub *h, ph_ctx *ctx, uint32_t node, hub_msg_kind kind)
{
    send_greeting(h, ctx, node, kind, ATOM_NONE);
}

/* The same with the members other than omit: a welcome to a hub we just
 * added does not name it, so that it can tell whether we counted it as a
 * member before its greeting (handle_hello). */
static void send_greeting(hub *h, ph_ctx *ctx, uint32_t node, hub_msg_kind kind, uint32_t omit)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    ph_buf_reserve(&b, 64u + 64u * (uint32_t)h->members.n);
    hub_msg_begin(&b, kind);
    ph_encode_pid(&b, ph_self(ctx));
    for (int i = 0; i < h->members.n; i++) {
        if (h->members.members[i].node == omit)
            continue;
        ei_x_encode_list_header(&b, 1);
        atom_encode(&b, h->members.members[i].node);
    }
    ei_x_encode_empty_list(&b);
    ph_send_named(ctx, h->cfg.hub_id, atom_text(node), ph_buf_term(&b));
    ph_buf_free(&b);
    /* Out now, not when this run of the hub ends: a newcomer greets the
     * other members on our welcome, and a member sends its rows and moves
     * its children after the welcome (100k rows: tens of milliseconds). */
    remote_flush();
}

void member_left(hub *h, ph_ctx *ctx, member *e, const char *why)
{
    uint32_t node = e->node;
    ph_demonitor(ctx, &e->monitor);
    if (h->leaving) {
        /* We are on our way out: nothing of its comes to us. */
        LOG_I("hub", "%s: %s left the hub cluster (%s)", h->cfg.hub_id, atom_text(node), why);
        membership_remove(&h->members, e);
        strategy_node_removed(h, node);
        pending_node_gone(h, ctx, node);
        stop_waits_node_gone(h, node);
        hand_off_orphans(h, ctx, node);
        moves_drop_node(h, ctx, node); /* a hot_swap leave's moves to it */
        leave_confirmed(h, node);
        return;
    }
    LOG_I("hub", "%s: %s left the hub cluster (%s)", h->cfg.hub_id, atom_text(node), why);
    if (strcmp(why, "left") == 0)
        membership_lost_remove(&h->members, node);
    else if (membership_lost_add(&h->members, node) != 0) /* greeted again: a split heals */
        LOG_W("hub", "%s: out of memory remembering %s", h->cfg.hub_id, atom_text(node));
    metric_inc(&hm_redistributions);
    /* ProcessHub's order (§6.6): pre leave hook, lock, NodeDown (pre
     * redistribution, redundancy hook, restarts, unlock, post), post leave */
    fire_node_hook(h, ctx, "pre_cluster_leave_hook", node);
    hub_lock(h, ctx);
    membership_remove(&h->members, e);
    strategy_node_removed(h, node);
    pending_node_gone(h, ctx, node);
    stop_waits_node_gone(h, node);
    moves_drop_node(h, ctx, node);
    partition_member_left(h, ctx, node);
    fire_redistribution_hook(h, ctx, "pre_nodes_redistribution_hook", "nodedown", node);
    fire_children_redistribution(h, ctx, node, 0);
    failover(h, ctx, node);
    hub_unlock_after_hooks(h, ctx);
    fire_redistribution_hook(h, ctx, "post_nodes_redistribution_hook", "nodedown", node);
    fire_node_hook(h, ctx, "post_cluster_leave_hook", node);
}

/* hello / welcome from another hub: it joins (or is known already), and
 * the members it knows are greeted in turn. */
void handle_hello(hub *h, ph_ctx *ctx, ph_pid from, ph_term their_members, int reply)
{
    if (from.node == h->self_node)
        return;
    member *e = membership_find(&h->members, from.node);
    if (e && !ph_pid_equal(e->hub, from)) {
        member_left(h, ctx, e, "its hub restarted"); /* a new incarnation */
        e = NULL;
    }
    /* Whether the sender counts us as a member. A hub that lost us (a
     * cut, a connection replaced) while we kept it dropped our rows and
     * ignored our updates since: it needs them again, and the rows we
     * hold of it may be stale (below). */
    int they_know_us = lists_node(their_members, h->self_node);
    int joined = 0;
    if (!e) {
        ph_ref mon;
        if (ph_monitor(ctx, from, &mon) != 0 ||
            membership_add(&h->members, from.node, from, &mon) != 0) {
            LOG_E("hub", "%s: out of memory adding a member", h->cfg.hub_id);
            return;
        }
        LOG_I("hub", "%s: %s joined the hub cluster", h->cfg.hub_id, atom_text(from.node));
        membership_lost_remove(&h->members, from.node);
        metric_inc(&hm_redistributions);
        /* ProcessHub's order (§6.3, 6.5): pre join hook, lock, post join
         * hook, then the redistribution (NodeUp) and the unlock */
        fire_node_hook(h, ctx, "pre_cluster_join_hook", from.node);
        strategy_node_added(h, from.node);
        hub_lock(h, ctx);
        fire_node_hook(h, ctx, "post_cluster_join_hook", from.node);
        partition_member_joined(h, ctx, from.node);
        joined = 1;
    }
    /* welcome first: the newcomer accepts our rows only from a member */
    if (reply)
        send_greeting(h, ctx, from.node, HM_WELCOME, joined ? from.node : ATOM_NONE);
    if (joined)
        unconfirmed_stops_send(h, ctx, from.node);
    if (joined) {
        /* a member that kept us while we lost it holds rows of ours that
         * may be stale: sent as a repair, which detaches those */
        /* Without hook handlers to run between them, our rows go and our
         * children move with one walk of the registry (reconcile_joined). */
        int hooked = hooks_has(h->hooks, "pre_nodes_redistribution_hook") ||
                     hooks_has(h->hooks, "pre_children_redistribution_hook");
        int done = !hooked && reconcile_joined(h, ctx, from.node, they_know_us) == 0;
        if (!done)
            send_local_registry(h, ctx, from.node, they_know_us);
        if ((e = membership_find(&h->members, from.node)) != NULL)
            e->rows_sent_ms = monotonic_ms();
        if (!done) {
            fire_redistribution_hook(h, ctx, "pre_nodes_redistribution_hook", "nodeup", from.node);
            fire_children_redistribution(h, ctx, from.node, 1);
            reconcile(h, ctx, FILL_JOINED);
        }
        fire_redistribution_hook(h, ctx, "post_nodes_redistribution_hook", "nodeup", from.node);
        hub_unlock_after_hooks(h, ctx);
    } else if (!they_know_us && monotonic_ms() - e->rows_sent_ms >= ROWS_RESEND_MS) {
        /* It lost us and we did not notice (its new connection replaced
         * the old one without a nodedown here): it joins us again on our
         * welcome and needs our rows, as on a join. (A greeting that
         * crossed our welcome, sent before it knew us, comes within
         * ROWS_RESEND_MS of our rows: losing us takes net_ticktime.) */
        LOG_I("hub", "%s: %s lost us and greets us again; our rows go to it", h->cfg.hub_id,
              atom_text(from.node));
        ph_ref mon; /* our monitor may have gone with its side of the old connection */
        if (ph_monitor(ctx, from, &mon) == 0) {
            ph_demonitor(ctx, &e->monitor);
            e->monitor = mon;
        }
        e->rows_sent_ms = monotonic_ms();
        /* an awaited stop sent on the old connection may be lost */
        stop_waits_node_gone(h, from.node);
        unconfirmed_stops_send(h, ctx, from.node);
        send_local_registry(h, ctx, from.node, 0);
    }
    greet_seen_nodes(h, ctx, their_members); /* the members it knows that we do not */
}

typedef struct node_set {
    uint32_t *nodes;
    int n, cap;
} node_set;

static void add_connected(uint32_t node, void *arg)
{
    node_set *s = arg;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        uint32_t *n = realloc(s->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return;
        s->nodes = n;
        s->cap = cap;
    }
    s->nodes[s->n++] = node;
}

/* Asks every connected node that is not a member which hidden nodes it
 * sees (rex: erlang:nodes(hidden)): BEAM nodes that talk to several
 * phnodes introduce them to each other. The answers come as
 * {discover_ref, [Node]}; phnodes and other non-BEAM nodes ignore it. */
static void ask_connected_nodes(hub *h, ph_ctx *ctx)
{
    node_set s = {0};
    ph_buf q;
    remote_for_each_node(add_connected, &s);
    h->discover_ref = ph_make_ref();
    if (ph_buf_init(&q) == 0) {
        int ok = ei_x_encode_tuple_header(&q, 3) == 0 && ei_x_encode_atom(&q, "$gen_call") == 0 &&
                 ei_x_encode_tuple_header(&q, 2) == 0 && ph_encode_pid(&q, ph_self(ctx)) == 0 &&
                 ph_encode_ref(&q, &h->discover_ref) == 0 &&
                 ph_build(&q, "{call, erlang, nodes, [hidden], user}") == 0;
        for (int i = 0; ok && i < s.n; i++)
            if (s.nodes[i] != h->self_node && !membership_find(&h->members, s.nodes[i]))
                ph_send_named(ctx, "rex", atom_text(s.nodes[i]), ph_buf_term(&q));
        ph_buf_free(&q);
    }
    free(s.nodes);
}

/* Greets the nodes of a list that are not members yet: the member list of
 * a hub that greeted us, or the hidden nodes a BEAM node sees (those that
 * run no hub of ours drop the hello). */
void greet_seen_nodes(hub *h, ph_ctx *ctx, ph_term nodes)
{
    list_walk w;
    ph_term t;
    char name[PH_ATOM_BUF];
    if (list_begin(&w, nodes) < 0)
        return;
    while (list_next(&w, &t) > 0) {
        uint32_t node;
        if (ph_match(t, "~a", name) == 1 && (node = atom_intern(name)) != ATOM_NONE &&
            node != h->self_node && !membership_find(&h->members, node))
            send_hub_message(h, ctx, node, HM_HELLO);
    }
}

/* 1 if the list of atoms names node. */
static int lists_node(ph_term nodes, uint32_t node)
{
    list_walk w;
    ph_term t;
    char name[PH_ATOM_BUF];
    if (list_begin(&w, nodes) < 0)
        return 0;
    while (list_next(&w, &t) > 0)
        if (ph_match(t, "~a", name) == 1 && atom_intern(name) == node)
            return 1;
    return 0;
}

/* Announces this hub to the seeds and the members (heals a split). */
void announce(hub *h, ph_ctx *ctx)
{
    list_walk w;
    ph_term t;
    char name[PH_ATOM_BUF];
    list_begin(&w, ph_buf_term(&h->seeds));
    while (list_next(&w, &t) > 0) {
        uint32_t node;
        if (ph_match(t, "~a", name) == 1 && (node = atom_intern(name)) != ATOM_NONE &&
            node != h->self_node)
            send_hub_message(h, ctx, node, HM_HELLO);
    }
    for (int i = 0; i < h->members.n; i++)
        send_hub_message(h, ctx, h->members.members[i].node, HM_HELLO);
    for (int i = 0; i < h->members.n_lost; i++) /* members lost in a split (or dead) */
        if (!membership_find(&h->members, h->members.lost[i]))
            send_hub_message(h, ctx, h->members.lost[i], HM_HELLO);
    if (h->cfg.beam_discovery)
        ask_connected_nodes(h, ctx);
    send_self_after(ctx, h->cfg.hubs_discover_interval, "{'$ph_hub', ~a}",
                    hub_msg_name(HM_ANNOUNCE));
}
