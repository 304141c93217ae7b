/*
 * lb_score.h - the CentralizedLoadBalancer's arithmetic, pure: a node's
 * load score from one metrics sample (ProcessHub's formula), each node's
 * decayed score history, capacities, the choice of a child's node from the
 * scoreboard (weighted rendezvous hashing) and the choice of the leader.
 * No state of its own, no I/O: test/unit/test_lb_score.c covers it.
 */
#ifndef PH_LB_SCORE_H
#define PH_LB_SCORE_H

#include <stddef.h>
#include <stdint.h>

/* One node's metrics at one moment. */
typedef struct lb_sample {
    double sched;   /* scheduler utilisation, 0..1 (busy time / wall time over every scheduler) */
    uint64_t runq;  /* processes waiting for a scheduler */
    uint64_t procs; /* live processes */
    uint64_t mem;   /* resident memory, bytes */
} lb_sample;

/* 0.4·sched + 0.3·runq/100 + 0.2·procs/10000 + 0.1·mem/2^30, each term's
 * ratio capped at 1 (and sched at 0): 0..1. */
double lb_score(const lb_sample *s);

/* The most samples a history keeps (max_history_size's cap). */
#define LB_MAX_HISTORY 1000

/* A node's last scores, newest first, at most cap of them. */
typedef struct lb_history {
    double *s; /* ring of cap scores */
    int cap, n, head;
} lb_history;

/* 0, or -1 when out of memory (cap is clamped to 1..LB_MAX_HISTORY). */
int lb_history_init(lb_history *h, int cap);
void lb_history_free(lb_history *h);
void lb_history_push(lb_history *h, double score);
/* Σ s_i·d^i / Σ d^i over the history (i = 0 the newest); -1 when empty. */
double lb_history_score(const lb_history *h, double decay);

/* How much a node can take: max(0.1, 1 - score). */
double lb_capacity(double score);

/* 64-bit hash of bytes (FNV-1a, then a 64-bit finalizer). */
uint64_t lb_hash(const void *bytes, size_t len);

/* The node (an index 0..n-1) a key goes to: weighted rendezvous hashing,
 * each node winning a share of the keys proportional to its capacity
 * (capacity[i] > 0), with a key staying where it is unless its node's
 * capacity falls or another's rises. node_hash[i] identifies node i (the
 * hash of its name). Equal inputs give equal answers on every node; ties go
 * to the lower index. -1 when n < 1. */
int lb_pick(uint64_t key_hash, const uint64_t *node_hash, const double *capacity, int n);

/* The leader: the node with the longest uptime, i.e. the earliest start
 * time (started[i], ms; 0 = not known yet, counted as the latest), ties by
 * name (strcmp). -1 when n < 1. */
int lb_leader(const uint64_t *started, const char *const *names, int n);

#endif
