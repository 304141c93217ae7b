/*
 * hub_metrics.h - the hub's metrics, declared here for hub/ to update (not
 * wired yet: the hub calls hub_metrics_register() once at start, so none of
 * them is exposed before the hub really counts). Names follow Prometheus
 * conventions; see docs/operations.md.
 *
 * Where each is meant to be updated (all from the hub's own process, so a
 * relaxed add is enough):
 *   hm_children_local / hm_children_cluster   metric_gauge_set after every
 *       registry change (children running here / rows in the registry)
 *   hm_members                                 after a member joins or leaves
 *   hm_partitioned                             1 while the partition strategy
 *       says the cluster is partitioned (is_partitioned), else 0
 *   hm_starts / hm_start_failures              per child started / refused
 *   hm_stops                                   per child stopped on request
 *   hm_restarts                                per supervised restart
 *   hm_restart_limit                           restart intensity exceeded
 *   hm_sync_sent / hm_sync_received            registry update messages to /
 *       from members (one per message, not per row)
 *   hm_sync_repairs                            PubSub repair ticks run
 *   hm_migrations_out / hm_migrations_in       children handed over to / taken
 *       over from another member (cold swap)
 *   hm_ring_rebuilds                           ConsistentHashing ring rebuilt
 *   hm_redistributions                         redistributions after a join or leave
 *   hm_partition_changes                       Divergence strategy changes of state
 */
#ifndef PH_HUB_METRICS_H
#define PH_HUB_METRICS_H

#include "hub/runtime/metrics.h"

extern metric hm_children_local, hm_children_cluster, hm_members, hm_partitioned;
extern metric hm_starts, hm_start_failures, hm_stops, hm_restarts, hm_restart_limit;
extern metric hm_sync_sent, hm_sync_received, hm_sync_repairs;
extern metric hm_migrations_out, hm_migrations_in;
extern metric hm_ring_rebuilds, hm_redistributions, hm_partition_changes;

/* Exposes the hub's metrics on /metrics; idempotent. */
void hub_metrics_register(void);

#endif
