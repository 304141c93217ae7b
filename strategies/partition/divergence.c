/* divergence.c - the divergence partition strategy (ProcessHub's default):
 * never partitioned; both sides of a split keep running, and the copies
 * started on both are resolved when the sides meet again (reconcile.c). */
#include "strategies/partition/partition_ops.h"

static int divergence_init(hub *h, char *err, size_t err_size)
{
    (void)err;
    (void)err_size;
    h->part_state = NULL;
    return 0;
}

static int divergence_left(hub *h, uint32_t node)
{
    (void)h;
    (void)node;
    return 0;
}

static int divergence_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    (void)h;
    (void)ctx;
    (void)node;
    return 1;
}

static int divergence_describe(hub *h, ph_buf *out)
{
    (void)h;
    return ph_build(out, "#{type => divergence}");
}

const partition_ops divergence_partition = {
    .type = "divergence",
    .init = divergence_init,
    .left = divergence_left,
    .joined = divergence_joined,
    .describe = divergence_describe,
};
