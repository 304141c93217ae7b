/*
 * quorum.h - the arithmetic of the quorum strategies (static_quorum.c,
 * dynamic_quorum.c, majority_quorum.c) as pure functions of their inputs:
 * node counts, sizes, the down-log and the time, so that unit tests check
 * it without a hub (test/unit/test_quorum.c). "nodes" counts this node.
 */
#ifndef PH_QUORUM_H
#define PH_QUORUM_H

#include <stdint.h>

/* static_quorum: the quorum is present with at least quorum_size nodes. */
int static_quorum_present(long nodes, long quorum_size);

/* majority_quorum: a majority of the largest size seen. */
long majority_quorum(long max_seen);
/* The size tracked at start: initial_cluster_size (at least 1), or the
 * nodes there are already if more. */
long majority_initial_size(long initial_cluster_size, long nodes);
/* After a join: grows to nodes with track_max_size, never shrinks. */
long majority_after_join(long max_seen, long nodes, int track_max_size);
int majority_present(long max_seen, long nodes);

/* dynamic_quorum's down-log: the members that went down lately, newest
 * first, with the wall-clock second they did (logs travel between nodes). */
#define DQ_MAX_LOG 4096 /* entries; older ones are dropped first */

typedef struct dq_entry {
    uint32_t node;
    long at;
} dq_entry;

typedef struct dq_log {
    dq_entry *log; /* newest first */
    int n, cap;
} dq_log;

void dq_log_free(dq_log *l);
/* Drops the entries older than now - threshold_s and those of node
 * (UINT32_MAX: none). */
void dq_log_prune(dq_log *l, long now, long threshold_s, uint32_t node);
/* Logs node's departure at now, in front; the oldest entry goes when the
 * log holds DQ_MAX_LOG. 0, or -1 (out of memory: the log is unchanged). */
int dq_log_add(dq_log *l, uint32_t node, long now);
/* Puts a member's log of n entries in place of ours if it is longer
 * (at most DQ_MAX_LOG of it). 1 taken, 0 kept ours, -1 out of memory. */
int dq_log_take(dq_log *l, const dq_entry *entries, int n);
/* Partitioned when the share of nodes up, 100 - down / (up + down) * 100
 * percent, is below quorum_pct. */
int dq_failing(long up, long down, long quorum_pct);

#endif
