/* Unit tests: the active replica (ProcessHub's master_node), with the
 * vectors of processhub-behaviour.md §8.2 and the rule's edge cases. */
#include "strategies/redundancy/replication.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

static int master_of_binary(const char *id, const char *const *nodes, int n)
{
    ph_buf b;
    ck_assert_int_eq(ph_buf_init(&b), 0);
    ck_assert_int_eq(ph_build(&b, "~s", id), 0);
    int m = replication_master(ph_buf_term(&b), nodes, n);
    ph_buf_free(&b);
    return m;
}

START_TEST(documented_vectors)
{
    const char *ab[] = {"a@h", "b@h"};
    const char *abc[] = {"a@h", "b@h", "c@h"};
    const char *cba[] = {"c@h", "b@h", "a@h"};
    /* "child1": sum 565 -> b for [a,b] and [a,b,c] */
    ck_assert_int_eq(master_of_binary("child1", ab, 2), 1);
    ck_assert_int_eq(master_of_binary("child1", abc, 3), 1);
    /* "child2": sum 566 -> a for [a,b], c for [a,b,c] */
    ck_assert_int_eq(master_of_binary("child2", ab, 2), 0);
    ck_assert_int_eq(master_of_binary("child2", abc, 3), 2);
    /* the order given does not matter: the list is sorted first */
    ck_assert_str_eq(cba[master_of_binary("child2", cba, 3)], "c@h");
    ck_assert_str_eq(cba[master_of_binary("child1", cba, 3)], "b@h");
}
END_TEST

START_TEST(atoms_and_unicode)
{
    const char *abc[] = {"a@h", "b@h", "c@h"};
    ph_buf b;
    ck_assert_int_eq(ph_buf_init(&b), 0);
    /* atom child1 counts like the binary */
    ck_assert_int_eq(ph_build(&b, "child1"), 0);
    ck_assert_int_eq(replication_master(ph_buf_term(&b), abc, 3), 1);
    ph_buf_reset(&b);
    /* "é" is one code point, 233: 233 mod 3 = 2 */
    ck_assert_int_eq(ph_build(&b, "~s", "\xc3\xa9"), 0);
    ck_assert_int_eq(replication_master(ph_buf_term(&b), abc, 3), 2);
    ph_buf_reset(&b);
    /* other terms are not ids */
    ck_assert_int_eq(ph_build(&b, "42"), 0);
    ck_assert_int_eq(replication_master(ph_buf_term(&b), abc, 3), -1);
    ck_assert_int_eq(replication_master(ph_buf_term(&b), abc, 0), -1);
    ph_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replication");
    TCase *tc = tcase_create("master");
    tcase_add_test(tc, documented_vectors);
    tcase_add_test(tc, atoms_and_unicode);
    suite_add_tcase(s, tc);
    return check_run(s);
}
