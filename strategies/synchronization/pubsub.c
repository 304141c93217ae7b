/* pubsub.c - the PubSub synchronization strategy (ProcessHub's default):
 * every registry change goes to every member in one message; every
 * sync_interval each node sends every member the rows it runs (repair). */
#include "strategies/synchronization/sync_ops.h"

static int pubsub_init(hub *h, char *err, size_t err_size)
{
    (void)err;
    (void)err_size;
    h->sync_state = NULL;
    return 0;
}

static void pubsub_free(hub *h)
{
    (void)h;
}

static void pubsub_propagate(hub *h, ph_ctx *ctx, const elist *registered,
                             const elist *unregistered)
{
    if (registered->n)
        send_sync(h, ctx, 0, HM_REGISTERED, registered);
    if (unregistered->n)
        send_sync(h, ctx, 0, HM_UNREGISTERED, unregistered);
}

/* Every node sends the rows it runs to every member; a receiver adds what
 * it missed ("append") and drops what it believes the sender runs but the
 * sender no longer does ("detach"): apply_repair. */
static void pubsub_tick(hub *h, ph_ctx *ctx)
{
    elist l;
    if (h->members.n == 0 || elist_init(&l) != 0)
        return;
    sync_local_rows(h, &l);
    send_sync(h, ctx, 0, HM_REPAIR, &l);
    elist_free(&l);
}

const sync_ops pubsub_sync = {
    .type = "pubsub",
    .init = pubsub_init,
    .free = pubsub_free,
    .propagate = pubsub_propagate,
    .tick = pubsub_tick,
    .joined = NULL,
    .message = NULL,
};
