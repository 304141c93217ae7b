/*
 * replication.h - ProcessHub's Replication redundancy strategy, the parts
 * that are rules rather than plumbing: which replica of a child is the
 * active one (ProcessHub's master_node), bit for bit.
 *
 *   master = sort(nodes)[sum of the id's code points mod length(nodes)]
 *
 * (an atom id counts its name's code points, a binary its UTF-8 ones).
 */
#ifndef PH_REPLICATION_H
#define PH_REPLICATION_H

#include <processhub/term.h>

/* The index in nodes (names "name@host", in any order) of the active
 * replica of id, or -1 when n is 0 or id is neither an atom nor a binary. */
int replication_master(ph_term id, const char *const *nodes, int n);

#endif
