/* dist.c - encodes the control message for each signal that leaves this
 * node and queues it on the peer's connection; see dist.h. */
#include "ei_glue/dist.h"

#include "ei_glue/connection.h"
#include "hub/runtime/remote.h"
#include "ei_glue/control.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/thread_buf.h"

#include <string.h>

/* Control tuples are encoded in a per-thread buffer, reused: begin() points
 * ctl at it and starts {Op, ...}. */
static _Thread_local ph_buf *ctl;

static int begin(int arity, long op)
{
    ctl = thread_buf(TBUF_CONTROL);
    if (!ctl)
        return -1;
    ctl->index = 0;
    if (ei_x_encode_version(ctl) != 0 || ei_x_encode_tuple_header(ctl, arity) != 0 ||
        ei_x_encode_long(ctl, op) != 0)
        return -1;
    return 0;
}

static int enc_pid(ph_pid pid)
{
    return ph_encode_pid(ctl, pid);
}

static int enc_atom(uint32_t atom)
{
    return atom_encode(ctl, atom) == 0 ? 0 : -1;
}

/* Reasons are versioned terms; inside a control tuple they go without
 * the version byte. */
static int enc_reason(const char *reason, uint32_t len)
{
    if (len < 2)
        return -1;
    return ei_x_append_buf(ctl, reason + 1, (int)len - 1) == 0 ? 0 : -1;
}

METRIC_COUNTER(m_msgs_out, "phnode_dist_messages_sent_total", "",
               "Messages (SEND, REG_SEND, ALIAS_SEND) sent to other nodes.");
METRIC_COUNTER(m_ctl_out, "phnode_dist_control_sent_total", "",
               "Other distribution operations (links, monitors, exits) sent to other nodes.");

static int send_to(uint32_t node, const char *msg, uint32_t msg_len)
{
    return connection_send(node, ctl->buff, (size_t)ctl->index, msg, msg_len);
}

static int send_pieces_to(uint32_t node, const struct iovec *msg, int n)
{
    return connection_send_pieces(node, ctl->buff, (size_t)ctl->index, msg, n);
}

static int encode_failed(const char *what)
{
    LOG_E("dist", "cannot encode %s", what);
    return -1;
}

static void dist_batch_begin(void)
{
    connection_cork();
}

static void dist_batch_end(void)
{
    connection_uncork();
}

static void dist_batch_flush(void)
{
    connection_flush_corked();
}

static int dist_send(ph_pid from, ph_pid to, const char *msg, uint32_t len)
{
    (void)from;
    if (begin(3, DOP_SEND) || ei_x_encode_atom(ctl, "") || enc_pid(to))
        return encode_failed("SEND");
    metric_inc(&m_msgs_out);
    return send_to(to.node, msg, len);
}

static int dist_reg_send(ph_pid from, uint32_t node, uint32_t name, const char *msg, uint32_t len)
{
    if (begin(4, DOP_REG_SEND) || enc_pid(from) || ei_x_encode_atom(ctl, "") || enc_atom(name))
        return encode_failed("REG_SEND");
    metric_inc(&m_msgs_out);
    return send_to(node, msg, len);
}

static int dist_alias_send(ph_pid from, const ph_ref *alias, const char *msg, uint32_t len)
{
    if (begin(3, DOP_ALIAS_SEND) || enc_pid(from) || ph_encode_ref(ctl, alias))
        return encode_failed("ALIAS_SEND");
    metric_inc(&m_msgs_out);
    return send_to(alias->node, msg, len);
}

static int dist_send_pieces(ph_pid from, ph_pid to, const struct iovec *msg, int n)
{
    (void)from;
    if (begin(3, DOP_SEND) || ei_x_encode_atom(ctl, "") || enc_pid(to))
        return encode_failed("SEND");
    metric_inc(&m_msgs_out);
    return send_pieces_to(to.node, msg, n);
}

static int dist_alias_send_pieces(ph_pid from, const ph_ref *alias, const struct iovec *msg, int n)
{
    if (begin(3, DOP_ALIAS_SEND) || enc_pid(from) || ph_encode_ref(ctl, alias))
        return encode_failed("ALIAS_SEND");
    metric_inc(&m_msgs_out);
    return send_pieces_to(alias->node, msg, n);
}

static int dist_link(ph_pid from, ph_pid to)
{
    if (begin(3, DOP_LINK) || enc_pid(from) || enc_pid(to))
        return encode_failed("LINK");
    return send_to(to.node, NULL, 0);
}

static int dist_unlink_id(ph_pid from, ph_pid to, uint64_t id)
{
    if (begin(4, DOP_UNLINK_ID) || ei_x_encode_ulonglong(ctl, id) || enc_pid(from) || enc_pid(to))
        return encode_failed("UNLINK_ID");
    return send_to(to.node, NULL, 0);
}

static int dist_unlink_id_ack(ph_pid from, ph_pid to, uint64_t id)
{
    if (id == 0)
        return 0; /* an old-style UNLINK is not acknowledged */
    if (begin(4, DOP_UNLINK_ID_ACK) || ei_x_encode_ulonglong(ctl, id) || enc_pid(from) ||
        enc_pid(to))
        return encode_failed("UNLINK_ID_ACK");
    return send_to(to.node, NULL, 0);
}

static int dist_exit(ph_pid from, ph_pid to, const char *reason, uint32_t len, int exit2)
{
    if (begin(4, exit2 ? DOP_EXIT2 : DOP_EXIT) || enc_pid(from) || enc_pid(to) ||
        enc_reason(reason, len))
        return encode_failed("EXIT");
    return send_to(to.node, NULL, 0);
}

static int dist_monitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name,
                        const ph_ref *ref)
{
    if (begin(4, DOP_MONITOR_P) || enc_pid(watcher) ||
        (name == ATOM_NONE ? enc_pid(target) : enc_atom(name)) || ph_encode_ref(ctl, ref))
        return encode_failed("MONITOR_P");
    return send_to(name == ATOM_NONE ? target.node : node, NULL, 0);
}

static int dist_demonitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name,
                          const ph_ref *ref)
{
    if (begin(4, DOP_DEMONITOR_P) || enc_pid(watcher) ||
        (name == ATOM_NONE ? enc_pid(target) : enc_atom(name)) || ph_encode_ref(ctl, ref))
        return encode_failed("DEMONITOR_P");
    return send_to(name == ATOM_NONE ? target.node : node, NULL, 0);
}

static int dist_monitor_exit(ph_pid watched, uint32_t name, ph_pid watcher, const ph_ref *ref,
                             const char *reason, uint32_t len)
{
    /* For a by-name monitor the watched process is named by its atom, so the
     * watcher's DOWN shows {Name, Node} as a BEAM would. */
    if (begin(5, DOP_MONITOR_P_EXIT) || (name == ATOM_NONE ? enc_pid(watched) : enc_atom(name)) ||
        enc_pid(watcher) || ph_encode_ref(ctl, ref) || enc_reason(reason, len))
        return encode_failed("MONITOR_P_EXIT");
    return send_to(watcher.node, NULL, 0);
}

const remote_ops dist_remote_ops = {
    .batch_begin = dist_batch_begin,
    .batch_end = dist_batch_end,
    .batch_flush = dist_batch_flush,
    .send = dist_send,
    .reg_send = dist_reg_send,
    .alias_send = dist_alias_send,
    .send_pieces = dist_send_pieces,
    .alias_send_pieces = dist_alias_send_pieces,
    .link = dist_link,
    .unlink_id = dist_unlink_id,
    .unlink_id_ack = dist_unlink_id_ack,
    .exit = dist_exit,
    .monitor = dist_monitor,
    .demonitor = dist_demonitor,
    .monitor_exit = dist_monitor_exit,
    .for_each_node = connections_for_each,
};
