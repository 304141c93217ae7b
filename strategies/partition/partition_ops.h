/*
 * partition_ops.h - the partition tolerance strategy family (config
 * partition_tolerance_strategy, ProcessHub's PartitionTolerance): whether
 * this node keeps its quorum as members come and go. Internal to the hub,
 * like the synchronization table; hub/partition.c picks one by its "type"
 * when the hub starts and enters or leaves partition mode on its answers.
 * Every call runs on the hub's own thread, after the member list changed
 * (h->members already with the newcomer, or without the member that left).
 */
#ifndef PH_PARTITION_OPS_H
#define PH_PARTITION_OPS_H

#include "hub/hub_internal.h"

typedef struct partition_ops {
    const char *type;
    /* Sets up h->part_state from h->cfg; 0, or -1 with a reason in err. */
    int (*init)(hub *h, char *err, size_t err_size);
    void (*free)(hub *h);
    /* At start, this node alone: 1 if it starts in partition mode
     * (static_quorum's startup_confirm). NULL: never. */
    int (*starts_partitioned)(hub *h);
    /* A member left: 1 if the quorum is lost now (ProcessHub's
     * toggle_lock?). */
    int (*left)(hub *h, uint32_t node);
    /* A member joined: 1 if the quorum is present now (toggle_unlock?).
     * May send the newcomer a partition_log message. */
    int (*joined)(hub *h, ph_ctx *ctx, uint32_t node);
    /* A partition_log message from a member; NULL: logged and dropped. */
    void (*message)(hub *h, ph_ctx *ctx, uint32_t from, ph_term data);
    /* {reset_cluster_size, N}: 0, or -1 when the strategy has no such
     * size (NULL: the same). Returns whether the quorum is present now in
     * *present. */
    int (*reset_size)(hub *h, long n, int *present);
    /* Its state for the partition_state request: appends a map. */
    int (*describe)(hub *h, ph_buf *out);
} partition_ops;

extern const partition_ops divergence_partition;
extern const partition_ops static_quorum_partition;
extern const partition_ops dynamic_quorum_partition;
extern const partition_ops majority_quorum_partition;

#endif
