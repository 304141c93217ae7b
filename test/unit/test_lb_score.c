/* Unit tests: the CentralizedLoadBalancer's arithmetic
 * (strategies/distribution/lb_score.c): ProcessHub's score formula and its
 * caps, each node's decayed history, capacities, the weighted placement
 * (shares follow capacity, equal inputs place alike, few keys move when one
 * capacity changes) and the leader rule. */
#include "strategies/distribution/lb_score.h"

#include <check.h>

#include "check_run.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(score_formula_and_caps)
{
    lb_sample idle = {0};
    ck_assert_double_eq_tol(lb_score(&idle), 0, 1e-12);
    lb_sample half = {.sched = 0.5, .runq = 50, .procs = 5000, .mem = 1ULL << 29};
    ck_assert_double_eq_tol(lb_score(&half), 0.5, 1e-12);
    lb_sample over = {.sched = 3, .runq = 1000, .procs = 1000000, .mem = 1ULL << 40};
    ck_assert_double_eq_tol(lb_score(&over), 1.0, 1e-12);
    lb_sample sched_only = {.sched = 1};
    ck_assert_double_eq_tol(lb_score(&sched_only), 0.4, 1e-12);
    lb_sample negative = {.sched = -1};
    ck_assert_double_eq_tol(lb_score(&negative), 0, 1e-12);
}
END_TEST

START_TEST(history_decays_newest_first)
{
    lb_history h;
    ck_assert_int_eq(lb_history_init(&h, 3), 0);
    ck_assert_double_eq_tol(lb_history_score(&h, 0.9), -1, 1e-12);
    lb_history_push(&h, 1.0);
    ck_assert_double_eq_tol(lb_history_score(&h, 0.9), 1.0, 1e-12);
    lb_history_push(&h, 0.0); /* newest 0, then 1: (0 + 0.9) / 1.9 */
    ck_assert_double_eq_tol(lb_history_score(&h, 0.9), 0.9 / 1.9, 1e-12);
    lb_history_push(&h, 0.0);
    lb_history_push(&h, 0.0); /* the 1.0 fell out of the 3 kept */
    ck_assert_double_eq_tol(lb_history_score(&h, 0.9), 0.0, 1e-12);
    lb_history_push(&h, 0.6); /* 0.6, 0, 0 */
    ck_assert_double_eq_tol(lb_history_score(&h, 0.5), 0.6 / 1.75, 1e-12);
    lb_history_free(&h);
    ck_assert_int_eq(lb_history_init(&h, 100000), 0);
    ck_assert_int_eq(h.cap, LB_MAX_HISTORY);
    lb_history_free(&h);
}
END_TEST

START_TEST(capacity_has_a_floor)
{
    ck_assert_double_eq_tol(lb_capacity(0), 1, 1e-12);
    ck_assert_double_eq_tol(lb_capacity(0.25), 0.75, 1e-12);
    ck_assert_double_eq_tol(lb_capacity(0.95), 0.1, 1e-12);
    ck_assert_double_eq_tol(lb_capacity(1), 0.1, 1e-12);
}
END_TEST

#define KEYS 60000

static void shares(const double *cap, int n, int *count)
{
    uint64_t nh[8];
    char name[32];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "ph%d@127.0.0.1", i + 1);
        nh[i] = lb_hash(name, strlen(name));
        count[i] = 0;
    }
    for (int k = 0; k < KEYS; k++) {
        char key[32];
        snprintf(key, sizeof key, "c%d", k);
        int i = lb_pick(lb_hash(key, strlen(key)), nh, cap, n);
        ck_assert(i >= 0 && i < n);
        count[i]++;
    }
}

START_TEST(shares_follow_capacity)
{
    double even[4] = {1, 1, 1, 1};
    int count[4];
    shares(even, 4, count);
    for (int i = 0; i < 4; i++)
        ck_assert_msg(fabs(count[i] - KEYS / 4.0) < KEYS * 0.02, "node %d got %d", i, count[i]);
    double busy[4] = {1, 0.4, 1, 1}; /* 0.4 / 3.4 of the keys */
    shares(busy, 4, count);
    double want = KEYS * 0.4 / 3.4;
    ck_assert_msg(fabs(count[1] - want) < KEYS * 0.02, "busy node got %d, want ~%.0f", count[1],
                  want);
    ck_assert(count[1] < count[0] / 2);
    ck_assert_int_eq(lb_pick(1, NULL, NULL, 0), -1);
}
END_TEST

START_TEST(same_inputs_place_alike_and_few_keys_move)
{
    uint64_t nh[3] = {lb_hash("a", 1), lb_hash("b", 1), lb_hash("c", 1)};
    double before[3] = {1, 1, 1}, after[3] = {1, 0.9, 1};
    int moved = 0, wrong = 0;
    for (int k = 0; k < KEYS; k++) {
        uint64_t kh = lb_hash(&k, sizeof k);
        int x = lb_pick(kh, nh, before, 3), y = lb_pick(kh, nh, after, 3);
        ck_assert_int_eq(x, lb_pick(kh, nh, before, 3));
        moved += x != y;
        wrong += x != y && x != 1; /* only keys of the node that lost capacity move */
    }
    ck_assert_msg(moved < KEYS * 0.05, "%d keys moved", moved);
    ck_assert_int_eq(wrong, 0);
}
END_TEST

START_TEST(leader_is_the_longest_running)
{
    const char *names[3] = {"b@h", "a@h", "c@h"};
    uint64_t started[3] = {2000, 3000, 1000};
    ck_assert_int_eq(lb_leader(started, names, 3), 2);
    started[2] = 2000; /* tie with b: by name */
    started[1] = 2000;
    ck_assert_int_eq(lb_leader(started, names, 3), 1);
    uint64_t unknown[3] = {0, 5000, 0}; /* not told yet: counted as the latest */
    ck_assert_int_eq(lb_leader(unknown, names, 3), 1);
    uint64_t none[3] = {0, 0, 0};
    ck_assert_int_eq(lb_leader(none, names, 3), 1);
    ck_assert_int_eq(lb_leader(started, names, 0), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lb_score");
    TCase *tc = tcase_create("arithmetic");
    tcase_add_test(tc, score_formula_and_caps);
    tcase_add_test(tc, history_decays_newest_first);
    tcase_add_test(tc, capacity_has_a_floor);
    tcase_add_test(tc, shares_follow_capacity);
    tcase_add_test(tc, same_inputs_place_alike_and_few_keys_move);
    tcase_add_test(tc, leader_is_the_longest_running);
    suite_add_tcase(s, tc);
    return check_run(s);
}
