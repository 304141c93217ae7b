/* Unit tests: decoding pids (hub/runtime/pid.c), the long way and through
 * the last node's shortcut, which must agree. */
#include <processhub/worker.h>

#include "hub/runtime/atoms.h"

#include <check.h>

#include "check_run.h"
#include <string.h>

static ph_pid make(const char *node, uint32_t num, uint32_t serial, uint32_t creation)
{
    return (ph_pid){atom_intern(node), num, serial, creation};
}

/* Encodes p, decodes it twice (the second time the node is the last one),
 * and checks both decodings give p back. */
static void roundtrip(ph_pid p)
{
    ph_buf b;
    ck_assert_int_eq(ph_buf_init(&b), 0);
    ck_assert_int_eq(ph_encode_pid(&b, p), 0);
    for (int i = 0; i < 2; i++) {
        ph_pid d;
        memset(&d, 0xff, sizeof d);
        ck_assert_int_eq(ph_decode_pid((ph_term){b.buff, 0}, &d), 0);
        ck_assert(ph_pid_equal(d, p));
    }
    ph_buf_free(&b);
}

START_TEST(same_node_again_and_again)
{
    for (uint32_t i = 0; i < 1000; i++)
        roundtrip(make("a@host", i, i * 7, 0x12345678u));
}
END_TEST

START_TEST(nodes_alternating_and_similar_names)
{
    const char *nodes[] = {"a@host", "b@host", "a@hos", "a@hostx", "a@host", "ä@hößt", ""};
    for (int r = 0; r < 3; r++)
        for (size_t i = 0; i + 1 < sizeof nodes / sizeof nodes[0]; i++)
            roundtrip(make(nodes[i], (uint32_t)i, 1, 2));
}
END_TEST

START_TEST(extreme_numbers)
{
    roundtrip(make("n@h", 0, 0, 0));
    roundtrip(make("n@h", 0x7fffffffu, 0x1fffu, 0xffffffffu));
    roundtrip(make("n@h", 1, 0xffffffffu, 1));
}
END_TEST

START_TEST(not_a_pid_after_a_pid)
{
    roundtrip(make("z@h", 5, 6, 7));
    const char atom[] = {'w', 1, 'x'};
    ph_pid d;
    ck_assert_int_ne(ph_decode_pid((ph_term){atom, 0}, &d), 0);
    ck_assert_int_ne(ph_decode_pid((ph_term){NULL, 0}, &d), 0);
}
END_TEST

START_TEST(latin1_node_after_the_same_node_in_utf8)
{
    ph_pid p = make("q@h", 9, 8, 7);
    roundtrip(p);
    /* The same pid with its node as ATOM_EXT (Latin-1), as an old node
     * sends it: decoded the long way, to the same pid. */
    const unsigned char old[] = {'X', 'd', 0, 3, 'q', '@', 'h', 0, 0, 0, 9, 0, 0, 0, 8, 0, 0, 0, 7};
    ph_pid d;
    ck_assert_int_eq(ph_decode_pid((ph_term){(const char *)old, 0}, &d), 0);
    ck_assert(ph_pid_equal(d, p));
}
END_TEST

START_TEST(after_the_atoms_were_reset)
{
    roundtrip(make("r@h", 1, 2, 3));
    atoms_shutdown(); /* the remembered node's atom is gone */
    roundtrip(make("s@h", 4, 5, 6));
    roundtrip(make("r@h", 1, 2, 3));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pid");
    TCase *tc = tcase_create("core");
    /* megabytes touched byte by byte: seconds under TSan, ASan or valgrind
     * on a loaded host, past Check's default 4 s */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, same_node_again_and_again);
    tcase_add_test(tc, nodes_alternating_and_similar_names);
    tcase_add_test(tc, extreme_numbers);
    tcase_add_test(tc, not_a_pid_after_a_pid);
    tcase_add_test(tc, latin1_node_after_the_same_node_in_utf8);
    tcase_add_test(tc, after_the_atoms_were_reset);
    suite_add_tcase(s, tc);
    return check_run(s);
}
