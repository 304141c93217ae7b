/*
 * load_balancer.h - the CentralizedLoadBalancer distribution strategy (type
 * "centralized_load_balancer"): children go to the members with the most
 * spare capacity by a scoreboard the leader (the longest-running member)
 * computes from every member's metrics and pushes to all. See
 * docs/strategies.md.
 */
#ifndef PH_LOAD_BALANCER_H
#define PH_LOAD_BALANCER_H

#include "strategies/distribution/dist_internal.h"

extern const ph_distribution_ops load_balancer_strategy;
extern const dist_internal load_balancer_internal;

#endif
