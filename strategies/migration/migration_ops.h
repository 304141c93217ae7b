/*
 * migration_ops.h - the migration strategy family (config
 * migration_strategy): what happens to a child's running copy when it
 * moves to its new owner (a member joined, or this node leaves
 * gracefully). Internal to the hub; hub/strategy.c picks one by its
 * "type" when the hub starts. Every call runs on the hub's own thread.
 *
 * A move (hub/migration.c) sends a batch of children to their new owner,
 * which starts them and answers. Then the strategy decides when the old
 * copies stop: ColdSwap at once; HotSwap once their state reached the new
 * copies (or the retention time is over).
 */
#ifndef PH_MIGRATION_OPS_H
#define PH_MIGRATION_OPS_H

#include "hub/hub_internal.h"

typedef struct migration_ops {
    const char *type;
    /* How long the new copies of a move wait for their state before they
     * serve (0: they serve at once, with the state init gave them). */
    unsigned (*handover_wait)(const hub *h);
    /* How long a move waits for its new owner to answer. */
    unsigned (*move_timeout)(const hub *h);
    /* The new owner of mv answered: started, [{Cid, [{Node, NewPid}]}],
     * are new copies; their old copies here are the strategy's to stop,
     * with move_finish(), which also frees mv. */
    void (*moved)(hub *h, ph_ctx *ctx, move *mv, ph_term started);
    /* This node leaves gracefully (SIGTERM): its ring no
     * longer has it. The strategy ends with leave_announce(). */
    void (*leave)(hub *h, ph_ctx *ctx);
    /* A worker's {process_hub, retention_handled | handover_confirmed,
     * Cid} (confirmed says which), and a move's retention time is over.
     * NULL where the strategy sends no handover. */
    void (*worker_message)(hub *h, ph_ctx *ctx, ph_term cid, int confirmed);
    void (*retention_over)(hub *h, ph_ctx *ctx, const ph_ref *ref);
} migration_ops;

extern const migration_ops cold_swap_migration;
extern const migration_ops hot_swap_migration;

#endif
