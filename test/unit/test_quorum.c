/* Unit tests: the quorum strategies' arithmetic (strategies/partition/
 * quorum.c): static_quorum's node count, majority_quorum's tracked size
 * (initial_cluster_size, track_max_size, reset) and quorum, dynamic_quorum's
 * share of nodes up and its down-log (threshold_time, one entry per node,
 * the bound, taking a member's longer log). */
#include "strategies/partition/quorum.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>

START_TEST(static_quorum_counts_nodes)
{
    ck_assert_int_eq(static_quorum_present(3, 3), 1);
    ck_assert_int_eq(static_quorum_present(2, 3), 0);
    ck_assert_int_eq(static_quorum_present(5, 3), 1);
    ck_assert_int_eq(static_quorum_present(1, 1), 1);
}
END_TEST

START_TEST(majority_of_the_largest_size_seen)
{
    ck_assert_int_eq(majority_quorum(1), 1);
    ck_assert_int_eq(majority_quorum(2), 2);
    ck_assert_int_eq(majority_quorum(4), 3);
    ck_assert_int_eq(majority_quorum(5), 3);
    /* initial_cluster_size 0 counts as 1; a hub with more nodes already
     * starts from those */
    ck_assert_int_eq(majority_initial_size(0, 1), 1);
    ck_assert_int_eq(majority_initial_size(5, 1), 5);
    ck_assert_int_eq(majority_initial_size(2, 4), 4);
    /* started with 5 expected: partitioned alone, present with 3 */
    long max = majority_initial_size(5, 1);
    ck_assert_int_eq(majority_present(max, 1), 0);
    ck_assert_int_eq(majority_present(max, 3), 1);
}
END_TEST

START_TEST(majority_tracks_joins_and_resets)
{
    long max = majority_initial_size(1, 1);
    for (long nodes = 2; nodes <= 5; nodes++)
        max = majority_after_join(max, nodes, 1);
    ck_assert_int_eq(max, 5);
    ck_assert_int_eq(majority_present(max, 3), 1); /* two lost: still a majority */
    ck_assert_int_eq(majority_present(max, 2), 0); /* three lost: not */
    /* a node that rejoins a smaller cluster does not shrink it */
    ck_assert_int_eq(majority_after_join(max, 3, 1), 5);
    /* track_max_size off: the size stays what it was */
    ck_assert_int_eq(majority_after_join(1, 5, 0), 1);
    ck_assert_int_eq(majority_present(1, 1), 1);
    /* {reset_cluster_size, 2} with 2 nodes left: present again */
    ck_assert_int_eq(majority_present(2, 2), 1);
    ck_assert_int_eq(majority_present(5, 2), 0);
}
END_TEST

START_TEST(dynamic_share_of_nodes_up)
{
    /* quorum 70 %: 5 nodes, one down is 80 %, two down 60 % */
    ck_assert_int_eq(dq_failing(4, 1, 70), 0);
    ck_assert_int_eq(dq_failing(3, 2, 70), 1);
    /* exactly the quorum is enough (ProcessHub: below it fails) */
    ck_assert_int_eq(dq_failing(7, 3, 70), 0);
    ck_assert_int_eq(dq_failing(1, 0, 100), 0);
    ck_assert_int_eq(dq_failing(1, 1, 50), 0);
    ck_assert_int_eq(dq_failing(1, 1, 51), 1);
}
END_TEST

START_TEST(down_log_keeps_threshold_time)
{
    dq_log l = {0};
    ck_assert_int_eq(dq_log_add(&l, 11, 1000), 0);
    ck_assert_int_eq(dq_log_add(&l, 12, 1010), 0);
    ck_assert_int_eq(dq_log_add(&l, 13, 1020), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_uint_eq(l.log[0].node, 13); /* newest first */
    ck_assert_uint_eq(l.log[2].node, 11);
    /* threshold 30 s at 1035: the entry of 1000 is older than 1005 */
    dq_log_prune(&l, 1035, 30, UINT32_MAX);
    ck_assert_int_eq(l.n, 2);
    ck_assert_uint_eq(l.log[1].node, 12);
    /* at the threshold's edge an entry stays */
    dq_log_prune(&l, 1040, 30, UINT32_MAX);
    ck_assert_int_eq(l.n, 2);
    /* a node that comes back leaves the log; so does everything, later */
    dq_log_prune(&l, 1040, 30, 13);
    ck_assert_int_eq(l.n, 1);
    ck_assert_uint_eq(l.log[0].node, 12);
    dq_log_prune(&l, 5000, 30, UINT32_MAX);
    ck_assert_int_eq(l.n, 0);
    dq_log_free(&l);
    ck_assert_int_eq(l.n, 0);
}
END_TEST

START_TEST(down_log_partitions_after_the_second_loss)
{
    /* 5 nodes, quorum 70 %, threshold 60 s: as a node sees it */
    dq_log l = {0};
    long up = 5;
    dq_log_prune(&l, 100, 60, 21);
    ck_assert_int_eq(dq_log_add(&l, 21, 100), 0);
    up--;
    ck_assert_int_eq(dq_failing(up, l.n, 70), 0);
    dq_log_prune(&l, 110, 60, 22);
    ck_assert_int_eq(dq_log_add(&l, 22, 110), 0);
    up--;
    ck_assert_int_eq(dq_failing(up, l.n, 70), 1);
    /* one comes back (its entry goes): 4 up, 1 down */
    dq_log_prune(&l, 120, 60, 22);
    up++;
    ck_assert_int_eq(dq_failing(up, l.n, 70), 0);
    /* the same two losses a threshold apart: never partitioned */
    dq_log_free(&l);
    up = 5;
    dq_log_prune(&l, 100, 60, 21);
    dq_log_add(&l, 21, 100);
    up--;
    dq_log_prune(&l, 200, 60, 22);
    dq_log_add(&l, 22, 200);
    up--;
    ck_assert_int_eq(l.n, 1);
    ck_assert_int_eq(dq_failing(up, l.n, 70), 0);
    dq_log_free(&l);
}
END_TEST

START_TEST(down_log_is_bounded)
{
    dq_log l = {0};
    for (int i = 0; i < DQ_MAX_LOG + 10; i++)
        ck_assert_int_eq(dq_log_add(&l, (uint32_t)i, 1000 + i), 0);
    ck_assert_int_eq(l.n, DQ_MAX_LOG);
    ck_assert_uint_eq(l.log[0].node, DQ_MAX_LOG + 9);  /* the newest kept */
    ck_assert_uint_eq(l.log[DQ_MAX_LOG - 1].node, 10); /* the oldest ten went */
    dq_log_free(&l);
}
END_TEST

START_TEST(down_log_takes_a_longer_one)
{
    dq_log l = {0};
    dq_log_add(&l, 1, 100);
    dq_log_add(&l, 2, 101);
    dq_entry shorter[1] = {{7, 99}};
    ck_assert_int_eq(dq_log_take(&l, shorter, 1), 0);
    ck_assert_int_eq(dq_log_take(&l, shorter, 0), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_uint_eq(l.log[0].node, 2);
    dq_entry longer[3] = {{7, 105}, {8, 104}, {9, 103}};
    ck_assert_int_eq(dq_log_take(&l, longer, 3), 1);
    ck_assert_int_eq(l.n, 3);
    ck_assert_uint_eq(l.log[0].node, 7);
    ck_assert_int_eq(l.log[2].at, 103);
    /* a taken log grows as ours did */
    ck_assert_int_eq(dq_log_add(&l, 10, 106), 0);
    ck_assert_int_eq(l.n, 4);
    ck_assert_uint_eq(l.log[0].node, 10);
    ck_assert_uint_eq(l.log[3].node, 9);
    dq_log_free(&l);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quorum");
    TCase *tc = tcase_create("arithmetic");
    tcase_add_test(tc, static_quorum_counts_nodes);
    tcase_add_test(tc, majority_of_the_largest_size_seen);
    tcase_add_test(tc, majority_tracks_joins_and_resets);
    tcase_add_test(tc, dynamic_share_of_nodes_up);
    tcase_add_test(tc, down_log_keeps_threshold_time);
    tcase_add_test(tc, down_log_partitions_after_the_second_loss);
    tcase_add_test(tc, down_log_is_bounded);
    tcase_add_test(tc, down_log_takes_a_longer_one);
    suite_add_tcase(s, tc);
    return check_run(s);
}
