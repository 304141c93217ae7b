/* Unit tests: erl_interface's allocator (ei_glue/ei_alloc.c): big buffers
 * are mappings, small ones malloc's, and the mixed uses libei makes of
 * them (malloc'd memory to ei_free, ei_malloc'd memory to free or realloc)
 * stay correct. */
#include "ei_glue/ei_alloc.h"
#include "hub/runtime/bigbuf.h"
#include <processhub/term.h>

#include <check.h>

#include "check_run.h"
#include <ei.h>
#include <stdlib.h>
#include <string.h>

#define MB ((long)1 << 20)

START_TEST(small_buffers_are_malloc_and_mix_with_free)
{
    char *p = ei_malloc(100);
    ck_assert_ptr_nonnull(p);
    memset(p, 1, 100);
    p = realloc(p, 5000); /* libei's receive path does this */
    ck_assert_ptr_nonnull(p);
    free(p);
    char *q = malloc(300); /* decode_fun.c: malloc'd, freed with ei_free */
    ck_assert_ptr_nonnull(q);
    ei_free(q);
    ei_free(NULL);
    char *z = ei_malloc(0);
    ck_assert_ptr_nonnull(z);
    ei_free(z);
}
END_TEST

START_TEST(growing_past_a_megabyte_and_back)
{
    char *p = ei_malloc(1000);
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 1000; i++)
        p[i] = (char)i;
    p = ei_realloc(p, 3 * MB); /* malloc's -> a mapping */
    ck_assert_ptr_nonnull(p);
    ck_assert(bigbuf_is_mapped(p));
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(p[i], (char)i);
    memset(p + 1000, 7, (size_t)(3 * MB) - 1000);
    p = ei_realloc(p, 9 * MB); /* moved by the kernel */
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p[3 * MB - 1], 7);
    p = ei_realloc(p, 2000); /* back to malloc's */
    ck_assert_ptr_nonnull(p);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(p[i], (char)i);
    free(p); /* small again: malloc's own */
    char *b = ei_malloc(2 * MB);
    ck_assert_ptr_nonnull(b);
    ck_assert(bigbuf_is_mapped(b));
    ei_free(b);
}
END_TEST

START_TEST(a_ph_buf_of_megabytes)
{
    ph_buf b;
    ck_assert_int_eq(ph_buf_init_versioned(&b), 0);
    ck_assert_int_eq(ei_x_encode_list_header(&b, 200000), 0);
    for (int i = 0; i < 200000; i++) /* grown by doubling, as the hub grows its lists */
        ck_assert(ph_buf_reserve(&b, 64) == 0 &&
                  ei_x_encode_atom(&b, "some_atom_of_a_fair_length") == 0);
    ck_assert_int_eq(ei_x_encode_empty_list(&b), 0);
    ck_assert(bigbuf_is_mapped(b.buff));
    ph_term t = ph_buf_term(&b);
    ck_assert_int_eq(ph_term_end(t), b.index);
    ph_buf_free(&b);
}
END_TEST

/* ei grows a printed term a hundred bytes at a time, a realloc each: under
 * ASan or TSan, where every realloc copies, a megabyte of them takes
 * minutes, so there the printed term stays small (the big path is the one
 * above). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PRINTED_ATOMS 5000
#else
#define PRINTED_ATOMS 120000
#endif

START_TEST(printed_terms_are_freed_with_ei_free)
{
    ph_buf b;
    ck_assert_int_eq(ph_buf_init(&b), 0);
    ck_assert_int_eq(ei_x_encode_list_header(&b, PRINTED_ATOMS), 0);
    for (int i = 0; i < PRINTED_ATOMS; i++)
        ck_assert_int_eq(ei_x_encode_atom(&b, "printed"), 0);
    ck_assert_int_eq(ei_x_encode_empty_list(&b), 0);
    char *s = NULL;
    int index = 0;
    ck_assert_int_ge(ei_s_print_term(&s, b.buff, &index), 0);
    ck_assert_ptr_nonnull(s);
    if (PRINTED_ATOMS > 10000)
        ck_assert_uint_gt(strlen(s), (size_t)MB); /* grown by ei into a mapping */
    ei_free(s);
    ph_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ei_alloc");
    TCase *tc = tcase_create("core");
    /* megabytes encoded atom by atom: seconds under ASan or valgrind on a
     * loaded host, past Check's default 4 s */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, small_buffers_are_malloc_and_mix_with_free);
    tcase_add_test(tc, growing_past_a_megabyte_and_back);
    tcase_add_test(tc, a_ph_buf_of_megabytes);
    tcase_add_test(tc, printed_terms_are_freed_with_ei_free);
    suite_add_tcase(s, tc);
    return check_run(s);
}
