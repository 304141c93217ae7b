/* cold_swap.c - the ColdSwap migration strategy (the default): a moved
 * child starts afresh on its new owner and its old copy stops as soon as
 * the new owner runs it; a leaving node's children are restarted afresh by
 * their new owners. docs/strategies.md says why the old copy stops after
 * the new one starts, where ProcessHub stops it first. */
#include "strategies/migration/migration_ops.h"

static unsigned cold_wait(const hub *h)
{
    (void)h;
    return 0;
}

static unsigned cold_timeout(const hub *h)
{
    return h->cfg.migr_base_timeout;
}

static void cold_moved(hub *h, ph_ctx *ctx, move *mv, ph_term started)
{
    list_walk w;
    ph_term e, cid;
    if (list_begin(&w, started) >= 0)
        while (list_next(&w, &e) > 0)
            if (ph_match(e, "{~t, _}", &cid) == 1)
                elist_add(&mv->stop, "~t", cid);
    move_finish(h, ctx, mv);
}

static void cold_leave(hub *h, ph_ctx *ctx)
{
    leave_announce(h, ctx);
}

const migration_ops cold_swap_migration = {
    .type = "cold_swap",
    .handover_wait = cold_wait,
    .move_timeout = cold_timeout,
    .moved = cold_moved,
    .leave = cold_leave,
};
