/*
 * guided.h - ProcessHub's Guided distribution strategy (type "guided"):
 * start_children names each child's nodes in child_mapping.
 */
#ifndef PH_GUIDED_H
#define PH_GUIDED_H

#include <processhub/strategy.h>

/* The most nodes one child can be mapped to (replication_factor's cap). */
#define MAX_GUIDED_NODES 255

extern const ph_distribution_ops guided_strategy;

#endif
