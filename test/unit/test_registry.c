/* Unit tests: the hub's registry (hub/registry.c) and hook ordering
 * (hub/hooks.c, C handlers). */
#include "hub/runtime/atoms.h"
#include "hub/hooks.h"
#include "hub/registry.h"

#include <check.h>

#include "check_run.h"
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static ph_buf key_of(const char *fmt, const char *text)
{
    ph_buf id, key;
    ph_buf_init(&id);
    ph_buf_init(&key);
    ck_assert_int_eq(ph_build(&id, fmt, text), 0);
    ck_assert_int_eq(registry_key(ph_buf_term(&id), &key), 0);
    ph_buf_free(&id);
    return key;
}

static ph_buf term_of(const char *fmt)
{
    ph_buf b;
    ph_buf_init(&b);
    ck_assert_int_eq(ph_build(&b, fmt), 0);
    return b;
}

START_TEST(keys_are_canonical)
{
    /* An atom id encoded as ATOM_EXT ('d') and as SMALL_ATOM_UTF8_EXT give
     * the same key. */
    const char latin1[] = {'d', 0, 3, 'a', 'b', 'c'};
    ph_buf k1, k2 = key_of("~a", "abc");
    ph_buf_init(&k1);
    ck_assert_int_eq(registry_key((ph_term){latin1, 0}, &k1), 0);
    ck_assert_int_eq(k1.index, k2.index);
    ck_assert_mem_eq(k1.buff, k2.buff, (size_t)k1.index);
    /* binaries are ids too, and differ from the atom of the same text */
    ph_buf k3 = key_of("~s", "abc");
    ck_assert(k3.index != k2.index || memcmp(k3.buff, k2.buff, (size_t)k3.index) != 0);
    /* integers, tuples, pids are not ids */
    ph_buf bad = term_of("{a, 1}"), out;
    ph_buf_init(&out);
    ck_assert_int_eq(registry_key(ph_buf_term(&bad), &out), -1);
    ph_buf_free(&bad);
    bad = term_of("42");
    ck_assert_int_eq(registry_key(ph_buf_term(&bad), &out), -1);
    ph_buf_free(&bad);
    ph_buf_free(&out);
    ph_buf_free(&k1);
    ph_buf_free(&k2);
    ph_buf_free(&k3);
}
END_TEST

static void count_change(void *arg, const char *key, uint32_t key_len)
{
    (void)key;
    (void)key_len;
    (*(int *)arg)++;
}

START_TEST(observer_sees_changes_only)
{
    /* The observer (registry subscriptions) is told of every change, and
     * not of a node's pid set to the pid it has (a member's repair). */
    registry *r = registry_new();
    uint32_t node_a = atom_intern("a@h"), node_b = atom_intern("b@h");
    ph_buf key = key_of("~s", "observed"), spec = term_of("#{id => \"observed\"}");
    ph_buf meta = term_of("#{}");
    int changes = 0;
    registry_observe(r, count_change, &changes);
    reg_node_pid np = {node_a, {node_a, 1, 2, 3}};
    reg_row *row = registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                ph_buf_term(&meta), &np, 1);
    ck_assert_ptr_nonnull(row);
    ck_assert_int_eq(changes, 1);
    ck_assert_int_eq(registry_set_node(r, row, node_a, (ph_pid){node_a, 1, 2, 3}), 0);
    ck_assert_int_eq(changes, 1);
    ck_assert_int_eq(registry_set_node(r, row, node_a, (ph_pid){node_a, 5, 2, 3}), 0);
    ck_assert_int_eq(changes, 2);
    ck_assert_int_eq(registry_set_node(r, row, node_b, (ph_pid){node_b, 7, 0, 1}), 0);
    ck_assert_int_eq(changes, 3);
    ck_assert_int_eq(registry_set_node(r, row, node_b, (ph_pid){node_b, 7, 0, 1}), 0);
    ck_assert_int_eq(changes, 3);
    registry_orphan_node(r, row, node_b);
    registry_orphan_node(r, row, node_a);
    int orphaned = changes;
    ck_assert_int_gt(orphaned, 3);
    /* an orphan running again is a change, whatever pid it had */
    ck_assert_int_eq(registry_set_node(r, row, node_a, (ph_pid){node_a, 5, 2, 3}), 0);
    ck_assert_int_eq(changes, orphaned + 1);
    registry_observe(r, NULL, NULL);
    registry_free(r);
    ph_buf_free(&key);
    ph_buf_free(&spec);
    ph_buf_free(&meta);
}
END_TEST

START_TEST(put_get_replace_delete)
{
    registry *r = registry_new();
    uint32_t node_a = atom_intern("a@h"), node_b = atom_intern("b@h");
    ph_buf key = key_of("~s", "child-1"), spec = term_of("#{id => \"child-1\"}");
    ph_buf meta = term_of("#{tag => web}"), meta2 = term_of("#{}");
    reg_node_pid np = {node_a, {node_a, 1, 2, 3}};
    reg_row *row = registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                ph_buf_term(&meta), &np, 1);
    ck_assert_ptr_nonnull(row);
    ck_assert_uint_eq(registry_count(r), 1);
    ck_assert_uint_eq(registry_running(r), 1);
    ck_assert_ptr_eq(registry_get(r, key.buff, (uint32_t)key.index), row);
    uint32_t hash = registry_hash(key.buff, (uint32_t)key.index);
    ck_assert_ptr_eq(registry_get_hashed(r, key.buff, (uint32_t)key.index, hash), row);
    ck_assert(ph_term_equal(reg_row_spec(row), ph_buf_term(&spec)));
    ck_assert(ph_term_equal(reg_row_meta(row), ph_buf_term(&meta)));
    /* a second replica, then a pid change on the first */
    ck_assert_int_eq(registry_set_node(r, row, node_b, (ph_pid){node_b, 7, 0, 1}), 0);
    ck_assert_int_eq(row->n_nodes, 2);
    ck_assert_int_eq(registry_set_node(r, row, node_a, (ph_pid){node_a, 9, 0, 3}), 0);
    ck_assert_int_eq(row->n_nodes, 2);
    ck_assert_uint_eq(row->nodes[0].pid.num, 9);
    /* replacing the row keeps the nodes when none are given */
    row = registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec), ph_buf_term(&meta2),
                       NULL, 0);
    ck_assert_int_eq(row->n_nodes, 2);
    ck_assert_uint_eq(registry_count(r), 1);
    ck_assert_uint_eq(registry_running(r), 1);
    ck_assert(ph_term_equal(reg_row_meta(row), ph_buf_term(&meta2)));
    /* an orphan (no node left, kept) is not running; a node again and it is */
    registry_orphan_node(r, row, node_b);
    registry_orphan_node(r, row, node_a);
    ck_assert_uint_eq(registry_count(r), 1);
    ck_assert_uint_eq(registry_running(r), 0);
    ck_assert_int_eq(registry_set_node(r, row, node_a, (ph_pid){node_a, 9, 0, 3}), 0);
    ck_assert_int_eq(registry_set_node(r, row, node_b, (ph_pid){node_b, 7, 0, 1}), 0);
    ck_assert_uint_eq(registry_running(r), 1);
    /* removing nodes: the row goes with the last one */
    ck_assert_int_eq(registry_remove_node(r, row, node_a), 0);
    ck_assert_int_eq(row->n_nodes, 1);
    ck_assert_uint_eq(row->nodes[0].node, node_b);
    ck_assert_int_eq(registry_remove_node(r, row, node_b), 1);
    ck_assert_uint_eq(registry_count(r), 0);
    ck_assert_uint_eq(registry_running(r), 0);
    ck_assert_ptr_null(registry_get(r, key.buff, (uint32_t)key.index));
    ck_assert_ptr_null(registry_get_hashed(r, key.buff, (uint32_t)key.index, hash));
    registry_free(r);
    ph_buf_free(&key);
    ph_buf_free(&spec);
    ph_buf_free(&meta);
    ph_buf_free(&meta2);
}
END_TEST

/* registry_encode_nodes writes [{Node, Pid}] as bytes itself: what ei
 * decodes from them is the row's nodes and pids (numbers masked as ei masks
 * them; a 2-bit and a 32-bit creation; a name that is not ASCII). */
START_TEST(nodes_encode_as_ei_decodes)
{
    registry *r = registry_new();
    uint32_t node_a = atom_intern("a@h"), node_b = atom_intern("bee@host"),
             node_c = atom_intern("\xc3\xbc@h");
    ph_buf key = key_of("~s", "enc-1"), spec = term_of("#{id => \"enc-1\"}");
    ph_buf meta = term_of("#{}");
    reg_node_pid nps[3] = {{node_a, {node_a, 5, 6, 3}},
                           {node_b, {node_b, 0x12345, 0x4321, 0x9abcdef0u}},
                           {node_c, {node_c, 7, 8, 77}}};
    reg_row *row = registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                ph_buf_term(&meta), nps, 3);
    ck_assert_ptr_nonnull(row);
    ph_buf out;
    ph_buf_init(&out);
    ck_assert_int_eq(registry_encode_nodes(&out, row), 0);
    int index = 0, arity, type, size;
    for (int i = 0; i < 3; i++) {
        char atom[MAXATOMLEN_UTF8];
        erlang_pid pid;
        ck_assert_int_eq(ei_decode_list_header(out.buff, &index, &arity), 0);
        ck_assert_int_eq(arity, 1);
        ck_assert_int_eq(ei_decode_tuple_header(out.buff, &index, &arity), 0);
        ck_assert_int_eq(arity, 2);
        ck_assert_int_eq(ei_get_type(out.buff, &index, &type, &size), 0);
        ck_assert_int_eq(
            ei_decode_atom_as(out.buff, &index, atom, sizeof atom, ERLANG_UTF8, NULL, NULL), 0);
        ck_assert_str_eq(atom, atom_text(row->nodes[i].node));
        ck_assert_int_eq(ei_decode_pid(out.buff, &index, &pid), 0);
        ck_assert_str_eq(pid.node, atom_text(row->nodes[i].pid.node));
        ck_assert_uint_eq(pid.num, row->nodes[i].pid.num & 0x7fff);
        ck_assert_uint_eq(pid.serial, row->nodes[i].pid.serial & 0x1fff);
        ck_assert_uint_eq(pid.creation, row->nodes[i].pid.creation);
    }
    ck_assert_int_eq(ei_decode_list_header(out.buff, &index, &arity), 0);
    ck_assert_int_eq(arity, 0);
    ck_assert_int_eq(index, out.index);
    ph_buf_free(&out);
    registry_free(r);
    ph_buf_free(&key);
    ph_buf_free(&spec);
    ph_buf_free(&meta);
}
END_TEST

START_TEST(many_rows_iterate_once_each)
{
    registry *r = registry_new();
    uint32_t node = atom_intern("a@h");
    ph_buf spec = term_of("#{}");
    char name[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof name, "c%d", i);
        ph_buf key = key_of("~s", name);
        reg_node_pid np = {node, {node, (uint32_t)i, 0, 1}};
        ck_assert_ptr_nonnull(registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                           ph_buf_term(&spec), &np, 1));
        ph_buf_free(&key);
    }
    /* delete every other one: tombstones must not hide the rest */
    for (int i = 0; i < 20000; i += 2) {
        snprintf(name, sizeof name, "c%d", i);
        ph_buf key = key_of("~s", name);
        reg_row *row = registry_get(r, key.buff, (uint32_t)key.index);
        ck_assert_ptr_nonnull(row);
        registry_delete(r, row);
        ph_buf_free(&key);
    }
    ck_assert_uint_eq(registry_count(r), 10000);
    uint32_t i = 0, seen = 0;
    char *marks = calloc(20000, 1);
    reg_row *row;
    while ((row = registry_next(r, &i)) != NULL) {
        uint32_t n = row->nodes[0].pid.num;
        ck_assert(n % 2 == 1);
        ck_assert(!marks[n]);
        marks[n] = 1;
        seen++;
    }
    ck_assert_uint_eq(seen, 10000);
    free(marks);
    registry_free(r);
    ph_buf_free(&spec);
}
END_TEST

/* A batch's look-ahead (reg_ahead): with the ids given REG_AHEAD_SLOT
 * ahead of their lookups, the guess k ahead is the row of the id k on
 * (where that id's first slot holds it), ids that are not keys and the end
 * of the list included. */
START_TEST(look_ahead_follows_the_ids)
{
    registry *r = registry_new();
    uint32_t node = atom_intern("a@h");
    ph_buf spec = term_of("#{}");
    enum { N = 200 };
    ph_buf ids[N];
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "la%d", i);
        ph_buf_init(&ids[i]);
        /* every 7th id is no key (a tuple): it gives no hint */
        ck_assert_int_eq(
            i % 7 == 3 ? ph_build(&ids[i], "{~s}", name) : ph_build(&ids[i], "~s", name), 0);
        if (i % 7 == 3)
            continue;
        ph_buf key = key_of("~s", name);
        reg_node_pid np = {node, {node, (uint32_t)i, 0, 1}};
        ck_assert_ptr_nonnull(registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                           ph_buf_term(&spec), &np, 1));
        ph_buf_free(&key);
    }
    reg_ahead a;
    ck_assert_int_eq(reg_ahead_init(&a), 0);
    for (int i = 0; i < REG_AHEAD_SLOT; i++) {
        ph_term t = ph_buf_term(&ids[i]);
        reg_ahead_next(&a, r, &t);
    }
    int checked = 0;
    for (int i = 0; i < N; i++) {
        for (unsigned k = 1; k < REG_AHEAD_SLOT; k++) {
            const reg_row *guess = reg_ahead_peek(&a, r, k);
            if (i + (int)k >= N || (i + (int)k) % 7 == 3 || !guess)
                continue; /* past the end, no key (a stale hint), or another slot */
            snprintf(name, sizeof name, "la%d", i + (int)k);
            ph_buf key = key_of("~s", name);
            ck_assert_ptr_eq(guess, registry_get(r, key.buff, (uint32_t)key.index));
            ph_buf_free(&key);
            checked++;
        }
        ph_term t = i + REG_AHEAD_SLOT < N ? ph_buf_term(&ids[i + REG_AHEAD_SLOT]) : (ph_term){0};
        reg_ahead_next(&a, r, i + REG_AHEAD_SLOT < N ? &t : NULL);
    }
    ck_assert_int_gt(checked, N * 2); /* most guesses land */
    reg_ahead_free(&a);
    for (int i = 0; i < N; i++)
        ph_buf_free(&ids[i]);
    registry_free(r);
    ph_buf_free(&spec);
}
END_TEST

/* Rounds of "start all, stop all" (the benchmark's pattern): each round
 * leaves a table of tombstones, which the next round's reserve and inserts
 * must clear; every key of the round is found, none of the last. */
START_TEST(rounds_of_insert_all_delete_all)
{
    registry *r = registry_new();
    uint32_t node = atom_intern("a@h");
    ph_buf spec = term_of("#{}");
    char name[32];
    enum { N = 5000 };
    for (int round = 0; round < 6; round++) {
        ck_assert_int_eq(registry_reserve(r, N), 0);
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "r%d_%d", round, i);
            ph_buf key = key_of("~s", name);
            registry_prefetch(r, registry_hash(key.buff, (uint32_t)key.index));
            reg_node_pid np = {node, {node, (uint32_t)i, 0, 1}};
            ck_assert_ptr_nonnull(registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                               ph_buf_term(&spec), &np, 1));
            ph_buf_free(&key);
        }
        ck_assert_uint_eq(registry_count(r), N);
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "r%d_%d", round, i);
            ph_buf key = key_of("~s", name);
            reg_row *row = registry_get(r, key.buff, (uint32_t)key.index);
            ck_assert_ptr_nonnull(row);
            if (round > 0) {
                snprintf(name, sizeof name, "r%d_%d", round - 1, i);
                ph_buf old = key_of("~s", name);
                ck_assert_ptr_null(registry_get(r, old.buff, (uint32_t)old.index));
                ph_buf_free(&old);
            }
            registry_delete(r, row);
            ph_buf_free(&key);
        }
        ck_assert_uint_eq(registry_count(r), 0);
    }
    registry_free(r);
    ph_buf_free(&spec);
}
END_TEST

START_TEST(row_overhead_is_small)
{
    /* Goal: at most 200 bytes per registry row beyond the child spec. */
    enum { N = 100000 };
    registry *r = registry_new();
    uint32_t node = atom_intern("a@h");
    ph_buf spec = term_of("#{id => \"b1\", start => {counter, start_link, [0]}}");
    ph_buf meta = term_of("#{}");
    int spec_len = spec.index;
    char name[32];
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "b%d", i);
        ph_buf key = key_of("~s", name);
        reg_node_pid np = {node, {node, (uint32_t)i, 0, 1}};
        ck_assert_ptr_nonnull(registry_put(r, key.buff, (uint32_t)key.index, ph_buf_term(&spec),
                                           ph_buf_term(&meta), &np, 1));
        ph_buf_free(&key);
    }
    struct mallinfo2 after = mallinfo2();
    size_t used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    size_t per_row = used / N;
    fprintf(stderr, "registry: %zu bytes per row, %d of them the spec\n", per_row, spec_len);
    ck_assert_uint_le(per_row, 200 + (size_t)spec_len);
    registry_free(r);
    ph_buf_free(&spec);
    ph_buf_free(&meta);
}
END_TEST

/* --- hooks: C handlers ---------------------------------------------------- */

static char order[64];

static int record_handler(void *arg, const char *key, ph_term data, ph_buf *altered)
{
    (void)key;
    (void)data;
    (void)altered;
    strncat(order, arg, sizeof order - strlen(order) - 1);
    return 0;
}

/* Alter hook: appends its arg to the binary it is given. */
static int alter_handler(void *arg, const char *key, ph_term data, ph_buf *altered)
{
    (void)key;
    const char *bin;
    size_t len;
    char text[64];
    if (ph_match(data, "~b", &bin, &len) != 1 || len > 32)
        return 0;
    memcpy(text, bin, len);
    text[len] = '\0';
    strcat(text, arg);
    return ph_build(altered, "~s", text) == 0 ? 1 : 0;
}

/* Timed entries (tombs): expiry moved in place, pruned by it. */
START_TEST(timed_entries_refresh_and_prune)
{
    static const reg_node_pid no_nodes;
    registry *r = registry_new();
    ph_buf k1 = key_of("~s", "one"), k2 = key_of("~s", "two");
    char t[16];
    ph_term until = registry_until(t, 1000);
    reg_row *a = registry_put(r, k1.buff, (uint32_t)k1.index, until, until, &no_nodes, 0);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(registry_put(r, k2.buff, (uint32_t)k2.index, until, until, &no_nodes, 0));
    /* same encoding length: in place, the row stays the same */
    ck_assert_int_eq(registry_refresh_until(a, 5000), 0);
    ck_assert_ptr_eq(registry_get(r, k1.buff, (uint32_t)k1.index), a);
    ph_buf want = term_of("5000");
    ck_assert_int_eq(ph_term_equal(reg_row_spec(a), ph_buf_term(&want)), 1);
    ck_assert_int_eq(ph_term_equal(reg_row_meta(a), ph_buf_term(&want)), 1);
    /* another length (a small integer): refused, nothing written */
    ck_assert_int_eq(registry_refresh_until(a, 7), -1);
    ck_assert_int_eq(ph_term_equal(reg_row_spec(a), ph_buf_term(&want)), 1);
    /* at 2000 the entry moved to 5000 stays, the other goes */
    ck_assert_uint_eq(registry_prune_expired(r, 2000), 1);
    ck_assert_ptr_eq(registry_get(r, k1.buff, (uint32_t)k1.index), a);
    ck_assert_ptr_null(registry_get(r, k2.buff, (uint32_t)k2.index));
    ph_buf_free(&want);
    ph_buf_free(&k1);
    ph_buf_free(&k2);
    registry_free(r);
}
END_TEST

START_TEST(hooks_run_by_priority_and_cancel)
{
    hooks *h = hooks_new();
    order[0] = '\0';
    ck_assert_int_eq(hooks_register_c(h, "k", "low", 0, record_handler, "L"), 0);
    ck_assert_int_eq(hooks_register_c(h, "k", "high", 100, record_handler, "H"), 0);
    ck_assert_int_eq(hooks_register_c(h, "k", "mid", 50, record_handler, "M"), 0);
    ck_assert_int_eq(hooks_register_c(h, "k", "mid2", 50, record_handler, "m"), 0);
    ck_assert_int_eq(hooks_register_c(h, "k", "mid", 7, record_handler, "X"), -1); /* duplicate */
    ph_buf data = term_of("ok"), ids = term_of("[\"mid\", \"unknown\"]");
    ph_term d = ph_buf_term(&data);
    hooks_dispatch(h, NULL, "k", &d, NULL);
    ck_assert_str_eq(order, "HMmL");
    hooks_cancel_terms(h, "k", ph_buf_term(&ids));
    hooks_cancel_terms(h, "no_such_key", ph_buf_term(&ids));
    order[0] = '\0';
    hooks_dispatch(h, NULL, "k", &d, NULL);
    ck_assert_str_eq(order, "HmL");
    ck_assert(!hooks_has(h, "other"));
    hooks_free(h);
    ph_buf_free(&data);
    ph_buf_free(&ids);
}
END_TEST

START_TEST(alter_hooks_chain)
{
    hooks *h = hooks_new();
    ck_assert_int_eq(hooks_register_c(h, "alter", "a", 10, alter_handler, "-a"), 0);
    ck_assert_int_eq(hooks_register_c(h, "alter", "b", 5, alter_handler, "-b"), 0);
    ph_buf data = term_of("\"x\""), altered;
    ph_buf_init(&altered);
    ph_term d = ph_buf_term(&data);
    hooks_dispatch(h, NULL, "alter", &d, &altered);
    ph_buf want = term_of("\"x-a-b\"");
    ck_assert(ph_term_equal(d, ph_buf_term(&want)));
    hooks_free(h);
    ph_buf_free(&data);
    ph_buf_free(&altered);
    ph_buf_free(&want);
}
END_TEST

/* hooks_run's continuation: records the data it got. */
static ph_buf cont_data;
static int cont_calls;
static void record_cont(void *arg, ph_ctx *ctx, ph_term data)
{
    (void)arg;
    (void)ctx;
    cont_calls++;
    ph_buf_reset(&cont_data);
    ph_buf_append_term(&cont_data, data);
}

START_TEST(runs_with_continuations)
{
    hooks *h = hooks_new();
    ph_buf_init(&cont_data);
    cont_calls = 0;
    ck_assert_int_eq(hooks_register_c(h, "alter", "a", 10, alter_handler, "-a"), 0);
    ck_assert_int_eq(hooks_register_c(h, "alter", "b", 5, alter_handler, "-b"), 0);
    ph_buf data = term_of("\"x\""), want = term_of("\"x-a-b\"");
    /* no M/F/A handler and nothing queued: at once, the alter answers chained */
    hooks_run(h, NULL, "alter", ph_buf_term(&data), 1, record_cont, NULL, NULL);
    ck_assert_int_eq(cont_calls, 1);
    ck_assert(ph_term_equal(ph_buf_term(&cont_data), ph_buf_term(&want)));
    ck_assert(!hooks_busy(h));
    ck_assert(!hooks_awaits(h, "alter"));
    /* a bare continuation runs at once too; not an alter run: data kept */
    hooks_run(h, NULL, NULL, (ph_term){0}, 0, record_cont, NULL, NULL);
    ck_assert_int_eq(cont_calls, 2);
    hooks_run(h, NULL, "alter", ph_buf_term(&data), 0, record_cont, NULL, NULL);
    ck_assert(ph_term_equal(ph_buf_term(&cont_data), ph_buf_term(&data)));
    ph_buf mfa = term_of("[#{id => m, m => erlang, f => send, a => [x, '_'], p => 1}]");
    ck_assert_int_eq(hooks_register_terms(h, "alter", ph_buf_term(&mfa), atom_intern("beam@h")), 0);
    ck_assert(hooks_awaits(h, "alter"));
    /* a message that is not about hooks is left alone */
    ph_buf other = term_of("{a, b}");
    ck_assert_int_eq(hooks_message(h, NULL, ph_buf_term(&other)), 0);
    hooks_free(h);
    ph_buf_free(&data);
    ph_buf_free(&want);
    ph_buf_free(&mfa);
    ph_buf_free(&other);
    ph_buf_free(&cont_data);
}
END_TEST

START_TEST(handler_terms_are_validated)
{
    hooks *h = hooks_new();
    uint32_t node = atom_intern("beam@h");
    ph_buf good = term_of("[#{id => a, m => erlang, f => send, a => [x, '_'], p => 3}]");
    ph_buf dup =
        term_of("[#{id => b, m => m, f => f, a => []}, #{id => b, m => m, f => f, a => []}]");
    ph_buf bad = term_of("[#{m => m}]"), not_list = term_of("{a}");
    ck_assert_int_eq(hooks_register_terms(h, "k", ph_buf_term(&good), node), 0);
    ck_assert_int_eq(hooks_register_terms(h, "k", ph_buf_term(&good), node), -1);
    ck_assert_int_eq(hooks_register_terms(h, "k", ph_buf_term(&dup), node), -1);
    ck_assert_int_eq(hooks_register_terms(h, "k", ph_buf_term(&bad), node), -2);
    ck_assert_int_eq(hooks_register_terms(h, "k", ph_buf_term(&not_list), node), -2);
    ck_assert(hooks_has(h, "k"));
    hooks_free(h);
    ph_buf_free(&good);
    ph_buf_free(&dup);
    ph_buf_free(&bad);
    ph_buf_free(&not_list);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, keys_are_canonical);
    tcase_add_test(tc, put_get_replace_delete);
    tcase_add_test(tc, observer_sees_changes_only);
    tcase_add_test(tc, nodes_encode_as_ei_decodes);
    tcase_add_test(tc, many_rows_iterate_once_each);
    tcase_add_test(tc, look_ahead_follows_the_ids);
    tcase_add_test(tc, rounds_of_insert_all_delete_all);
    tcase_add_test(tc, row_overhead_is_small);
    tcase_add_test(tc, timed_entries_refresh_and_prune);
    tcase_add_test(tc, hooks_run_by_priority_and_cancel);
    tcase_add_test(tc, alter_hooks_chain);
    tcase_add_test(tc, runs_with_continuations);
    tcase_add_test(tc, handler_terms_are_validated);
    suite_add_tcase(s, tc);
    int status = check_run(s);
    atoms_shutdown();
    return status;
}
