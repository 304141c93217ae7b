/* Unit tests: ConsistentHashing placement against the vectors produced by
 * the real hash_ring library: the file named by PH_RING_VECTORS, else
 * ../shared/vectors/ring_vectors.json (the project's shared folder), else
 * test/data/ring_vectors.json (a copy of it, for checkouts without it). */
#include "strategies/distribution/consistent_hashing.h"
#include "strategies/distribution/md5_short.h"

#include <check.h>
#include <openssl/evp.h>

#include "check_run.h"
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

static const char *vectors_path(void)
{
    const char *p = getenv("PH_RING_VECTORS");
    if (p)
        return p;
    if (access("../shared/vectors/ring_vectors.json", R_OK) == 0)
        return "../shared/vectors/ring_vectors.json";
    return "test/data/ring_vectors.json";
}

static ph_buf key_term(const char *key, const char *type)
{
    ph_buf b;
    ph_buf_init(&b);
    if (strcmp(type, "atom") == 0)
        ck_assert_int_eq(
            ei_x_encode_atom_len_as(&b, key, (int)strlen(key), ERLANG_UTF8, ERLANG_UTF8), 0);
    else
        ck_assert_int_eq(ph_build(&b, "~s", key), 0);
    return b;
}

START_TEST(every_vector_matches)
{
    json_error_t err;
    json_t *root = json_load_file(vectors_path(), 0, &err);
    ck_assert_msg(root != NULL, "cannot read %s: %s", vectors_path(), err.text);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "vnodes_per_node")), 256);
    size_t i, j, k, checked = 0;
    json_t *rg, *pl, *nd;
    json_array_foreach(json_object_get(root, "rings"), i, rg)
    {
        ring *r = ring_new(RING_ATOMS_OTP25);
        json_array_foreach(json_object_get(rg, "nodes"), j, nd)
            ck_assert_int_eq(ring_add_node(r, json_string_value(nd)), 0);
        json_array_foreach(json_object_get(rg, "placements"), j, pl)
        {
            const char *key = json_string_value(json_object_get(pl, "key"));
            ph_buf kb = key_term(key, json_string_value(json_object_get(pl, "key_type")));
            int64_t h = ring_key_hash(r, ph_buf_term(&kb));
            ck_assert_msg(h == (int64_t)json_integer_value(json_object_get(pl, "key_hash")),
                          "hash of %s", key);
            int rf = (int)json_integer_value(json_object_get(pl, "rf"));
            const char *got[16];
            int n = ring_key_nodes(r, ph_buf_term(&kb), rf, got, 16);
            json_t *want = json_object_get(pl, "nodes");
            ck_assert_int_eq(n, (int)json_array_size(want));
            json_array_foreach(want, k, nd)
                ck_assert_msg(strcmp(got[k], json_string_value(nd)) == 0,
                              "ring %zu key %s rf %d position %zu: %s, want %s", i, key, rf, k,
                              got[k], json_string_value(nd));
            ph_buf_free(&kb);
            checked++;
        }
        ring_free(r);
    }
    ck_assert_uint_gt(checked, 0);
    json_decref(root);
}
END_TEST

START_TEST(documented_otp26_orders)
{
    /* processhub-behaviour.md §7.1: a, b, c ring with OTP 26 atom encoding */
    ring *r = ring_new(RING_ATOMS_OTP26);
    ck_assert_int_eq(ring_add_node(r, "a@127.0.0.1"), 0);
    ck_assert_int_eq(ring_add_node(r, "b@127.0.0.1"), 0);
    ck_assert_int_eq(ring_add_node(r, "c@127.0.0.1"), 0);
    ph_buf k = key_term("child1", "binary");
    const char *got[3];
    ck_assert_int_eq(ring_key_nodes(r, ph_buf_term(&k), 3, got, 3), 3);
    ck_assert_str_eq(got[0], "b@127.0.0.1");
    ck_assert_str_eq(got[1], "c@127.0.0.1");
    ck_assert_str_eq(got[2], "a@127.0.0.1");
    ph_buf_free(&k);
    k = key_term("my_child", "atom");
    ck_assert_int_eq(ring_key_hash(r, ph_buf_term(&k)), 0xc1a085c8);
    ph_buf_free(&k);
    ring_free(r);
}
END_TEST

START_TEST(membership_changes_move_only_affected_keys)
{
    ring *r = ring_new(RING_ATOMS_OTP25);
    ring_add_node(r, "a@h");
    ring_add_node(r, "b@h");
    ring_add_node(r, "c@h");
    enum { N = 2000 };
    const char *before[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ph_buf k = key_term(key, "binary");
        ck_assert_int_eq(ring_key_nodes(r, ph_buf_term(&k), 1, &before[i], 1), 1);
        before[i] = strdup(before[i]);
        ph_buf_free(&k);
    }
    ck_assert_int_eq(ring_add_node(r, "d@h"), 0);
    ck_assert_int_eq(ring_add_node(r, "d@h"), -1);
    int moved = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ph_buf k = key_term(key, "binary");
        const char *now;
        ring_key_nodes(r, ph_buf_term(&k), 1, &now, 1);
        if (strcmp(now, before[i]) != 0) {
            ck_assert_str_eq(now, "d@h"); /* a key only ever moves to the new node */
            moved++;
        }
        ph_buf_free(&k);
        free((char *)before[i]);
    }
    ck_assert(moved > N / 8 && moved < N / 2);
    ck_assert_int_eq(ring_remove_node(r, "zz@h"), -1);
    ck_assert_int_eq(ring_node_count(r), 4);
    ring_free(r);
}
END_TEST

/* The hub's failover relies on this (hub/strategy.c, strategy_removal_is_local):
 * removing a node changes the owners, every replica included, only of the
 * keys that node was an owner of. */
START_TEST(removal_moves_only_the_removed_nodes_keys)
{
    ring *r = ring_new(RING_ATOMS_OTP25);
    const char *names[] = {"a@h", "b@h", "c@h", "d@h"};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ring_add_node(r, names[i]), 0);
    enum { N = 3000, RF = 2 };
    char *before[N][RF];
    int had_c[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ph_buf k = key_term(key, "binary");
        const char *got[RF];
        ck_assert_int_eq(ring_key_nodes(r, ph_buf_term(&k), RF, got, RF), RF);
        had_c[i] = 0;
        for (int j = 0; j < RF; j++) {
            before[i][j] = strdup(got[j]);
            had_c[i] |= strcmp(got[j], "c@h") == 0;
        }
        ph_buf_free(&k);
    }
    ck_assert_int_eq(ring_remove_node(r, "c@h"), 0);
    int changed = 0;
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ph_buf k = key_term(key, "binary");
        const char *got[RF];
        ck_assert_int_eq(ring_key_nodes(r, ph_buf_term(&k), RF, got, RF), RF);
        int same = 1;
        for (int j = 0; j < RF; j++) {
            same &= strcmp(got[j], before[i][j]) == 0;
            free(before[i][j]);
        }
        if (!had_c[i])
            ck_assert_msg(same, "k%d moved though c@h was none of its owners", i);
        changed += !same;
        ph_buf_free(&k);
    }
    ck_assert(changed > N / 4); /* the keys c@h owned did move */
    ring_free(r);
}
END_TEST

/* The ring's own MD5 of short inputs is OpenSSL's, for every length it
 * takes, and refuses the lengths it does not. */
START_TEST(short_md5_matches_openssl)
{
    unsigned char in[MD5_SHORT_MAX + 1], ours[16], theirs[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    srand(7);
    for (int round = 0; round < 200; round++)
        for (size_t len = 0; len <= MD5_SHORT_MAX; len++) {
            for (size_t i = 0; i < len; i++)
                in[i] = (unsigned char)(round == 0 ? 0xff : rand());
            ck_assert_int_eq(md5_short(in, len, ours), 0);
            ck_assert_int_eq(EVP_Digest(in, len, theirs, &n, EVP_md5(), NULL), 1);
            ck_assert_uint_eq(n, 16);
            ck_assert_mem_eq(ours, theirs, 16);
        }
    ck_assert_int_eq(md5_short(in, MD5_SHORT_MAX + 1, ours), -1);
}
END_TEST

/* An id longer than one MD5 block goes through OpenSSL: the same hash as
 * md5(term_to_binary(Id)) computed here. */
START_TEST(long_ids_hash_like_short_ones)
{
    ring *r = ring_new(RING_ATOMS_OTP26);
    ck_assert_ptr_nonnull(r);
    for (size_t len = 40; len <= 200; len += 20) {
        unsigned char bin[200], ext[6 + 200], digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        for (size_t i = 0; i < len; i++)
            bin[i] = (unsigned char)(i * 13 + len);
        ph_buf b;
        ph_buf_init(&b);
        ck_assert_int_eq(ei_x_encode_binary(&b, bin, (long)len), 0);
        ext[0] = 131;
        memcpy(ext + 1, b.buff, (size_t)b.index);
        ck_assert_int_eq(EVP_Digest(ext, 1 + (size_t)b.index, digest, &n, EVP_md5(), NULL), 1);
        uint32_t want = (uint32_t)digest[12] << 24 | (uint32_t)digest[13] << 16 |
                        (uint32_t)digest[14] << 8 | digest[15];
        ck_assert_int_eq(ring_key_hash(r, ph_buf_term(&b)), (int64_t)want);
        ph_buf_free(&b);
    }
    ring_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_vector_matches);
    tcase_add_test(tc, documented_otp26_orders);
    tcase_add_test(tc, membership_changes_move_only_affected_keys);
    tcase_add_test(tc, removal_moves_only_the_removed_nodes_keys);
    tcase_add_test(tc, short_md5_matches_openssl);
    tcase_add_test(tc, long_ids_hash_like_short_ones);
    suite_add_tcase(s, tc);
    return check_run(s);
}
