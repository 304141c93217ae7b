/* Unit tests: the data-phase framing (ei_glue/framing.c). */
#include "ei_glue/framing.h"

#include <check.h>

#include "check_run.h"
#include <stdlib.h>
#include <string.h>

START_TEST(tick_is_four_zero_bytes)
{
    const char buf[] = {0, 0, 0, 0, 9};
    frame f = framing_next(buf, sizeof buf, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_TICK);
    ck_assert_uint_eq(f.total, 4);
}
END_TEST

START_TEST(short_header_is_incomplete)
{
    const char buf[] = {0, 0, 0};
    for (size_t n = 0; n <= sizeof buf; n++)
        ck_assert_int_eq(framing_next(buf, n, FRAMING_MAX_FRAME).kind, FRAME_INCOMPLETE);
}
END_TEST

START_TEST(data_frame_split_anywhere)
{
    unsigned char buf[5 + 3];
    framing_header(buf, 3);
    memcpy(buf + 5, "abc", 3);
    for (size_t n = 0; n < sizeof buf; n++) {
        frame f = framing_next((char *)buf, n, FRAMING_MAX_FRAME);
        ck_assert_int_eq(f.kind, FRAME_INCOMPLETE);
        if (n >= 4)
            ck_assert_uint_eq(f.total, sizeof buf);
    }
    frame f = framing_next((char *)buf, sizeof buf, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_DATA);
    ck_assert_uint_eq(f.body_len, 3);
    ck_assert_mem_eq(f.body, "abc", 3);
    ck_assert_uint_eq(f.total, sizeof buf);
}
END_TEST

START_TEST(two_frames_back_to_back)
{
    unsigned char buf[5 + 1 + 4 + 5 + 2];
    framing_header(buf, 1);
    buf[5] = 'x';
    memset(buf + 6, 0, 4);
    framing_header(buf + 10, 2);
    memcpy(buf + 15, "yz", 2);
    size_t off = 0;
    frame f = framing_next((char *)buf, sizeof buf, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_DATA);
    off += f.total;
    f = framing_next((char *)buf + off, sizeof buf - off, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_TICK);
    off += f.total;
    f = framing_next((char *)buf + off, sizeof buf - off, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_DATA);
    ck_assert_mem_eq(f.body, "yz", 2);
    ck_assert_uint_eq(off + f.total, sizeof buf);
}
END_TEST

START_TEST(not_pass_through_is_bad)
{
    const char buf[] = {0, 0, 0, 2, 'q', 1};
    ck_assert_int_eq(framing_next(buf, sizeof buf, FRAMING_MAX_FRAME).kind, FRAME_BAD);
    /* detected as soon as the type byte is there, before the whole frame */
    ck_assert_int_eq(framing_next(buf, 5, FRAMING_MAX_FRAME).kind, FRAME_BAD);
}
END_TEST

START_TEST(oversized_is_bad)
{
    const unsigned char buf[] = {0x10, 0, 0, 0, 'p'};
    ck_assert_int_eq(framing_next((const char *)buf, sizeof buf, 1000).kind, FRAME_BAD);
}
END_TEST

START_TEST(large_frame_length_roundtrip)
{
    unsigned char hdr[5];
    framing_header(hdr, 20000122);
    frame f = framing_next((char *)hdr, 5, FRAMING_MAX_FRAME);
    ck_assert_int_eq(f.kind, FRAME_INCOMPLETE);
    ck_assert_uint_eq(f.total, 4 + 1 + 20000122);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("framing");
    TCase *tc = tcase_create("framing");
    tcase_add_test(tc, tick_is_four_zero_bytes);
    tcase_add_test(tc, short_header_is_incomplete);
    tcase_add_test(tc, data_frame_split_anywhere);
    tcase_add_test(tc, two_frames_back_to_back);
    tcase_add_test(tc, not_pass_through_is_bad);
    tcase_add_test(tc, oversized_is_bad);
    tcase_add_test(tc, large_frame_length_roundtrip);
    suite_add_tcase(s, tc);
    return check_run(s);
}
