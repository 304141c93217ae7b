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
    if (ei_decode_atom(d->buf, &d->index, text) != 0)
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

/* A term inside the control tuple (an exit reason), made versioned. */
typedef struct versioned_term {
    char *bytes;
    uint32_t len;
    char small[256];
} versioned_term;

static int dec_reason(decoder *d, versioned_term *v)
{
    int start = d->index;
    if (term_skip_valid(d->buf, &d->index) != 0)
        return -1;
    size_t n = (size_t)(d->index - start);
    v->bytes = n + 1 <= sizeof v->small ? v->small : malloc(n + 1);
    if (!v->bytes)
        return -1;
    v->bytes[0] = (char)131 /* version magic */;
    memcpy(v->bytes + 1, d->buf + start, n);
    v->len = (uint32_t)(n + 1);
    return 0;
}

static void reason_free(versioned_term *v)
{
    if (v->bytes && v->bytes != v->small)
        free(v->bytes);
}

static int local_target(const decoder *d, ph_pid to, int op)
{
    if (to.node == runtime_self_node())
        return 1;
    LOG_W("control", "%s sent operation %d for a pid of %s; ignored", atom_text(d->peer), op,
          atom_text(to.node));
    return 0;
}

/* The message after the control tuple must be exactly one versioned term;
 * it is validated here, bounded by the frame, once for its whole life. */
static int message_span(const char *body, size_t len, int ctl_end, const char **msg,
                        uint32_t *msg_len)
{
    if ((size_t)ctl_end >= len)
        return -1;
    const char *m = body + ctl_end;
    int rest = (int)(len - (size_t)ctl_end);
    if (term_external_end(m, rest) != rest)
        return -1;
    *msg = m;
    *msg_len = (uint32_t)rest;
    return 0;
}

static int expect_arity(const decoder *d, int arity)
{
    return d->arity == arity ? 0 : -1;
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

int control_dispatch(uint32_t peer, const char *body, size_t len)
{
    decoder d = {body, 0, 0, peer};
    int version;
    long op;
    /* ei decodes without bounds: the control tuple is validated first */
    if (len > 0x7fffffff || term_external_end(body, (int)len) < 0 ||
        ei_decode_version(body, &d.index, &version) != 0 ||
        ei_decode_tuple_header(body, &d.index, &d.arity) != 0 || d.arity < 1 ||
        ei_decode_long(body, &d.index, &op) != 0)
        return -1;
    metric_inc(is_message_op(op) ? &m_msgs_in : &m_ctl_in);

    ph_pid from = {0}, to = {0};
    ph_ref ref;
    uint32_t name;
    uint64_t id;
    const char *msg;
    uint32_t msg_len;
    versioned_term reason = {0};
    int rc = 0;

    switch (op) {
    case DOP_SEND:
    case DOP_SEND_TT:
    case DOP_SEND_SENDER:
    case DOP_SEND_SENDER_TT: {
        int tt = op == DOP_SEND_TT || op == DOP_SEND_SENDER_TT;
        if (expect_arity(&d, tt ? 4 : 3) ||
            (op >= DOP_SEND_SENDER ? dec_pid(&d, &from) : dec_skip(&d)) || dec_pid(&d, &to) ||
            (tt && dec_skip(&d)) || message_span(body, len, d.index, &msg, &msg_len))
            return -1;
        if (op < DOP_SEND_SENDER)
            from = (ph_pid){peer, 0, 0, 0}; /* SEND carries no sender */
        if (local_target(&d, to, (int)op))
            route_checked_message(from, to, msg, msg_len);
        return 0;
    }
    case DOP_REG_SEND:
    case DOP_REG_SEND_TT:
        if (expect_arity(&d, op == DOP_REG_SEND ? 4 : 5) || dec_pid(&d, &from) || dec_skip(&d) ||
            dec_atom(&d, &name) || (op == DOP_REG_SEND_TT && dec_skip(&d)) ||
            message_span(body, len, d.index, &msg, &msg_len))
            return -1;
        route_checked_reg_send(from, name, msg, msg_len);
        return 0;
    case DOP_LINK:
        if (expect_arity(&d, 3) || dec_pid(&d, &from) || dec_pid(&d, &to))
            return -1;
        if (local_target(&d, to, (int)op))
            route_link(from, to);
        return 0;
    case DOP_UNLINK: /* the old protocol: no id, no acknowledgement */
        if (expect_arity(&d, 3) || dec_pid(&d, &from) || dec_pid(&d, &to))
            return -1;
        if (local_target(&d, to, (int)op))
            route_unlink(from, to, 0);
        return 0;
    case DOP_UNLINK_ID:
    case DOP_UNLINK_ID_ACK:
        if (expect_arity(&d, 4) || dec_u64(&d, &id) || dec_pid(&d, &from) || dec_pid(&d, &to))
            return -1;
        if (!local_target(&d, to, (int)op))
            return 0;
        if (op == DOP_UNLINK_ID)
            route_unlink(from, to, id);
        else
            route_unlink_ack(from, to, id);
        return 0;
    case DOP_EXIT:
    case DOP_EXIT2:
    case DOP_EXIT_TT:
    case DOP_EXIT2_TT: {
        int tt = op == DOP_EXIT_TT || op == DOP_EXIT2_TT;
        if (expect_arity(&d, tt ? 5 : 4) || dec_pid(&d, &from) || dec_pid(&d, &to) ||
            (tt && dec_skip(&d)) || dec_reason(&d, &reason))
            return -1;
        if (local_target(&d, to, (int)op))
            route_exit(from, to, reason.bytes, reason.len, op == DOP_EXIT2 || op == DOP_EXIT2_TT);
        reason_free(&reason);
        return 0;
    }
    case DOP_PAYLOAD_EXIT:
    case DOP_PAYLOAD_EXIT_TT:
    case DOP_PAYLOAD_EXIT2:
    case DOP_PAYLOAD_EXIT2_TT: {
        int tt = op == DOP_PAYLOAD_EXIT_TT || op == DOP_PAYLOAD_EXIT2_TT;
        if (expect_arity(&d, tt ? 4 : 3) || dec_pid(&d, &from) || dec_pid(&d, &to) ||
            (tt && dec_skip(&d)) || message_span(body, len, d.index, &msg, &msg_len))
            return -1;
        if (local_target(&d, to, (int)op))
            route_exit(from, to, msg, msg_len, op >= DOP_PAYLOAD_EXIT2);
        return 0;
    }
    case DOP_MONITOR_P:
    case DOP_DEMONITOR_P:
        if (expect_arity(&d, 4) || dec_pid(&d, &from) || dec_proc(&d, &to, &name) ||
            dec_ref(&d, &ref))
            return -1;
        if (!local_target(&d, to, (int)op))
            return 0;
        if (op == DOP_MONITOR_P)
            route_monitor(from, to, runtime_self_node(), name, &ref);
        else
            route_demonitor(from, to, runtime_self_node(), name, &ref);
        return 0;
    case DOP_MONITOR_P_EXIT:
    case DOP_PAYLOAD_MONITOR_P_EXIT:
        if (expect_arity(&d, op == DOP_MONITOR_P_EXIT ? 5 : 4) || dec_proc(&d, &from, &name) ||
            dec_pid(&d, &to) || dec_ref(&d, &ref))
            return -1;
        if (name != ATOM_NONE)
            from.node = peer; /* a by-name monitor: name@peer */
        if (op == DOP_MONITOR_P_EXIT) {
            if (dec_reason(&d, &reason))
                return -1;
            msg = reason.bytes;
            msg_len = reason.len;
        } else if (message_span(body, len, d.index, &msg, &msg_len)) {
            return -1;
        }
        if (local_target(&d, to, (int)op))
            route_down(from, name, to, &ref, msg, msg_len);
        reason_free(&reason);
        return 0;
    case DOP_NODE_LINK:
    case DOP_GROUP_LEADER:
    case DOP_ALIAS_SEND:
    case DOP_ALIAS_SEND_TT:
    default:
        LOG_I("control",
              "%s sent distribution operation %ld, which this node does not handle; "
              "ignored",
              atom_text(peer), op);
        return rc;
    }
}
