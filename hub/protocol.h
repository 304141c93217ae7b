/*
 * protocol.h - the messages between hub nodes and the hub's timers, all
 * {'$ph_hub', Kind, ...} (docs/protocol.md, "Between hub nodes"). One table
 * (protocol.c) names every kind and its shape; every message is decoded
 * there, once, and every one is begun there (hub_msg_begin), so a kind's
 * name and arity live in one place. Strategies add their kinds here.
 */
#ifndef PH_HUB_PROTOCOL_H
#define PH_HUB_PROTOCOL_H

#include <processhub/worker.h>
#include <stdint.h>

typedef enum hub_msg_kind {
    /* {'$ph_hub', Kind, HubPid, [MemberNode]} */
    HM_HELLO,
    HM_WELCOME,
    HM_LEAVE,
    HM_LEAVE_DONE,
    HM_LEAVING,
    /* {'$ph_hub', Kind, Node, List} */
    HM_REGISTERED,
    HM_UNREGISTERED,
    HM_UNDO_MOVE,
    HM_REPAIR,
    HM_STOP_LATE, /* List = [{Cid, Stamp}]: stops kept for members that missed them */
    /* {'$ph_hub', stop, Node, [Cid], Stamp} */
    HM_STOP,
    /* {'$ph_hub', Kind, Relay, Ref, Origin, Seq, Acks, Targeted, Data}
     * (the gossip synchronization strategy) */
    HM_GOSSIP_UPDATE,
    HM_GOSSIP_SYNC,
    /* {'$ph_hub', gossip_seq, Node, Seq} */
    HM_GOSSIP_SEQ,
    /* {'$ph_hub', Kind, Node, Data} (the centralized_load_balancer
     * distribution strategy: a member's report, the leader's scoreboard) */
    HM_LB_REPORT,
    HM_LB_SCORES,
    /* {'$ph_hub', partition_log, Node, [{Node, Seconds}]} (dynamic_quorum) */
    HM_PARTITION_LOG,
    /* {'$ph_hub', start, Id, ReplyTo, [Spec], Opts} */
    HM_START,
    /* {'$ph_hub', Kind, Ref, Node, Term} */
    HM_START_RESULT,
    HM_START_FORWARDED,
    /* an awaited stop_children: {'$ph_hub', stop_await, Ref, Node, [Cid], Stamp}
     * to every member, each answering {'$ph_hub', stop_done, Ref, Node, ok} */
    HM_STOP_AWAIT,
    HM_STOP_DONE,
    /* timers: {'$ph_hub', Kind, Ref} */
    HM_MOVE_TIMEOUT,
    HM_START_TIMEOUT,
    HM_STOP_TIMEOUT,
    HM_RETENTION_OVER,
    /* timer: {'$ph_hub', reconcile, Due} */
    HM_RECONCILE,
    /* timers and signals: {'$ph_hub', Kind} */
    HM_REPAIR_TICK,
    HM_ORPHAN_CHECK,
    HM_CONFIRM_TICK,
    HM_GRACEFUL_LEAVE,
    HM_ANNOUNCE,
    HM_GOSSIP_TICK,
    HM_LB_TICK,
    HM_COUNT
} hub_msg_kind;

typedef enum hub_msg_shape {
    SHAPE_SIGNAL,     /* {'$ph_hub', Kind} */
    SHAPE_MEMBERS,    /* pid = HubPid, list = [MemberNode] */
    SHAPE_NODE_LIST,  /* node, list */
    SHAPE_STOP,       /* node, list, seq = the stop's stamp */
    SHAPE_START,      /* id (a ref or undefined), pid = ReplyTo, list = specs, opts */
    SHAPE_ANSWER,     /* id, ref, node, term = the result or [Node] */
    SHAPE_STOP_AWAIT, /* id, ref, node, term = [Cid], seq = the stop's stamp */
    SHAPE_REF,        /* id, ref */
    SHAPE_DUE,        /* due */
    SHAPE_GOSSIP,     /* node = Relay, id/ref, origin, seq, acks, targeted, term = Data */
    SHAPE_NODE_SEQ,   /* node, seq */
    SHAPE_NODE_TERM,  /* node, term (unchecked: checked where it is used) */
} hub_msg_shape;

typedef struct hub_msg_type {
    const char *name;
    hub_msg_shape shape;
} hub_msg_type;

extern const hub_msg_type hub_msg_types[HM_COUNT];

/* A decoded message: views into the message's buffer. */
typedef struct hub_msg {
    hub_msg_kind kind;
    ph_pid pid;
    uint32_t node;
    ph_term list, id, opts, term;
    ph_ref ref;
    uint64_t due;
    /* gossip: the node whose change it is, its number, and the node lists
     * (unchecked lists: their elements are checked where they are used) */
    uint32_t origin;
    uint64_t seq;
    ph_term acks, targeted;
} hub_msg;

/* 0 and m filled in, or -1 if msg is not a well-formed hub message (not
 * '$ph_hub', an unknown kind, or the wrong shape for its kind). */
int hub_msg_decode(ph_term msg, hub_msg *m);

/* Begins a message of kind k in b: the tuple header and the two atoms;
 * the caller appends the kind's fields in order. 0 or -1. */
int hub_msg_begin(ph_buf *b, hub_msg_kind k);

/* The kind's atom, for format strings ("{'$ph_hub', ~a, ...}"). */
static inline const char *hub_msg_name(hub_msg_kind k)
{
    return hub_msg_types[k].name;
}

#endif
