/* Unit tests: the busy poll's rule (hub/runtime/busy_poll.c): when an idle
 * scheduler spins, for how long, and how it learns which way of waiting
 * costs less CPU. */
#include "hub/runtime/busy_poll.h"

#include <check.h>

#include "check_run.h"

/* n waits chosen and noted: each spin costs spin_ns, each sleep sleep_ns,
 * both only when sampled. Returns how many spun. */
static int run_waits(busy_poll *bp, int n, uint64_t spin_ns, uint64_t sleep_ns, int *sampled)
{
    int spun = 0;
    for (int i = 0; i < n; i++) {
        int sample;
        int s = busy_poll_choose(bp, &sample);
        spun += s;
        if (sample) {
            (*sampled)++;
            busy_poll_note_cost(bp, s, s ? spin_ns : sleep_ns);
        }
    }
    return spun;
}

START_TEST(traffic_decides_whether_a_spin_is_allowed)
{
    busy_poll bp;
    busy_poll_init(&bp, 0, 0);
    ck_assert(!busy_poll_allowed(&bp)); /* --busy-poll-us 0: never */
    busy_poll_init(&bp, 100, 0);
    ck_assert(busy_poll_allowed(&bp));
    ck_assert_uint_eq(busy_poll_budget_us(&bp), BUSY_POLL_STEP_US);
    for (int i = 0; i < 20; i++) /* back-to-back calls: 10 us waits */
        busy_poll_note_wait(&bp, 10);
    ck_assert(busy_poll_allowed(&bp));
    /* about twice the waits (the average is kept in whole us, rounded down) */
    ck_assert_uint_gt(busy_poll_budget_us(&bp), 2 * 5 + BUSY_POLL_STEP_US);
    ck_assert_uint_le(busy_poll_budget_us(&bp), 2 * 10 + BUSY_POLL_STEP_US);
    ck_assert_uint_le(busy_poll_budget_us(&bp), 100);
    for (int i = 0; i < 20; i++) /* calls a millisecond apart */
        busy_poll_note_wait(&bp, 1000);
    ck_assert(!busy_poll_allowed(&bp));
    /* one long idle stretch is clamped: a few short waits allow it again */
    busy_poll_note_wait(&bp, 10000000);
    ck_assert_uint_le(bp.idle_wait_avg_us, 4 * 100 + 100);
    for (int i = 0; i < 12; i++)
        busy_poll_note_wait(&bp, 5);
    ck_assert(busy_poll_allowed(&bp));
    ck_assert_uint_le(busy_poll_budget_us(&bp), 100);
}
END_TEST

START_TEST(spins_until_a_sleep_is_measured_cheaper)
{
    busy_poll bp;
    busy_poll_init(&bp, 100, 0);
    int sampled = 0, sample;
    /* nothing measured yet: spin; one wait in BUSY_POLL_SAMPLE_EVERY sampled */
    ck_assert_int_eq(run_waits(&bp, 64, 20000, 5000, &sampled), 64);
    ck_assert_int_eq(sampled, 64 / BUSY_POLL_SAMPLE_EVERY);
    /* spins measured at 20 us, but sleeps never: it keeps spinning until the
     * exploration tries sleeping (BUSY_POLL_EXPLORE_LEN waits, each measured) */
    sampled = 0;
    int spun =
        run_waits(&bp, BUSY_POLL_EXPLORE_EVERY - 64 + BUSY_POLL_EXPLORE_LEN, 20000, 5000, &sampled);
    ck_assert_int_eq(spun, BUSY_POLL_EXPLORE_EVERY - 64);
    ck_assert_uint_gt(bp.sleep_cost_ns, 0);
    /* sleeping measured cheaper: it sleeps now */
    ck_assert_uint_lt(bp.sleep_cost_ns, bp.spin_cost_ns);
    ck_assert_int_eq(busy_poll_choose(&bp, &sample), 0);
}
END_TEST

START_TEST(explores_the_other_way_and_follows_the_traffic)
{
    busy_poll bp;
    busy_poll_init(&bp, 100, 0);
    int sampled = 0;
    busy_poll_note_cost(&bp, 1, 30000); /* spinning: 30 us */
    busy_poll_note_cost(&bp, 0, 8000);  /* sleeping: 8 us */
    /* a full period: all sleeps but one exploration of spins */
    int spun =
        run_waits(&bp, BUSY_POLL_EXPLORE_EVERY + BUSY_POLL_EXPLORE_LEN, 30000, 8000, &sampled);
    ck_assert_int_eq(spun, BUSY_POLL_EXPLORE_LEN);
    /* the machine gets busy: spinning (which yields its CPU) becomes the
     * cheaper; the next exploration measures it and the rule turns */
    sampled = 0;
    spun =
        run_waits(&bp, 2 * (BUSY_POLL_EXPLORE_EVERY + BUSY_POLL_EXPLORE_LEN), 3000, 8000, &sampled);
    ck_assert_uint_lt(bp.spin_cost_ns, bp.sleep_cost_ns);
    int sample;
    ck_assert_int_eq(busy_poll_choose(&bp, &sample), 1);
    ck_assert_int_gt(spun, BUSY_POLL_EXPLORE_EVERY);
}
END_TEST

START_TEST(one_long_wait_does_not_decide_alone)
{
    busy_poll bp;
    busy_poll_init(&bp, 100, 0);
    busy_poll_note_cost(&bp, 0, 5000);
    busy_poll_note_cost(&bp, 1, 4000);
    busy_poll_note_cost(&bp, 1, 60ull * 1000 * 1000 * 1000); /* a minute */
    ck_assert_uint_le(bp.spin_cost_ns, (4000 * 7 + BUSY_POLL_COST_CAP_NS) / 8);
    busy_poll_note_cost(&bp, 0, 0); /* measured as nothing: still measured */
    ck_assert_uint_gt(bp.sleep_cost_ns, 0);
}
END_TEST

START_TEST(latency_mode_spins_whatever_it_costs)
{
    busy_poll bp;
    busy_poll_init(&bp, 100, 1);
    busy_poll_note_cost(&bp, 1, 50000);
    busy_poll_note_cost(&bp, 0, 1000);
    int sampled = 0;
    ck_assert_int_eq(run_waits(&bp, 3000, 50000, 1000, &sampled), 3000);
    ck_assert_int_eq(sampled, 0); /* nothing to compare: no clock reads */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("busy_poll");
    TCase *tc = tcase_create("rule");
    tcase_add_test(tc, traffic_decides_whether_a_spin_is_allowed);
    tcase_add_test(tc, spins_until_a_sleep_is_measured_cheaper);
    tcase_add_test(tc, explores_the_other_way_and_follows_the_traffic);
    tcase_add_test(tc, one_long_wait_does_not_decide_alone);
    tcase_add_test(tc, latency_mode_spins_whatever_it_costs);
    suite_add_tcase(s, tc);
    return check_run(s);
}
