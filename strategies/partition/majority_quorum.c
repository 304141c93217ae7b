/* majority_quorum.c - ProcessHub's MajorityQuorum: healthy while the hub has
 * a majority of the largest size it has seen (max_seen / 2 + 1 nodes, this
 * one included). max_seen starts at max(initial_cluster_size, 1), grows with
 * joins when track_max_size is on, never shrinks by itself, and is set by
 * {reset_cluster_size, N} on this node only. */
#include "strategies/partition/partition_ops.h"
#include "strategies/partition/quorum.h"

typedef struct mq_state {
    long max_seen;
} mq_state;

static long nodes(const hub *h)
{
    return h->members.n + 1;
}

static int mq_init(hub *h, char *err, size_t err_size)
{
    mq_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    s->max_seen = majority_initial_size((long)h->cfg.initial_cluster_size, nodes(h));
    h->part_state = s;
    return 0;
}

static void mq_free(hub *h)
{
    free(h->part_state);
    h->part_state = NULL;
}

/* A node started with initial_cluster_size 5 is below its quorum until
 * others join (ProcessHub's init evaluates the lock the same way). */
static int mq_starts_partitioned(hub *h)
{
    mq_state *s = h->part_state;
    return !majority_present(s->max_seen, nodes(h));
}

static int mq_left(hub *h, uint32_t node)
{
    (void)node;
    mq_state *s = h->part_state;
    return !majority_present(s->max_seen, nodes(h));
}

static int mq_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    (void)ctx;
    (void)node;
    mq_state *s = h->part_state;
    s->max_seen = majority_after_join(s->max_seen, nodes(h), h->cfg.track_max_size);
    return majority_present(s->max_seen, nodes(h));
}

static int mq_reset_size(hub *h, long n, int *present)
{
    mq_state *s = h->part_state;
    s->max_seen = n;
    *present = majority_present(s->max_seen, nodes(h));
    return 0;
}

static int mq_describe(hub *h, ph_buf *out)
{
    mq_state *s = h->part_state;
    return ph_build(out,
                    "#{type => majority_quorum, max_seen => ~i, quorum => ~i, nodes => ~i, "
                    "track_max_size => ~a}",
                    s->max_seen, majority_quorum(s->max_seen), nodes(h),
                    h->cfg.track_max_size ? "true" : "false");
}

const partition_ops majority_quorum_partition = {
    .type = "majority_quorum",
    .init = mq_init,
    .free = mq_free,
    .starts_partitioned = mq_starts_partitioned,
    .left = mq_left,
    .joined = mq_joined,
    .reset_size = mq_reset_size,
    .describe = mq_describe,
};
