/* static_quorum.c - ProcessHub's StaticQuorum: healthy while the hub has at
 * least quorum_size nodes (this one included); with startup_confirm a node
 * that starts below it starts in partition mode. */
#include "strategies/partition/partition_ops.h"
#include "strategies/partition/quorum.h"

static int nodes(const hub *h)
{
    return h->members.n + 1;
}

static int sq_init(hub *h, char *err, size_t err_size)
{
    if (h->cfg.quorum_size < 1) {
        snprintf(err, err_size, "static_quorum needs quorum_size (nodes, >= 1)");
        return -1;
    }
    h->part_state = NULL;
    return 0;
}

static int sq_starts_partitioned(hub *h)
{
    return h->cfg.startup_confirm && !static_quorum_present(nodes(h), h->cfg.quorum_size);
}

static int sq_left(hub *h, uint32_t node)
{
    (void)node;
    return !static_quorum_present(nodes(h), h->cfg.quorum_size);
}

static int sq_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    (void)ctx;
    (void)node;
    return static_quorum_present(nodes(h), h->cfg.quorum_size);
}

static int sq_describe(hub *h, ph_buf *out)
{
    return ph_build(
        out, "#{type => static_quorum, quorum_size => ~i, startup_confirm => ~a, nodes => ~i}",
        h->cfg.quorum_size, h->cfg.startup_confirm ? "true" : "false", (long)nodes(h));
}

const partition_ops static_quorum_partition = {
    .type = "static_quorum",
    .init = sq_init,
    .starts_partitioned = sq_starts_partitioned,
    .left = sq_left,
    .joined = sq_joined,
    .describe = sq_describe,
};
