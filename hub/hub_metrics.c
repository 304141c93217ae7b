/* hub_metrics.c - the hub's metric objects; registered by the hub itself
 * (hub_metrics_register), see hub_metrics.h. */
#include "hub/hub_metrics.h"

#include <stdatomic.h>

#define G(var, n, l, h) metric var = {.name = n, .labels = l, .help = h, .type = METRIC_TYPE_GAUGE}
#define C(var, n, l, h)                                                                            \
    metric var = {.name = n, .labels = l, .help = h, .type = METRIC_TYPE_COUNTER}

G(hm_children_local, "phnode_hub_children", "scope=\"local\"",
  "Hub children: running on this node (local) and in the registry (cluster).");
G(hm_children_cluster, "phnode_hub_children", "scope=\"cluster\"",
  "Hub children: running on this node (local) and in the registry (cluster).");
G(hm_members, "phnode_hub_members", "", "Members of the hub cluster, this node included.");
G(hm_partitioned, "phnode_hub_partitioned", "", "1 while the hub cluster is partitioned.");
C(hm_starts, "phnode_hub_child_starts_total", "", "Children started on this node.");
C(hm_start_failures, "phnode_hub_child_start_failures_total", "",
  "Children that failed to start on this node.");
C(hm_stops, "phnode_hub_child_stops_total", "", "Children stopped on request on this node.");
C(hm_restarts, "phnode_hub_child_restarts_total", "", "Supervised restarts on this node.");
C(hm_restart_limit, "phnode_hub_restart_intensity_exceeded_total", "",
  "Children not restarted because dsup_max_restarts was exceeded.");
C(hm_sync_sent, "phnode_hub_sync_messages_total", "direction=\"sent\"",
  "Registry synchronisation messages exchanged with members.");
C(hm_sync_received, "phnode_hub_sync_messages_total", "direction=\"received\"",
  "Registry synchronisation messages exchanged with members.");
C(hm_sync_repairs, "phnode_hub_sync_repairs_total", "",
  "PubSub synchronisation repair rounds (sync_interval).");
C(hm_migrations_out, "phnode_hub_migrations_total", "direction=\"out\"",
  "Children handed over to (out) or taken over from (in) other members.");
C(hm_migrations_in, "phnode_hub_migrations_total", "direction=\"in\"",
  "Children handed over to (out) or taken over from (in) other members.");
C(hm_ring_rebuilds, "phnode_hub_ring_rebuilds_total", "",
  "ConsistentHashing ring rebuilds (distribution strategy).");
C(hm_redistributions, "phnode_hub_redistributions_total", "",
  "Redistributions of children after a member joined or left.");
C(hm_partition_changes, "phnode_hub_partition_changes_total", "",
  "Partition mode entered or left (partition_tolerance_strategy).");
C(hm_conflicts, "phnode_hub_conflicts_resolved_total", "",
  "Copies stopped here because the child's owner ran one already (after a split).");

void hub_metrics_register(void)
{
    static atomic_flag done = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&done))
        return;
    metric *all[] = {&hm_children_local,
                     &hm_children_cluster,
                     &hm_members,
                     &hm_partitioned,
                     &hm_starts,
                     &hm_start_failures,
                     &hm_stops,
                     &hm_restarts,
                     &hm_restart_limit,
                     &hm_sync_sent,
                     &hm_sync_received,
                     &hm_sync_repairs,
                     &hm_migrations_out,
                     &hm_migrations_in,
                     &hm_ring_rebuilds,
                     &hm_redistributions,
                     &hm_partition_changes,
                     &hm_conflicts};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        metrics_register(all[i]);
}
