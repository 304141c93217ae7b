/* Unit tests: the tombs' store (hub/tomb_log.c): lookups, stamps, deletes
 * that keep probe chains whole, expiry in log order, and memory given back. */
#include "hub/registry.h"
#include "hub/tomb_log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

static uint32_t key_of(char *buf, size_t size, unsigned i)
{
    int n = snprintf(buf, size, "child_%u", i);
    ck_assert_int_gt(n, 0);
    return (uint32_t)n;
}

static int get(tomb_log *t, const char *key, uint32_t len, uint64_t *stamp)
{
    return tomb_log_get(t, key, len, registry_hash(key, len), stamp);
}

static int put(tomb_log *t, const char *key, uint32_t len, uint64_t stamp, uint64_t until)
{
    return tomb_log_put(t, key, len, registry_hash(key, len), stamp, until);
}

START_TEST(a_tomb_keeps_the_latest_stamp)
{
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    uint64_t stamp = 0;
    ck_assert_int_eq(get(t, "a", 1, &stamp), 0);
    ck_assert_int_eq(put(t, "a", 1, 7, 100), 0);
    ck_assert_int_eq(get(t, "a", 1, &stamp), 1);
    ck_assert_uint_eq(stamp, 7);
    ck_assert_int_eq(put(t, "a", 1, 5, 110), 0); /* an older stop: the stamp stays */
    ck_assert_int_eq(get(t, "a", 1, &stamp), 1);
    ck_assert_uint_eq(stamp, 7);
    ck_assert_int_eq(put(t, "a", 1, 9, 120), 0);
    ck_assert_int_eq(get(t, "a", 1, &stamp), 1);
    ck_assert_uint_eq(stamp, 9);
    ck_assert_uint_eq(tomb_log_count(t), 1);
    /* a prefix and a longer key are other ids */
    ck_assert_int_eq(get(t, "ab", 2, &stamp), 0);
    ck_assert_int_eq(get(t, "", 0, &stamp), 0);
    tomb_log_delete(t, "a", 1, registry_hash("a", 1));
    ck_assert_int_eq(get(t, "a", 1, &stamp), 0);
    ck_assert_uint_eq(tomb_log_count(t), 0);
    tomb_log_delete(t, "a", 1, registry_hash("a", 1)); /* twice: nothing */
    ck_assert_int_eq(tomb_log_put(t, "x", TOMB_LOG_MAX_KEY + 1u, 1, 1, 1), -1);
    tomb_log_free(t);
}
END_TEST

/* Random puts, deletes, batches announced and prunes against a plain
 * array, with hashes squeezed into 64 values so that probe chains are long
 * and wrap around the index: a delete that broke a chain would lose a
 * tomb. The batches start new generations of the index, past 16 merged. */
START_TEST(matches_a_plain_model_under_collisions)
{
    enum { IDS = 5000, OPS = 200000 };
    static uint64_t model_stamp[IDS], model_until[IDS];
    static int model_has[IDS];
    memset(model_has, 0, sizeof model_has);
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    srand(12345);
    uint64_t now = 1000, last_until = 0;
    char key[32];
    for (int op = 0; op < OPS; op++) {
        unsigned id = (unsigned)rand() % IDS;
        uint32_t len = key_of(key, sizeof key, id);
        uint32_t hash = (registry_hash(key, len) & 63) * 0x01000193u;
        int what = rand() % 100;
        if (what < 55) {
            uint64_t stamp = (uint64_t)(rand() % 1000);
            uint64_t until = now + 50 + (uint64_t)(rand() % 3);
            if (until < last_until)
                until = last_until; /* puts come in expiry order */
            last_until = until;
            ck_assert_int_eq(tomb_log_put(t, key, len, hash, stamp, until), 0);
            if (!model_has[id] || stamp > model_stamp[id])
                model_stamp[id] = stamp;
            model_has[id] = 1;
            model_until[id] = until;
        } else if (what < 58) { /* a batch coming: maybe a new generation */
            ck_assert_int_eq(tomb_log_reserve(t, (uint32_t)(rand() % 3000)), 0);
        } else if (what < 75) {
            tomb_log_delete(t, key, len, hash);
            model_has[id] = 0;
        } else if (what < 99) {
            uint64_t stamp = 0;
            int has = tomb_log_get(t, key, len, hash, &stamp);
            ck_assert_int_eq(has, model_has[id]);
            if (has)
                ck_assert_uint_eq(stamp, model_stamp[id]);
        } else {
            now += 10;
            uint32_t want = 0;
            for (unsigned i = 0; i < IDS; i++)
                if (model_has[i] && model_until[i] <= now) {
                    model_has[i] = 0;
                    want++;
                }
            ck_assert_uint_eq(tomb_log_prune(t, now), want);
        }
    }
    uint32_t count = 0;
    for (unsigned i = 0; i < IDS; i++) {
        uint32_t len = key_of(key, sizeof key, i);
        uint32_t hash = (registry_hash(key, len) & 63) * 0x01000193u;
        uint64_t stamp = 0;
        ck_assert_int_eq(tomb_log_get(t, key, len, hash, &stamp), model_has[i]);
        count += (uint32_t)model_has[i];
    }
    ck_assert_uint_eq(tomb_log_count(t), count);
    tomb_log_free(t);
}
END_TEST

START_TEST(expiry_follows_the_log_and_a_put_again_moves_to_its_end)
{
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    uint64_t stamp;
    ck_assert_int_eq(put(t, "a", 1, 1, 100), 0);
    ck_assert_int_eq(put(t, "b", 1, 2, 200), 0);
    ck_assert_int_eq(put(t, "a", 1, 3, 300), 0); /* stopped again: lives until 300 */
    ck_assert_uint_eq(tomb_log_prune(t, 99), 0);
    ck_assert_uint_eq(tomb_log_prune(t, 100), 0); /* a's first entry is dead already */
    ck_assert_int_eq(get(t, "a", 1, &stamp), 1);
    ck_assert_uint_eq(tomb_log_prune(t, 200), 1); /* b, expired at its time */
    ck_assert_int_eq(get(t, "b", 1, &stamp), 0);
    ck_assert_int_eq(get(t, "a", 1, &stamp), 1);
    ck_assert_uint_eq(stamp, 3);
    ck_assert_uint_eq(tomb_log_prune(t, 1000), 1);
    ck_assert_uint_eq(tomb_log_count(t), 0);
    ck_assert_int_eq(get(t, "a", 1, &stamp), 0);
    tomb_log_free(t);
}
END_TEST

START_TEST(an_earlier_expiry_waits_for_the_entry_before_it)
{
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(put(t, "a", 1, 1, 200), 0);
    ck_assert_int_eq(put(t, "b", 1, 1, 100), 0);
    ck_assert_uint_eq(tomb_log_prune(t, 150), 0);
    ck_assert_uint_eq(tomb_log_prune(t, 200), 2);
    tomb_log_free(t);
}
END_TEST

/* Ids with the hashes given, in a fresh log (one index of 1024 slots:
 * the home is the hash's low 10 bits). */
static void put_at(tomb_log *t, const char *key, uint32_t hash)
{
    ck_assert_int_eq(tomb_log_put(t, key, (uint32_t)strlen(key), hash, hash + 1, 10), 0);
}

static void expect(tomb_log *t, const char *key, uint32_t hash, int has)
{
    uint64_t stamp = 0;
    ck_assert_int_eq(tomb_log_get(t, key, (uint32_t)strlen(key), hash, &stamp), has);
    if (has)
        ck_assert_uint_eq(stamp, hash + 1);
}

/* A delete's backward shift across the end of the index: entries that
 * wrapped past it move back over the end, one whose home is past the hole
 * stays. */
START_TEST(deletes_across_the_end_of_the_index)
{
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    put_at(t, "A", 1022);             /* slot 1022 */
    put_at(t, "B", 1022);             /* 1023 */
    put_at(t, "C", 1023);             /* 0 */
    put_at(t, "D", 1);                /* 1 */
    put_at(t, "E", 0);                /* 2 */
    tomb_log_delete(t, "A", 1, 1022); /* B, C and E move back; D stays */
    expect(t, "A", 1022, 0);
    expect(t, "B", 1022, 1);
    expect(t, "C", 1023, 1);
    expect(t, "D", 1, 1);
    expect(t, "E", 0, 1);
    tomb_log_delete(t, "B", 1, 1022);
    expect(t, "C", 1023, 1);
    expect(t, "D", 1, 1);
    expect(t, "E", 0, 1);
    tomb_log_free(t);

    t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    put_at(t, "F", 1023); /* 1023 */
    put_at(t, "G", 0);    /* 0: wrapped home, stays when F goes */
    put_at(t, "H", 1023); /* 1: moves back to 1023 */
    tomb_log_delete(t, "F", 1, 1023);
    expect(t, "F", 1023, 0);
    expect(t, "G", 0, 1);
    expect(t, "H", 1023, 1);
    tomb_log_delete(t, "H", 1, 1023);
    expect(t, "G", 0, 1);
    expect(t, "H", 1023, 0);
    ck_assert_uint_eq(tomb_log_count(t), 1);
    tomb_log_free(t);
}
END_TEST

/* Stops of child_0 .. child_<n-1>: stamp i + 1, expiring at 1000 + i / 1000
 * (a thousand a ms); each index slot asked for first when prefetch. */
static void put_ids(tomb_log *t, unsigned n, int prefetch)
{
    char key[32];
    for (unsigned i = 0; i < n; i++) {
        uint32_t len = key_of(key, sizeof key, i);
        if (prefetch)
            tomb_log_prefetch(t, registry_hash(key, len));
        ck_assert_int_eq(put(t, key, len, i + 1, 1000 + i / 1000), 0);
    }
}

START_TEST(a_hundred_thousand_stops_and_their_memory)
{
    enum { N = 100000 };
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    size_t empty = tomb_log_bytes(t);
    char key[32];
    put_ids(t, N, 0);
    ck_assert_uint_eq(tomb_log_count(t), N);
    size_t full = tomb_log_bytes(t);
    /* an entry: 24 bytes and the key (here 11 bytes), rounded to 8; and
     * the index's generations (1024, 2048, ... slots as single puts fill
     * them), 2^18 slots of 16 bytes in all at most (42 bytes a tomb) */
    ck_assert_uint_le(full - empty, (size_t)N * 40 + ((size_t)16 << 18) + (64u << 10));
    uint64_t stamp;
    for (unsigned i = 0; i < N; i += 997) {
        uint32_t len = key_of(key, sizeof key, i);
        ck_assert_int_eq(get(t, key, len, &stamp), 1);
        ck_assert_uint_eq(stamp, i + 1);
    }
    /* half expire: the chunks before them go */
    ck_assert_uint_eq(tomb_log_prune(t, 1000 + 49), 50000);
    ck_assert_uint_lt(tomb_log_bytes(t), full);
    uint32_t len = key_of(key, sizeof key, 49999);
    ck_assert_int_eq(get(t, key, len, &stamp), 0);
    len = key_of(key, sizeof key, 50000);
    ck_assert_int_eq(get(t, key, len, &stamp), 1);
    /* all: back to one chunk, the smallest index */
    ck_assert_uint_eq(tomb_log_prune(t, 5000), 50000);
    ck_assert_uint_eq(tomb_log_count(t), 0);
    ck_assert_uint_le(tomb_log_bytes(t), empty + (64u << 10) + 64);
    /* and it serves again */
    ck_assert_int_eq(put(t, key, len, 5, 6000), 0);
    ck_assert_int_eq(get(t, key, len, &stamp), 1);
    tomb_log_free(t);
}
END_TEST

START_TEST(a_batch_reserves_its_index_once)
{
    enum { N = 100000 };
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tomb_log_reserve(t, N), 0);
    size_t reserved = tomb_log_bytes(t);
    put_ids(t, N, 1);
    /* only the log grew: 40 bytes an entry, in 64 KiB chunks */
    ck_assert_uint_le(tomb_log_bytes(t) - reserved, (size_t)N * 40 + (64u << 10));
    ck_assert_int_eq(tomb_log_reserve(t, 0), 0);
    ck_assert_int_eq(tomb_log_reserve(t, UINT32_MAX), -1); /* more than an index can be */
    uint64_t stamp;
    ck_assert_int_eq(get(t, "child_7", 7, &stamp), 1);
    tomb_log_free(t);
}
END_TEST

/* Batches each too big for the index before: a generation each, merged
 * into one past 16; tombs of old generations found, put again, deleted. */
START_TEST(generations_of_the_index_and_their_merge)
{
    enum { BATCHES = 40, EACH = 800 };
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    char key[32];
    uint64_t stamp;
    for (unsigned b = 0; b < BATCHES; b++) {
        ck_assert_int_eq(tomb_log_reserve(t, EACH), 0);
        for (unsigned i = b * EACH; i < (b + 1) * EACH; i++) {
            uint32_t len = key_of(key, sizeof key, i);
            ck_assert_int_eq(put(t, key, len, i, 100 + b), 0);
        }
        /* the first batch's tombs, wherever they are now */
        uint32_t len = key_of(key, sizeof key, 3);
        ck_assert_int_eq(get(t, key, len, &stamp), 1);
        ck_assert_uint_eq(stamp, 3);
    }
    ck_assert_uint_eq(tomb_log_count(t), BATCHES * EACH);
    for (unsigned i = 0; i < BATCHES * EACH; i += 7) {
        uint32_t len = key_of(key, sizeof key, i);
        ck_assert_int_eq(get(t, key, len, &stamp), 1);
        ck_assert_uint_eq(stamp, i);
    }
    /* stopped again: a newer stamp, a later expiry; some cleared by starts */
    for (unsigned i = 0; i < EACH; i++) {
        uint32_t len = key_of(key, sizeof key, i);
        ck_assert_int_eq(put(t, key, len, 100000 + i, 1000), 0);
        len = key_of(key, sizeof key, EACH + i);
        tomb_log_delete(t, key, len, registry_hash(key, len));
    }
    ck_assert_uint_eq(tomb_log_count(t), (BATCHES - 1) * EACH);
    ck_assert_uint_eq(tomb_log_prune(t, 100 + BATCHES), (BATCHES - 2) * EACH);
    ck_assert_uint_eq(tomb_log_count(t), EACH);
    uint32_t len = key_of(key, sizeof key, 5);
    ck_assert_int_eq(get(t, key, len, &stamp), 1);
    ck_assert_uint_eq(stamp, 100005);
    ck_assert_uint_eq(tomb_log_prune(t, 1000), EACH);
    ck_assert_uint_le(tomb_log_bytes(t), (size_t)(64u << 10) + (256u << 10) + 16 * 1024 + 256);
    tomb_log_free(t);
}
END_TEST

START_TEST(a_key_longer_than_a_chunk)
{
    size_t n = (size_t)200 << 10;
    char *key = malloc(n);
    ck_assert_ptr_nonnull(key);
    memset(key, 'k', n);
    tomb_log *t = tomb_log_new();
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(put(t, "a", 1, 1, 10), 0);
    ck_assert_int_eq(put(t, key, (uint32_t)n, 2, 10), 0);
    ck_assert_int_eq(put(t, "b", 1, 3, 10), 0);
    uint64_t stamp;
    ck_assert_int_eq(get(t, key, (uint32_t)n, &stamp), 1);
    ck_assert_uint_eq(stamp, 2);
    ck_assert_int_eq(get(t, "b", 1, &stamp), 1);
    ck_assert_uint_eq(tomb_log_prune(t, 10), 3);
    tomb_log_free(t);
    free(key);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tomb_log");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_tomb_keeps_the_latest_stamp);
    tcase_add_test(tc, matches_a_plain_model_under_collisions);
    tcase_add_test(tc, expiry_follows_the_log_and_a_put_again_moves_to_its_end);
    tcase_add_test(tc, an_earlier_expiry_waits_for_the_entry_before_it);
    tcase_add_test(tc, deletes_across_the_end_of_the_index);
    tcase_add_test(tc, a_hundred_thousand_stops_and_their_memory);
    tcase_add_test(tc, a_batch_reserves_its_index_once);
    tcase_add_test(tc, generations_of_the_index_and_their_merge);
    tcase_add_test(tc, a_key_longer_than_a_chunk);
    suite_add_tcase(s, tc);
    return check_run(s);
}
