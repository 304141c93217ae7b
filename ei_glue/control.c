/*
 * control.c - every distribution operation a peer can send is handled in
 * control_dispatch and nowhere else. Decoding is strict (each ei_decode_*
 * checked, the message must be exactly one term); a decoded operation
 * becomes one route_* call. Trace tokens are decoded and ignored.
 */
#include "ei_glue/control.h"

#include "ei_glue/term_trust.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/process.h"
#include "hub/runtime/route.h"
#include "hub/runtime/runtime.h"

#include <ei.h>
#include <stdlib.h>
#include <string.h>

typedef struct decoder {
    const char *buf;
    int index;
    int arity;
    uint32_t peer;
} decoder;

static int dec_pid(decoder *d, ph_pid *pid)
{
    ph_term t = {d->buf, d->index};
    if (ph_decode_pid(t, pid) != 0)
        return -1;
    return term_skip_valid(d->buf, &d->index) == 0 ? 0 : -1;
}

static int dec_ref(decoder *d, ph_ref *ref)
{
    ph_term t = {d->buf, d->index};
    if (ph_decode_ref(t, ref) != 0)
        return -1;
    return term_skip_valid(d->buf, &d->index) == 0 ? 0 : -1;
}

static int dec_atom(decoder *d, uint32_t *atom)
{
    char text[MAXATOMLEN_UTF8];
    /* as UTF-8, the atom table's encoding (ei_decode_atom gives Latin-1:
     * a registered name like 'wörker' would not be found) */
    if (ei_decode_atom_as(d->buf, &d->index, text, sizeof text, ERLANG_UTF8, NULL, NULL) != 0)
        return -1;
    *atom = atom_intern(text);
    return *atom == ATOM_NONE ? -1 : 0;
}

static int dec_skip(decoder *d)
{
    return term_skip_valid(d->buf, &d->index);
}

static int dec_u64(decoder *d, uint64_t *v)
{
    unsigned long long u;
    if (ei_decode_ulonglong(d->buf, &d->index, &u) != 0)
        return -1;
    *v = u;
    return 0;
}

/* pid or registered-name atom */
static int dec_proc(decoder *d, ph_pid *pid, uint32_t *name)
{
    int type, size;
    if (ei_get_type(d->buf, &d->index, &type, &size) != 0)
        return -1;
    if (type == ERL_PID_EXT || type == ERL_NEW_PID_EXT) {
        *name = ATOM_NONE;
        return dec_pid(d, pid);
    }
    memset(pid, 0, sizeof *pid);
    pid->node = runtime_self_node();
    return dec_atom(d, name);
}

/* A term inside the control tuple (an exit reason), made versioned: a copy
 * owned by the decoded operation. */
static int dec_reason(decoder *d, control_op *op)
{
    int start = d->index;
    if (term_skip_valid(d->buf, &d->index) != 0)
        return -1;
    size_t n = (size_t)(d->index - start);
    op->reason_copy = n + 1 <= sizeof op->small ? op->small : malloc(n + 1);
    if (!op->reason_copy)
        return -1;
    op->reason_copy[0] = (char)131 /* version magic */;
    memcpy(op->reason_copy + 1, d->buf + start, n);
    op->payload = op->reason_copy;
    op->payload_len = (uint32_t)(n + 1);
    return 0;
}

void control_op_free(control_op *op)
{
    if (op->reason_copy && op->reason_copy != op->small)
        free(op->reason_copy);
    op->reason_copy = NULL;
}

/* The message after the control tuple must be exactly one versioned term;
 * it is validated here, bounded by the frame, once for its whole life. */
static int message_span(const char *body, size_t len, int ctl_end, control_op *op)
{
    if ((size_t)ctl_end >= len)
        return -1;
    const char *m = body + ctl_end;
    int rest = (int)(len - (size_t)ctl_end);
    if (term_external_end(m, rest) != rest)
        return -1;
    op->payload = m;
    op->payload_len = (uint32_t)rest;
    return 0;
}

static int expect_arity(const decoder *d, int arity)
{
    return d->arity == arity ? 0 : -1;
}

int control_decode(uint32_t peer, const char *body, size_t len, control_op *op)
{
    decoder d = {body, 0, 0, peer};
    int version;
    memset(op, 0, sizeof *op);
    op->name = ATOM_NONE;
    /* ei decodes without bounds: the control tuple is validated first */
    if (len > 0x7fffffff || term_external_end(body, (int)len) < 0 ||
        ei_decode_version(body, &d.index, &version) != 0 ||
        ei_decode_tuple_header(body, &d.index, &d.arity) != 0 || d.arity < 1 ||
        ei_decode_long(body, &d.index, &op->op) != 0)
        return -1;
    int rc = 0;
    switch (op->op) {
    case DOP_SEND:
    case DOP_SEND_TT:
    case DOP_SEND_SENDER:
    case DOP_SEND_SENDER_TT: {
        int tt = op->op == DOP_SEND_TT || op->op == DOP_SEND_SENDER_TT;
        if (expect_arity(&d, tt ? 4 : 3) ||
            (op->op >= DOP_SEND_SENDER ? dec_pid(&d, &op->from) : dec_skip(&d)) ||
            dec_pid(&d, &op->to) || (tt && dec_skip(&d)) || message_span(body, len, d.index, op))
            rc = -1;
        else if (op->op < DOP_SEND_SENDER)
            op->from = (ph_pid){peer, 0, 0, 0}; /* SEND carries no sender */
        break;
    }
    case DOP_REG_SEND:
    case DOP_REG_SEND_TT:
        if (expect_arity(&d, op->op == DOP_REG_SEND ? 4 : 5) || dec_pid(&d, &op->from) ||
            dec_skip(&d) || dec_atom(&d, &op->name) ||
            (op->op == DOP_REG_SEND_TT && dec_skip(&d)) || message_span(body, len, d.index, op))
            rc = -1;
        break;
    case DOP_LINK:
    case DOP_UNLINK: /* the old protocol: no id, no acknowledgement */
        if (expect_arity(&d, 3) || dec_pid(&d, &op->from) || dec_pid(&d, &op->to))
            rc = -1;
        break;
    case DOP_UNLINK_ID:
    case DOP_UNLINK_ID_ACK:
        if (expect_arity(&d, 4) || dec_u64(&d, &op->id) || dec_pid(&d, &op->from) ||
            dec_pid(&d, &op->to))
            rc = -1;
        break;
    case DOP_EXIT:
    case DOP_EXIT2:
    case DOP_EXIT_TT:
    case DOP_EXIT2_TT: {
        int tt = op->op == DOP_EXIT_TT || op->op == DOP_EXIT2_TT;
        if (expect_arity(&d, tt ? 5 : 4) || dec_pid(&d, &op->from) || dec_pid(&d, &op->to) ||
            (tt && dec_skip(&d)) || dec_reason(&d, op))
            rc = -1;
        break;
    }
    case DOP_PAYLOAD_EXIT:
    case DOP_PAYLOAD_EXIT_TT:
    case DOP_PAYLOAD_EXIT2:
    case DOP_PAYLOAD_EXIT2_TT: {
        int tt = op->op == DOP_PAYLOAD_EXIT_TT || op->op == DOP_PAYLOAD_EXIT2_TT;
        if (expect_arity(&d, tt ? 4 : 3) || dec_pid(&d, &op->from) || dec_pid(&d, &op->to) ||
            (tt && dec_skip(&d)) || message_span(body, len, d.index, op))
            rc = -1;
        break;
    }
    case DOP_MONITOR_P:
    case DOP_DEMONITOR_P:
        if (expect_arity(&d, 4) || dec_pid(&d, &op->from) || dec_proc(&d, &op->to, &op->name) ||
            dec_ref(&d, &op->ref))
            rc = -1;
        break;
    case DOP_MONITOR_P_EXIT:
    case DOP_PAYLOAD_MONITOR_P_EXIT:
        if (expect_arity(&d, op->op == DOP_MONITOR_P_EXIT ? 5 : 4) ||
            dec_proc(&d, &op->from, &op->name) || dec_pid(&d, &op->to) || dec_ref(&d, &op->ref) ||
            (op->op == DOP_MONITOR_P_EXIT ? dec_reason(&d, op)
                                          : message_span(body, len, d.index, op)))
            rc = -1;
        else if (op->name != ATOM_NONE)
            op->from.node = peer; /* a by-name monitor: name@peer */
        break;
    default: /* NODE_LINK, GROUP_LEADER, ALIAS_SEND and unknown ones */
        return 1;
    }
    if (rc != 0)
        control_op_free(op);
    return rc;
}

static int local_target(uint32_t peer, ph_pid to, long op)
{
    if (to.node == runtime_self_node())
        return 1;
    LOG_W("control", "%s sent operation %ld for a pid of %s; ignored", atom_text(peer), op,
          atom_text(to.node));
    return 0;
}

METRIC_COUNTER(m_msgs_in, "phnode_dist_messages_received_total", "",
               "Messages (SEND, REG_SEND, ALIAS_SEND) received from other nodes.");
METRIC_COUNTER(m_ctl_in, "phnode_dist_control_received_total", "",
               "Other distribution operations (links, monitors, exits) received.");

static int is_message_op(long op)
{
    return op == DOP_SEND || op == DOP_SEND_TT || op == DOP_SEND_SENDER ||
           op == DOP_SEND_SENDER_TT || op == DOP_REG_SEND || op == DOP_REG_SEND_TT ||
           op == DOP_ALIAS_SEND || op == DOP_ALIAS_SEND_TT;
}

/* The message of op as a signal made from *block, the frame's own block
 * (which then belongs to the signal: *block is cleared); NULL without a
 * block, and the message is copied instead. */
static proc_signal *adopt_block(const control_op *op, char **block)
{
    if (!block || !*block)
        return NULL;
    proc_signal *s = signal_from_block(*block, SIG_MESSAGE, op->from, op->payload, op->payload_len);
    s->checked = 1; /* message_span validated it */
    *block = NULL;
    return s;
}

static void apply(uint32_t peer, const control_op *op, char **block)
{
    long o = op->op;
    metric_inc(is_message_op(o) ? &m_msgs_in : &m_ctl_in);
    proc_signal *s;
    switch (o) {
    case DOP_SEND:
    case DOP_SEND_TT:
    case DOP_SEND_SENDER:
    case DOP_SEND_SENDER_TT:
        if (!local_target(peer, op->to, o))
            return;
        if ((s = adopt_block(op, block)) != NULL)
            route_checked_signal(op->to, s);
        else
            route_checked_message(op->from, op->to, op->payload, op->payload_len);
        return;
    case DOP_REG_SEND:
    case DOP_REG_SEND_TT:
        if ((s = adopt_block(op, block)) != NULL)
            route_checked_reg_signal(op->name, s);
        else
            route_checked_reg_send(op->from, op->name, op->payload, op->payload_len);
        return;
    case DOP_LINK:
        if (local_target(peer, op->to, o))
            route_link(op->from, op->to);
        return;
    case DOP_UNLINK:
        if (local_target(peer, op->to, o))
            route_unlink(op->from, op->to, 0);
        return;
    case DOP_UNLINK_ID:
        if (local_target(peer, op->to, o))
            route_unlink(op->from, op->to, op->id);
        return;
    case DOP_UNLINK_ID_ACK:
        if (local_target(peer, op->to, o))
            route_unlink_ack(op->from, op->to, op->id);
        return;
    case DOP_EXIT:
    case DOP_EXIT2:
    case DOP_EXIT_TT:
    case DOP_EXIT2_TT:
    case DOP_PAYLOAD_EXIT:
    case DOP_PAYLOAD_EXIT_TT:
    case DOP_PAYLOAD_EXIT2:
    case DOP_PAYLOAD_EXIT2_TT:
        if (local_target(peer, op->to, o))
            route_exit(op->from, op->to, op->payload, op->payload_len,
                       o == DOP_EXIT2 || o == DOP_EXIT2_TT || o >= DOP_PAYLOAD_EXIT2);
        return;
    case DOP_MONITOR_P:
        if (local_target(peer, op->to, o))
            route_monitor(op->from, op->to, runtime_self_node(), op->name, &op->ref);
        return;
    case DOP_DEMONITOR_P:
        if (local_target(peer, op->to, o))
            route_demonitor(op->from, op->to, runtime_self_node(), op->name, &op->ref);
        return;
    case DOP_MONITOR_P_EXIT:
    case DOP_PAYLOAD_MONITOR_P_EXIT:
        if (local_target(peer, op->to, o))
            route_down(op->from, op->name, op->to, &op->ref, op->payload, op->payload_len);
        return;
    }
}

void control_apply(uint32_t peer, const control_op *op)
{
    apply(peer, op, NULL);
}

static int dispatch(uint32_t peer, const char *body, size_t len, char **block)
{
    control_op op;
    int rc = control_decode(peer, body, len, &op);
    if (rc < 0)
        return -1;
    if (rc > 0) {
        metric_inc(is_message_op(op.op) ? &m_msgs_in : &m_ctl_in);
        LOG_I("control",
              "%s sent distribution operation %ld, which this node does not handle; "
              "ignored",
              atom_text(peer), op.op);
        return 0;
    }
    apply(peer, &op, block);
    control_op_free(&op);
    return 0;
}

int control_dispatch(uint32_t peer, const char *body, size_t len)
{
    return dispatch(peer, body, len, NULL);
}

int control_dispatch_block(uint32_t peer, char *block, const char *body, size_t len)
{
    int rc = dispatch(peer, body, len, &block);
    signal_block_free(block); /* not a message (or dropped): nobody took it */
    return rc;
}
