/* busy_poll.c - the busy poll's rule; see busy_poll.h.
 *
 * How long an idle poller may check without blocking before it sleeps in
 * epoll (--busy-poll-us): a call that arrives within it costs no wake-up
 * (the BEAM's schedulers busy-wait for the same reason).
 *
 * The busy poll adapts to the traffic: the poll-role holder keeps a moving
 * average of how long it waited for work (spinning or asleep, the wake-up
 * included), and spins only while that average is within spin_us, for at
 * most twice the average (+ one step). Back-to-back calls keep it spinning;
 * sparse traffic (a call every millisecond) makes every spin a loss, and it
 * stops after a few such waits, then starts again by itself once the waits
 * are short. On the test VM a system call costs ~3.5 us and a sleep plus
 * wake-up more than twice that, so a spin that finds nothing costs more
 * than the sleep it was meant to save.
 *
 * Whether a spin pays, in CPU: a spin that finds the next call after 20 us
 * has cost 20 us of CPU to save one sleep and wake-up, which may cost less.
 * On an idle 2-vCPU VM sequential calls cost 51 us of server CPU each with
 * the spin and 29 us without (docs/benchmarks.md, "Busy polling on or
 * off"); on a busy one the spinner yields its CPU and the spin was the
 * cheaper. So the holder measures both: every BUSY_POLL_SAMPLE_EVERY-th
 * wait, the thread's CPU time from the start of the wait to the work (spin,
 * sleep and wake-up included), kept as a moving average per way of
 * waiting, and spins only while spinning costs no more than sleeping.
 * Every BUSY_POLL_EXPLORE_EVERY waits the other way is tried for
 * BUSY_POLL_EXPLORE_LEN waits, each measured, so that its average follows
 * the traffic too. (The thread CPU clock is a system call: hence the
 * sampling.) With --busy-poll-mode latency it spins wherever the traffic
 * allows, CPU or not.
 */
#include "hub/runtime/busy_poll.h"

#include <string.h>

#define IDLE_WAIT_WEIGHT 4 /* the newest wait counts for a quarter */

void busy_poll_init(busy_poll *bp, unsigned spin_us, int latency)
{
    memset(bp, 0, sizeof *bp);
    bp->spin_us = spin_us;
    bp->latency = latency;
}

int busy_poll_allowed(const busy_poll *bp)
{
    return bp->spin_us && bp->idle_wait_avg_us <= bp->spin_us;
}

int busy_poll_choose(busy_poll *bp, int *sample)
{
    *sample = 0;
    if (bp->latency)
        return 1;
    int spin = !bp->spin_cost_ns || !bp->sleep_cost_ns || bp->spin_cost_ns <= bp->sleep_cost_ns;
    if (bp->explore_left) {
        bp->explore_left--;
        *sample = 1;
        return bp->explore_spin;
    }
    if (++bp->waits % BUSY_POLL_EXPLORE_EVERY == 0) {
        bp->explore_left = BUSY_POLL_EXPLORE_LEN;
        bp->explore_spin = !spin;
    }
    *sample = bp->waits % BUSY_POLL_SAMPLE_EVERY == 0;
    return spin;
}

uint64_t busy_poll_budget_us(const busy_poll *bp)
{
    /* A check is a system call: space them out, which also lets a stream
     * of small frames collect into fewer, larger reads. */
    uint64_t budget = 2u * (uint64_t)bp->idle_wait_avg_us + BUSY_POLL_STEP_US;
    return budget > bp->spin_us ? bp->spin_us : budget;
}

void busy_poll_note_wait(busy_poll *bp, uint64_t waited_us)
{
    /* Clamped so that one long idle stretch does not keep the spin off
     * for many short waits afterwards. */
    uint64_t cap = 4u * (uint64_t)bp->spin_us + 100u;
    if (waited_us > cap)
        waited_us = cap;
    bp->idle_wait_avg_us =
        (unsigned)(((uint64_t)bp->idle_wait_avg_us * (IDLE_WAIT_WEIGHT - 1) + waited_us) /
                   IDLE_WAIT_WEIGHT);
}

void busy_poll_note_cost(busy_poll *bp, int spun, uint64_t cost_ns)
{
    unsigned *avg = spun ? &bp->spin_cost_ns : &bp->sleep_cost_ns;
    if (cost_ns > BUSY_POLL_COST_CAP_NS)
        cost_ns = BUSY_POLL_COST_CAP_NS;
    if (cost_ns == 0)
        cost_ns = 1; /* measured: not the 0 of "not yet" */
    *avg = *avg ? (unsigned)(((uint64_t)*avg * 7 + cost_ns) / 8) : (unsigned)cost_ns;
}
