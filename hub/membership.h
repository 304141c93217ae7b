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
    ph_pid hub;     /* the member's hub process */
    ph_ref monitor; /* our monitor on it */
} member;

typedef struct membership {
    member *members;
    int n, cap;
} membership;

void membership_free(membership *m);
member *membership_find(membership *m, uint32_t node);
member *membership_find_monitor(membership *m, const ph_ref *ref);
/* Adds a member (node must not be present). 0 or -1. */
int membership_add(membership *m, uint32_t node, ph_pid hub, const ph_ref *monitor);
void membership_remove(membership *m, member *e);

#endif
