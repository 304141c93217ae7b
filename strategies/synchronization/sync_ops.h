/*
 * sync_ops.h - the synchronization strategy family (config
 * synchronization_strategy): how this node's registry changes reach the
 * other members and how the registries are repaired. Internal to the hub
 * (unlike the distribution table, not a public API); hub/strategy.c picks
 * one by its "type" when the hub starts. Every call runs on the hub's own
 * thread.
 */
#ifndef PH_SYNC_OPS_H
#define PH_SYNC_OPS_H

#include "hub/hub_internal.h"

typedef struct sync_ops {
    const char *type;
    /* Sets up h->sync_state from h->cfg; 0, or -1 with a reason in err. */
    int (*init)(hub *h, char *err, size_t err_size);
    void (*free)(hub *h);
    /* One batch of this node's registry changes (the rows registered here
     * and the ids unregistered here by one request or message), not yet
     * known to any member. Either list may be empty, not both. */
    void (*propagate)(hub *h, ph_ctx *ctx, const elist *registered, const elist *unregistered);
    /* Every sync_interval: the periodic repair. */
    void (*tick)(hub *h, ph_ctx *ctx);
    /* A member that just joined was sent this node's rows (NULL: nothing). */
    void (*joined)(hub *h, ph_ctx *ctx, uint32_t node);
    /* A message of the strategy's own (a gossip_* kind); NULL: such
     * messages are logged and dropped. */
    void (*message)(hub *h, ph_ctx *ctx, const hub_msg *m);
} sync_ops;

extern const sync_ops pubsub_sync;
extern const sync_ops gossip_sync;

#endif
