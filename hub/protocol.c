/* protocol.c - the table of hub message kinds, their decoding and the start
 * of their encoding; see protocol.h. */
#include "hub/protocol.h"

#include "hub/runtime/atoms.h"

#include <string.h>

const hub_msg_type hub_msg_types[HM_COUNT] = {
    [HM_HELLO] = {"hello", SHAPE_MEMBERS},
    [HM_WELCOME] = {"welcome", SHAPE_MEMBERS},
    [HM_LEAVE] = {"leave", SHAPE_MEMBERS},
    [HM_LEAVE_DONE] = {"leave_done", SHAPE_MEMBERS},
    [HM_LEAVING] = {"leaving", SHAPE_MEMBERS},
    [HM_REGISTERED] = {"registered", SHAPE_NODE_LIST},
    [HM_UNREGISTERED] = {"unregistered", SHAPE_NODE_LIST},
    [HM_STOP] = {"stop", SHAPE_STOP},
    [HM_UNDO_MOVE] = {"undo_move", SHAPE_NODE_LIST},
    [HM_REPAIR] = {"repair", SHAPE_NODE_LIST},
    [HM_STOP_LATE] = {"stop_late", SHAPE_NODE_LIST},
    [HM_GOSSIP_UPDATE] = {"gossip_update", SHAPE_GOSSIP},
    [HM_GOSSIP_SYNC] = {"gossip_sync", SHAPE_GOSSIP},
    [HM_GOSSIP_SEQ] = {"gossip_seq", SHAPE_NODE_SEQ},
    [HM_LB_REPORT] = {"lb_report", SHAPE_NODE_TERM},
    [HM_LB_SCORES] = {"lb_scores", SHAPE_NODE_TERM},
    [HM_PARTITION_LOG] = {"partition_log", SHAPE_NODE_TERM},
    [HM_START] = {"start", SHAPE_START},
    [HM_START_RESULT] = {"start_result", SHAPE_ANSWER},
    [HM_START_FORWARDED] = {"start_forwarded", SHAPE_ANSWER},
    [HM_STOP_AWAIT] = {"stop_await", SHAPE_STOP_AWAIT},
    [HM_STOP_DONE] = {"stop_done", SHAPE_ANSWER},
    [HM_MOVE_TIMEOUT] = {"move_timeout", SHAPE_REF},
    [HM_START_TIMEOUT] = {"start_timeout", SHAPE_REF},
    [HM_STOP_TIMEOUT] = {"stop_timeout", SHAPE_REF},
    [HM_RETENTION_OVER] = {"retention_over", SHAPE_REF},
    [HM_RECONCILE] = {"reconcile", SHAPE_DUE},
    [HM_REPAIR_TICK] = {"repair_tick", SHAPE_SIGNAL},
    [HM_ORPHAN_CHECK] = {"orphan_check", SHAPE_SIGNAL},
    [HM_CONFIRM_TICK] = {"confirm_tick", SHAPE_SIGNAL},
    [HM_GRACEFUL_LEAVE] = {"graceful_leave", SHAPE_SIGNAL},
    [HM_ANNOUNCE] = {"announce", SHAPE_SIGNAL},
    [HM_GOSSIP_TICK] = {"gossip_tick", SHAPE_SIGNAL},
    [HM_LB_TICK] = {"lb_tick", SHAPE_SIGNAL},
};

/* The tuple's arity for each shape. */
static const int shape_arity[] = {
    [SHAPE_SIGNAL] = 2,   [SHAPE_MEMBERS] = 4,   [SHAPE_NODE_LIST] = 4, [SHAPE_START] = 6,
    [SHAPE_ANSWER] = 5,   [SHAPE_REF] = 3,       [SHAPE_DUE] = 3,       [SHAPE_GOSSIP] = 9,
    [SHAPE_NODE_SEQ] = 4, [SHAPE_NODE_TERM] = 4, [SHAPE_STOP] = 5,      [SHAPE_STOP_AWAIT] = 6,
};

static int kind_of(const char *name, hub_msg_kind *k)
{
    for (int i = 0; i < HM_COUNT; i++)
        if (strcmp(hub_msg_types[i].name, name) == 0) {
            *k = (hub_msg_kind)i;
            return 0;
        }
    return -1;
}

static int node_at(ph_term t, uint32_t *node)
{
    char name[PH_ATOM_BUF];
    if (ph_match(t, "~a", name) != 1 || (*node = atom_intern(name)) == ATOM_NONE)
        return -1;
    return 0;
}

static int is_list(ph_term t)
{
    int type = ph_term_type(t, NULL);
    return type == ERL_LIST_EXT || type == ERL_NIL_EXT;
}

int hub_msg_decode(ph_term msg, hub_msg *m)
{
    char tag[PH_ATOM_BUF], kind[PH_ATOM_BUF];
    int index = msg.index, arity;
    memset(m, 0, sizeof *m);
    if (ei_decode_tuple_header(msg.buf, &index, &arity) != 0 || arity < 2 ||
        ei_decode_atom(msg.buf, &index, tag) != 0 || strcmp(tag, "$ph_hub") != 0 ||
        ei_decode_atom(msg.buf, &index, kind) != 0 || kind_of(kind, &m->kind) != 0)
        return -1;
    hub_msg_shape shape = hub_msg_types[m->kind].shape;
    if (arity != shape_arity[shape])
        return -1;
    ph_term a, b;
    unsigned long long due;
    switch (shape) {
    case SHAPE_SIGNAL:
        return 0;
    case SHAPE_MEMBERS:
        if (ph_match(msg, "{_, _, ~t, ~t}", &a, &m->list) != 1 || ph_decode_pid(a, &m->pid) != 0)
            return -1;
        return 0;
    case SHAPE_NODE_LIST:
        if (ph_match(msg, "{_, _, ~t, ~t}", &a, &m->list) != 1 || node_at(a, &m->node) != 0)
            return -1;
        return 0;
    case SHAPE_STOP:
        if (ph_match(msg, "{_, _, ~t, ~t, ~u}", &a, &m->list, &due) != 1 ||
            node_at(a, &m->node) != 0 || !is_list(m->list))
            return -1;
        m->seq = due;
        return 0;
    case SHAPE_STOP_AWAIT:
        if (ph_match(msg, "{_, _, ~t, ~t, ~t, ~u}", &m->id, &b, &m->term, &due) != 1 ||
            ph_decode_ref(m->id, &m->ref) != 0 || node_at(b, &m->node) != 0 || !is_list(m->term))
            return -1;
        m->seq = due;
        return 0;
    case SHAPE_START:
        if (ph_match(msg, "{_, _, ~t, ~t, ~t, ~t}", &m->id, &a, &m->list, &m->opts) != 1 ||
            ph_decode_pid(a, &m->pid) != 0)
            return -1;
        return 0;
    case SHAPE_ANSWER:
        if (ph_match(msg, "{_, _, ~t, ~t, ~t}", &m->id, &b, &m->term) != 1 ||
            ph_decode_ref(m->id, &m->ref) != 0 || node_at(b, &m->node) != 0)
            return -1;
        return 0;
    case SHAPE_REF:
        if (ph_match(msg, "{_, _, ~t}", &m->id) != 1 || ph_decode_ref(m->id, &m->ref) != 0)
            return -1;
        return 0;
    case SHAPE_DUE:
        if (ph_match(msg, "{_, _, ~u}", &due) != 1)
            return -1;
        m->due = due;
        return 0;
    case SHAPE_GOSSIP: {
        ph_term o, r;
        if (ph_match(msg, "{_, _, ~t, ~t, ~t, ~u, ~t, ~t, ~t}", &a, &r, &o, &due, &m->acks,
                     &m->targeted, &m->term) != 1 ||
            node_at(a, &m->node) != 0 || ph_decode_ref(r, &m->ref) != 0 ||
            node_at(o, &m->origin) != 0 || !is_list(m->acks) || !is_list(m->targeted))
            return -1;
        m->id = r;
        m->seq = due;
        return 0;
    }
    case SHAPE_NODE_SEQ:
        if (ph_match(msg, "{_, _, ~t, ~u}", &a, &due) != 1 || node_at(a, &m->node) != 0)
            return -1;
        m->seq = due;
        return 0;
    case SHAPE_NODE_TERM:
        if (ph_match(msg, "{_, _, ~t, ~t}", &a, &m->term) != 1 || node_at(a, &m->node) != 0)
            return -1;
        return 0;
    }
    return -1;
}

int hub_msg_begin(ph_buf *b, hub_msg_kind k)
{
    if ((unsigned)k >= HM_COUNT)
        return -1;
    if (ei_x_encode_tuple_header(b, shape_arity[hub_msg_types[k].shape]) != 0 ||
        ei_x_encode_atom(b, "$ph_hub") != 0 || ei_x_encode_atom(b, hub_msg_types[k].name) != 0)
        return -1;
    return 0;
}
