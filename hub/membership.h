/*
 * membership.h - the other nodes of this hub cluster: one entry per member
 * hub, with the monitor that tells when it goes (node down, or its hub
 * stopped). Owned by the hub process.
 */
#ifndef PH_MEMBERSHIP_H
#define PH_MEMBERSHIP_H

#include <processhub/worker.h>
#include <stdint.h>

typedef struct member {
    uint32_t node;
    ph_pid hub;            /* the member's hub process */
    ph_ref monitor;        /* our monitor on it */
    uint64_t rows_sent_ms; /* when we last sent it our rows (cluster.c) */
    /* A move to it that timed out is tried again only after a pause that
     * doubles while its moves keep timing out (migration.c): no move to it
     * before moves_held_ms (monotonic); move_retry_ms is the last pause. */
    uint64_t moves_held_ms;
    int move_retry_ms;
} member;

typedef struct membership {
    member *members;
    int n, cap;
    /* Nodes that left without a goodbye (died, cut off), greeted again with
     * the members at every announcement so that two halves of a split find
     * each other without seeds; forgotten when they come back or say
     * goodbye, and the oldest first beyond MEMBERSHIP_LOST_MAX. */
    uint32_t *lost;
    int n_lost, cap_lost;
} membership;

#define MEMBERSHIP_LOST_MAX 256

void membership_free(membership *m);
member *membership_find(membership *m, uint32_t node);
member *membership_find_monitor(membership *m, const ph_ref *ref);
/* Adds a member (node must not be present). 0 or -1. */
int membership_add(membership *m, uint32_t node, ph_pid hub, const ph_ref *monitor);
void membership_remove(membership *m, member *e);
/* Remembers a node that was lost (once). 0 or -1 (out of memory). */
int membership_lost_add(membership *m, uint32_t node);
void membership_lost_remove(membership *m, uint32_t node);

#endif
