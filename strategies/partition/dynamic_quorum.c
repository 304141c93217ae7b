/* dynamic_quorum.c - ProcessHub's DynamicQuorum: a log of the members that
 * went down in the last threshold_time seconds; the node is partitioned
 * when the share of nodes still up, 100 - down / (up + down) * 100 percent,
 * falls below quorum_size percent. A member that joins gets this node's log
 * (partition_log) and keeps it if it is longer than its own, so a node that
 * joins late knows of the losses before it. */
#include "strategies/partition/partition_ops.h"
#include "strategies/partition/quorum.h"

#include <time.h>

static long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long)ts.tv_sec;
}

static int dq_init(hub *h, char *err, size_t err_size)
{
    if (h->cfg.quorum_size < 1 || h->cfg.quorum_size > 100) {
        snprintf(err, err_size, "dynamic_quorum needs quorum_size (percent, 1 to 100)");
        return -1;
    }
    dq_log *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    h->part_state = s;
    return 0;
}

static void dq_free(hub *h)
{
    dq_log *s = h->part_state;
    if (s)
        dq_log_free(s);
    free(s);
    h->part_state = NULL;
}

/* Drops entries older than the threshold and those of node. */
static void prune(hub *h, dq_log *s, uint32_t node)
{
    dq_log_prune(s, now_s(), (long)h->cfg.threshold_time, node);
}

/* A logged node that is a member again (or this node) is up, not down: a
 * log taken from a member can name nodes that joined since (ProcessHub
 * counts them twice, so a cluster healed whole could stay partitioned). */
static int failing(hub *h, const dq_log *s)
{
    int down = 0;
    for (int i = 0; i < s->n; i++)
        down += s->log[i].node != h->self_node && !membership_find(&h->members, s->log[i].node);
    return dq_failing(h->members.n + 1, down, (long)h->cfg.quorum_size);
}

static int dq_left(hub *h, uint32_t node)
{
    dq_log *s = h->part_state;
    prune(h, s, node);
    if (dq_log_add(s, node, now_s()) != 0) {
        LOG_E("hub", "%s: dynamic_quorum: out of memory logging %s's departure", h->cfg.hub_id,
              atom_text(node));
        return failing(h, s);
    }
    LOG_I("hub", "%s: dynamic_quorum: %d node(s) up, %d down lately", h->cfg.hub_id,
          h->members.n + 1, s->n);
    return failing(h, s);
}

static int encode_log(const dq_log *s, ph_buf *out)
{
    int rc = s->n ? ei_x_encode_list_header(out, s->n) : 0;
    for (int i = 0; i < s->n && rc == 0; i++)
        rc = ei_x_encode_tuple_header(out, 2) || atom_encode(out, s->log[i].node) ||
             ei_x_encode_longlong(out, s->log[i].at);
    return rc == 0 && ei_x_encode_empty_list(out) == 0 ? 0 : -1;
}

static int dq_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    dq_log *s = h->part_state;
    prune(h, s, node);
    ph_buf b;
    if (ph_buf_init(&b) == 0) {
        if (hub_msg_begin(&b, HM_PARTITION_LOG) == 0 && atom_encode(&b, h->self_node) == 0 &&
            encode_log(s, &b) == 0)
            ph_send_named(ctx, h->cfg.hub_id, atom_text(node), ph_buf_term(&b));
        ph_buf_free(&b);
    }
    return !failing(h, s);
}

/* A member's log, [{Node, Seconds}]: kept if longer than ours. */
static void dq_message(hub *h, ph_ctx *ctx, uint32_t from, ph_term data)
{
    (void)ctx;
    dq_log *s = h->part_state;
    list_walk w;
    ph_term e;
    char name[PH_ATOM_BUF];
    long at;
    int n = list_begin(&w, data);
    if (n < 0) {
        LOG_W("hub", "%s: a partition_log from %s that is not a list; dropped", h->cfg.hub_id,
              atom_text(from));
        return;
    }
    if (n <= s->n)
        return;
    if (n > DQ_MAX_LOG)
        n = DQ_MAX_LOG;
    dq_entry *log = malloc((size_t)n * sizeof *log);
    int k = 0;
    while (log && k < n && list_next(&w, &e) > 0) {
        if (ph_match(e, "{~a, ~i}", name, &at) != 1) {
            LOG_W("hub", "%s: a malformed partition_log entry from %s; log dropped", h->cfg.hub_id,
                  atom_text(from));
            free(log);
            return;
        }
        log[k++] = (dq_entry){atom_intern(name), (long)at};
    }
    if (!log || dq_log_take(s, log, k) < 0) {
        free(log);
        LOG_E("hub", "%s: dynamic_quorum: out of memory taking %s's down-log", h->cfg.hub_id,
              atom_text(from));
        return;
    }
    free(log);
    LOG_I("hub", "%s: dynamic_quorum: took %s's down-log (%d node(s) down lately)", h->cfg.hub_id,
          atom_text(from), s->n);
}

static int dq_describe(hub *h, ph_buf *out)
{
    dq_log *s = h->part_state;
    ph_buf l;
    if (ph_buf_init(&l) != 0)
        return -1;
    int rc = encode_log(s, &l);
    if (rc == 0)
        rc = ph_build(out,
                      "#{type => dynamic_quorum, quorum_size => ~i, threshold_time => ~i, "
                      "nodes => ~i, down_log => ~t}",
                      h->cfg.quorum_size, (long)h->cfg.threshold_time, (long)(h->members.n + 1),
                      ph_buf_term(&l));
    ph_buf_free(&l);
    return rc;
}

const partition_ops dynamic_quorum_partition = {
    .type = "dynamic_quorum",
    .init = dq_init,
    .free = dq_free,
    .left = dq_left,
    .joined = dq_joined,
    .message = dq_message,
    .describe = dq_describe,
};
