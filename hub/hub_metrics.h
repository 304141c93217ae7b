/*
 * hub_metrics.h - the hub's metrics (Prometheus names, see
 * docs/operations.md), shown on /metrics once the hub has started. All are
 * updated from the hub's own process:
 *   hm_children_local / hm_children_cluster   after every request and message
 *       (children running here / rows in the registry, orphans included)
 *   hm_members                                 likewise (this node included)
 *   hm_partitioned, hm_partition_changes       partition mode (never with divergence)
 *   hm_conflicts                               doubled copies stopped here
 *   hm_starts / hm_start_failures              per child started / refused
 *   hm_stops                                   per child stopped on request
 *   hm_restarts / hm_restart_limit             supervised restarts / intensity exceeded
 *   hm_sync_sent / hm_sync_received            registry messages to / from members
 *   hm_sync_repairs                            repair ticks
 *   hm_migrations_out / hm_migrations_in       children handed over / taken over
 *   hm_ring_rebuilds                           distribution strategy node changes
 *   hm_redistributions                         joins and departures reconciled
 */
#ifndef PH_HUB_METRICS_H
#define PH_HUB_METRICS_H

#include "hub/runtime/metrics.h"

extern metric hm_children_local, hm_children_cluster, hm_members, hm_partitioned;
extern metric hm_starts, hm_start_failures, hm_stops, hm_restarts, hm_restart_limit;
extern metric hm_sync_sent, hm_sync_received, hm_sync_repairs;
extern metric hm_migrations_out, hm_migrations_in;
extern metric hm_ring_rebuilds, hm_redistributions, hm_partition_changes, hm_conflicts;

/* Exposes the hub's metrics on /metrics; idempotent. */
void hub_metrics_register(void);

#endif
