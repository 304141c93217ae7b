/* partition.c - partition tolerance on this node: the strategy in use
 * (strategies/partition/, chosen by partition_tolerance_strategy's type),
 * asked after every membership change. */
#include "hub/hub_internal.h"

#include "strategies/partition/partition_ops.h"

int partition_init(hub *h, char *err, size_t err_size)
{
    h->part = &divergence_partition;
    return h->part->init(h, err, err_size);
}

void partition_free(hub *h)
{
    if (h->part && h->part->free)
        h->part->free(h);
    h->part = NULL;
}

/* A member left (the member list no longer has it). */
void partition_member_left(hub *h, ph_ctx *ctx, uint32_t node)
{
    (void)ctx;
    h->part->left(h, node);
}

/* A member joined (the member list has it). */
void partition_member_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    h->part->joined(h, ctx, node);
}
