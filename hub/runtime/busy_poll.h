/* busy_poll.h - when an idle scheduler that holds the poll role spins
 * (checks for input without blocking) instead of sleeping in epoll_wait,
 * and for how long: a rule over the waits it has seen, with no clock or
 * I/O of its own (the scheduler measures, the rule decides), so that it can
 * be tested alone. One per process, touched only by the poll-role holder. */
#ifndef PH_BUSY_POLL_H
#define PH_BUSY_POLL_H

#include <stdint.h>

/* The spin checks this often: each check is a system call. */
#define BUSY_POLL_STEP_US 5
/* Every BUSY_POLL_SAMPLE_EVERY-th wait has its CPU cost measured; every
 * BUSY_POLL_EXPLORE_EVERY waits the other way of waiting is tried for
 * BUSY_POLL_EXPLORE_LEN waits, each measured. */
#define BUSY_POLL_SAMPLE_EVERY 16
#define BUSY_POLL_EXPLORE_EVERY 1024
#define BUSY_POLL_EXPLORE_LEN 32
/* One long wait does not decide alone. */
#define BUSY_POLL_COST_CAP_NS 1000000u

typedef struct busy_poll {
    unsigned spin_us; /* --busy-poll-us: 0 never spins */
    int latency;      /* --busy-poll-mode latency: no CPU comparison */
    unsigned idle_wait_avg_us;
    unsigned spin_cost_ns, sleep_cost_ns; /* 0: not measured yet */
    unsigned waits, explore_left;
    int explore_spin;
} busy_poll;

void busy_poll_init(busy_poll *bp, unsigned spin_us, int latency);
/* Whether the traffic allows a spin at all: the recent waits for work
 * averaged at most spin_us. */
int busy_poll_allowed(const busy_poll *bp);
/* Whether this wait (the traffic allowing) spins, and in *sample whether
 * its CPU cost is to be measured and given to busy_poll_note_cost. */
int busy_poll_choose(busy_poll *bp, int *sample);
/* How long a spin may last: twice the average wait and a step, at most
 * spin_us. */
uint64_t busy_poll_budget_us(const busy_poll *bp);
/* A wait for work ended after waited_us (spinning or asleep, the wake-up
 * included). */
void busy_poll_note_wait(busy_poll *bp, uint64_t waited_us);
/* The thread's CPU time a measured wait cost, spun or slept. */
void busy_poll_note_cost(busy_poll *bp, int spun, uint64_t cost_ns);

#endif
