/* Unit tests: the table of hub message kinds (hub/protocol.c): every kind
 * decodes what hub_msg_begin starts, bad shapes are refused, and
 * docs/protocol.md describes every kind. */
#include "hub/protocol.h"
#include "hub/runtime/atoms.h"

#include <check.h>

#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ph_pid a_pid(void)
{
    return (ph_pid){.node = atom_intern("a@h"), .num = 7, .serial = 1, .creation = 3};
}

static ph_ref a_ref(void)
{
    ph_ref r = {0};
    r.node = atom_intern("a@h");
    r.len = 3;
    r.n[0] = 1;
    r.n[1] = 2;
    r.n[2] = 3;
    r.creation = 3;
    return r;
}

/* Encodes a sample message of kind k with its shape's fields. */
static void sample(ph_buf *b, hub_msg_kind k)
{
    ph_ref r = a_ref();
    ck_assert_int_eq(hub_msg_begin(b, k), 0);
    switch (hub_msg_types[k].shape) {
    case SHAPE_SIGNAL:
        break;
    case SHAPE_MEMBERS:
        ck_assert_int_eq(ph_encode_pid(b, a_pid()), 0);
        ck_assert_int_eq(ph_build(b, "['b@h']"), 0);
        break;
    case SHAPE_NODE_LIST:
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "[~s]", "c1"), 0);
        break;
    case SHAPE_START:
        ck_assert_int_eq(ph_encode_ref(b, &r), 0);
        ck_assert_int_eq(ph_encode_pid(b, a_pid()), 0);
        ck_assert_int_eq(ph_build(b, "[#{id => ~s}]", "c1"), 0);
        ck_assert_int_eq(ph_build(b, "[{forwarded, true}]"), 0);
        break;
    case SHAPE_ANSWER:
        ck_assert_int_eq(ph_encode_ref(b, &r), 0);
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "{ok, #{}}"), 0);
        break;
    case SHAPE_STOP:
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "[~s]", "c1"), 0);
        ck_assert_int_eq(ph_build(b, "~u", 1ULL << 60), 0);
        break;
    case SHAPE_STOP_AWAIT:
        ck_assert_int_eq(ph_encode_ref(b, &r), 0);
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "[~s]", "c1"), 0);
        ck_assert_int_eq(ph_build(b, "~u", 1ULL << 60), 0);
        break;
    case SHAPE_REF:
        ck_assert_int_eq(ph_encode_ref(b, &r), 0);
        break;
    case SHAPE_DUE:
        ck_assert_int_eq(ph_build(b, "~u", 12345ULL), 0);
        break;
    case SHAPE_GOSSIP:
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_encode_ref(b, &r), 0);
        ck_assert_int_eq(ph_build(b, "'c@h'"), 0);
        ck_assert_int_eq(ph_build(b, "~u", 7ULL), 0);
        ck_assert_int_eq(ph_build(b, "['b@h']"), 0);
        ck_assert_int_eq(ph_build(b, "['b@h', 'c@h']"), 0);
        ck_assert_int_eq(ph_build(b, "{[], []}"), 0);
        break;
    case SHAPE_NODE_SEQ:
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "~u", 7ULL), 0);
        break;
    case SHAPE_NODE_TERM:
        ck_assert_int_eq(ph_build(b, "'b@h'"), 0);
        ck_assert_int_eq(ph_build(b, "{1, none}"), 0);
        break;
    }
}

START_TEST(every_kind_round_trips)
{
    for (int k = 0; k < HM_COUNT; k++) {
        ph_buf b;
        hub_msg m;
        ck_assert_int_eq(ph_buf_init(&b), 0);
        sample(&b, (hub_msg_kind)k);
        ck_assert_msg(hub_msg_decode(ph_buf_term(&b), &m) == 0, "%s does not decode",
                      hub_msg_types[k].name);
        ck_assert_int_eq(m.kind, k);
        switch (hub_msg_types[k].shape) {
        case SHAPE_MEMBERS:
            ck_assert(ph_pid_equal(m.pid, a_pid()));
            break;
        case SHAPE_NODE_LIST:
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            break;
        case SHAPE_START:
            ck_assert(ph_pid_equal(m.pid, a_pid()));
            break;
        case SHAPE_ANSWER:
        case SHAPE_REF: {
            ph_ref r = a_ref();
            ck_assert(ph_ref_equal(&m.ref, &r));
            break;
        }
        case SHAPE_STOP:
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            ck_assert_uint_eq(m.seq, 1ULL << 60);
            break;
        case SHAPE_STOP_AWAIT: {
            ph_ref r = a_ref();
            ck_assert(ph_ref_equal(&m.ref, &r));
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            ck_assert_uint_eq(m.seq, 1ULL << 60);
            break;
        }
        case SHAPE_DUE:
            ck_assert_uint_eq(m.due, 12345);
            break;
        case SHAPE_GOSSIP: {
            ph_ref r = a_ref();
            ck_assert(ph_ref_equal(&m.ref, &r));
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            ck_assert_uint_eq(m.origin, atom_intern("c@h"));
            ck_assert_uint_eq(m.seq, 7);
            break;
        }
        case SHAPE_NODE_SEQ:
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            ck_assert_uint_eq(m.seq, 7);
            break;
        case SHAPE_NODE_TERM:
            ck_assert_uint_eq(m.node, atom_intern("b@h"));
            ck_assert_int_eq(ph_match(m.term, "{1, none}"), 1);
            break;
        case SHAPE_SIGNAL:
            break;
        }
        ph_buf_free(&b);
    }
}
END_TEST

START_TEST(bad_messages_are_refused)
{
    const char *bad[] = {
        "{'$ph_hub', no_such_kind}",                                        /* unknown kind */
        "{'$ph_hub', hello, not_a_pid, []}",                                /* wrong field */
        "{'$ph_hub', hello}",                                               /* wrong arity */
        "{'$ph_hub', registered, 42, []}",                                  /* node not an atom */
        "{'$ph_hub', start_result, x, 'b@h', ok}",                          /* not a ref */
        "{'$ph_hub', reconcile, -1}",                                       /* not a due time */
        "{'$ph_hub', gossip_update, 'b@h', x, 'c@h', 1, [], [], {[], []}}", /* not a ref */
        "{'$ph_hub', gossip_seq, 'b@h', -1}",                               /* not a number */
        "{'$ph_hub', stop, 'b@h', [c1]}",                                   /* no stamp */
        "{'$ph_hub', stop, 'b@h', [c1], -3}",                               /* not a stamp */
        "{'$ph_hub', stop, 'b@h', c1, 5}",                                  /* not a list */
        "{other, hello, x, y}",                                             /* not a hub message */
        "{'$ph_hub'}",
        "hello",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ph_buf b;
        hub_msg m;
        ck_assert_int_eq(ph_buf_init(&b), 0);
        ck_assert_int_eq(ph_build(&b, bad[i]), 0);
        ck_assert_msg(hub_msg_decode(ph_buf_term(&b), &m) != 0, "accepted %s", bad[i]);
        ph_buf_free(&b);
    }
}
END_TEST

/* docs/protocol.md is the reference of these messages: each kind must be in it. */
START_TEST(every_kind_is_documented)
{
    FILE *f = fopen("docs/protocol.md", "r");
    ck_assert_msg(f != NULL, "docs/protocol.md not found (run from the repository root)");
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    for (int k = 0; k < HM_COUNT; k++) {
        char needle[128];
        snprintf(needle, sizeof needle, "{'$ph_hub', %s", hub_msg_types[k].name);
        char *p = strstr(doc, needle);
        /* the name must end there (start vs start_result) */
        while (p && (p[strlen(needle)] != ',' && p[strlen(needle)] != '}'))
            p = strstr(p + 1, needle);
        ck_assert_msg(p != NULL, "docs/protocol.md does not describe %s", needle);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("protocol");
    TCase *tc = tcase_create("kinds");
    tcase_add_test(tc, every_kind_round_trips);
    tcase_add_test(tc, bad_messages_are_refused);
    tcase_add_test(tc, every_kind_is_documented);
    suite_add_tcase(s, tc);
    return check_run(s);
}
