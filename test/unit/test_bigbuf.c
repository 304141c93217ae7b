/* Unit tests: big buffers (hub/runtime/bigbuf.c) and the signals made from
 * a frame's block without a copy (hub/runtime/signal.c). */
#include "hub/runtime/bigbuf.h"
#include "hub/runtime/process.h"

#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void fill(char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(seed + i * 7u);
}

static int same(const char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != (char)(seed + i * 7u))
            return 0;
    return 1;
}

/* Nonzero while the page holding p is mapped. */
static int mapped(const void *p)
{
    unsigned char vec;
    uintptr_t page = (uintptr_t)p & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    return mincore((void *)page, 1, &vec) == 0 || errno != ENOMEM;
}

START_TEST(small_is_malloc_and_keeps_content)
{
    char *p = bigbuf_alloc(1000);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    ck_assert(!bigbuf_is_mapped(p));
    ck_assert_uint_eq(bigbuf_size(p), 1000);
    fill(p, 1000, 3);
    p = bigbuf_resize(p, 50000);
    ck_assert_ptr_nonnull(p);
    ck_assert(!bigbuf_is_mapped(p));
    ck_assert(same(p, 1000, 3));
    bigbuf_free(p);
    bigbuf_free(NULL);
    ck_assert_ptr_null(bigbuf_alloc(0));
}
END_TEST

START_TEST(big_is_mapped_and_returned_on_free)
{
    size_t len = (size_t)5 << 20;
    char *p = bigbuf_alloc(len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    ck_assert(bigbuf_is_mapped(p));
    ck_assert_uint_ge(bigbuf_size(p), len);
    fill(p, len, 9);
    ck_assert(same(p, len, 9));
    char *last = p + len - 1;
    ck_assert(mapped(last));
    bigbuf_free(p);
    /* kept a moment for the next big buffer, then back to the kernel (not
     * kept as free heap) */
    ck_assert(mapped(last));
    ck_assert_uint_ge(bigbuf_kept_bytes(), len);
    bigbuf_trim(); /* freed just now: still kept */
    ck_assert(mapped(last));
    bigbuf_release_kept();
    ck_assert(!mapped(last));
    ck_assert_uint_eq(bigbuf_kept_bytes(), 0);
}
END_TEST

/* A freed mapping serves the next big buffer that fits in it, and a
 * growing one moves into it with its bytes. */
START_TEST(freed_mappings_are_reused)
{
    bigbuf_release_kept();
    size_t len = (size_t)6 << 20;
    char *p = bigbuf_alloc(len);
    ck_assert_ptr_nonnull(p);
    fill(p, len, 4);
    bigbuf_free(p);
    char *q = bigbuf_alloc((size_t)2 << 20); /* the kept one, whole */
    ck_assert_ptr_eq(q, p);
    ck_assert_uint_eq(bigbuf_kept_bytes(), 0);
    fill(q, (size_t)2 << 20, 5);
    q = bigbuf_resize(q, (size_t)5 << 20); /* within it: stays */
    ck_assert_ptr_eq(q, p);
    ck_assert(same(q, (size_t)2 << 20, 5));

    char *r = bigbuf_alloc((size_t)20 << 20);
    ck_assert_ptr_nonnull(r);
    bigbuf_free(r); /* kept: the next growth moves into it */
    fill(q, (size_t)5 << 20, 6);
    q = bigbuf_resize(q, (size_t)16 << 20);
    ck_assert_ptr_eq(q, r);
    ck_assert(same(q, (size_t)5 << 20, 6));
    memset(q + ((size_t)5 << 20), 0x5a, (size_t)11 << 20);
    ck_assert_uint_ge(bigbuf_kept_bytes(), (size_t)6 << 20); /* the 6 MiB one, given up */
    bigbuf_free(q);
    bigbuf_release_kept();

    /* a small buffer does not take a mapping more than 4 times its size */
    char *wide = bigbuf_alloc((size_t)20 << 20);
    ck_assert_ptr_nonnull(wide);
    bigbuf_free(wide);
    char *narrow = bigbuf_alloc((size_t)2 << 20);
    ck_assert_ptr_nonnull(narrow);
    ck_assert_ptr_ne(narrow, wide);
    ck_assert_uint_ge(bigbuf_kept_bytes(), (size_t)20 << 20);
    bigbuf_free(narrow);
    bigbuf_release_kept();
}
END_TEST

static size_t address_space_now(void);

/* Whether this process's address-space limit (ulimit -v) leaves need bytes
 * above what it maps now. */
static int address_space_room(size_t need)
{
    struct rlimit rl;
    size_t now = address_space_now();
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1;
    return now && (size_t)rl.rlim_cur > now && (size_t)rl.rlim_cur - now >= need;
}

/* At most BIGBUF_KEEP_BYTES are kept: the oldest go back first, and a
 * mapping bigger than that is never kept. */
START_TEST(kept_mappings_are_bounded)
{
    bigbuf_release_kept(); /* first: what earlier tests kept counts against the limit */
    /* six mappings of a quarter of the keep limit at once, then one above
     * the limit beside the four kept */
    if (!address_space_room(3 * (size_t)BIGBUF_KEEP_BYTES)) {
        printf("skipped: the address-space limit (ulimit -v) leaves less than %zu MiB\n",
               3 * (size_t)BIGBUF_KEEP_BYTES >> 20);
        return;
    }
    size_t len = BIGBUF_KEEP_BYTES / 4;
    char *b[6];
    for (int i = 0; i < 6; i++) {
        b[i] = bigbuf_alloc(len - 4096);
        ck_assert_ptr_nonnull(b[i]);
        b[i][0] = 1;
    }
    for (int i = 0; i < 6; i++)
        bigbuf_free(b[i]);
    ck_assert_uint_le(bigbuf_kept_bytes(), BIGBUF_KEEP_BYTES);
    ck_assert(!mapped(b[0]) && !mapped(b[1])); /* the oldest, given back */
    ck_assert(mapped(b[5]));
    char *huge = bigbuf_alloc(BIGBUF_KEEP_BYTES + 1);
    ck_assert_ptr_nonnull(huge);
    huge[0] = 1;
    bigbuf_free(huge);
    ck_assert(!mapped(huge));
    bigbuf_release_kept();
    ck_assert_uint_eq(bigbuf_kept_bytes(), 0);
}
END_TEST

START_TEST(growing_crosses_into_a_mapping_and_back)
{
    size_t small = 100000, big = (size_t)3 << 20, bigger = (size_t)12 << 20;
    char *p = bigbuf_alloc(small);
    ck_assert_ptr_nonnull(p);
    fill(p, small, 1);
    p = bigbuf_resize(p, big); /* malloc -> mapping: copied once */
    ck_assert_ptr_nonnull(p);
    ck_assert(bigbuf_is_mapped(p));
    ck_assert(same(p, small, 1));
    fill(p, big, 2);
    p = bigbuf_resize(p, bigger); /* mapping -> mapping: moved by the kernel */
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(bigbuf_size(p), bigger);
    ck_assert(same(p, big, 2));
    memset(p + big, 0x5a, bigger - big); /* the new part is writable */
    p = bigbuf_resize(p, 4000);          /* mapping -> malloc */
    ck_assert_ptr_nonnull(p);
    ck_assert(!bigbuf_is_mapped(p));
    ck_assert(same(p, 4000, 2));
    bigbuf_free(p);
}
END_TEST

/* A frame's block becomes the signal of the message inside it. */
static void block_signal(size_t len)
{
    char *b = signal_block_alloc(len);
    ck_assert_ptr_nonnull(b);
    memset(b, 0, len);
    const size_t at = 37; /* where the message starts: after a control tuple */
    b[at] = (char)131;
    b[at + 1] = 'j'; /* NIL_EXT: the message [] */
    proc_signal *s = signal_from_block(b, SIG_MESSAGE, (ph_pid){1, 2, 3, 4}, b + at, 2);
    ck_assert_ptr_eq(s->payload, b + at);
    ck_assert_uint_eq(s->len, 2);
    ck_assert_int_eq(s->in_block, 1);
    ck_assert_int_eq(s->kind, SIG_MESSAGE);
    ck_assert_uint_eq(s->from.num, 2);
    ck_assert_int_eq((unsigned char)s->payload[0], 131);
    signal_free(s);
}

/* The address space this process has now, from /proc (0 if unreadable). */
static size_t address_space_now(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* Caps this process's address space at its size now plus extra: 0, -1
 * on an error, 1 when the host's hard limit is below that already. */
static int cap_address_space(size_t extra)
{
    size_t now = address_space_now();
    struct rlimit rl;
    if (!now || getrlimit(RLIMIT_AS, &rl) != 0)
        return -1;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)(now + extra))
        return 1;
    rl.rlim_cur = (rlim_t)(now + extra);
    return setrlimit(RLIMIT_AS, &rl);
}

#define CHILD_SKIPPED 77

/* In a child capped at 48 MiB more address space: a mapping that cannot be
 * made is NULL; a failed resize leaves the buffer as it was (a mapping
 * that cannot grow, a malloc'd buffer that cannot become a mapping); a kept
 * mapping still serves when no new one can be made. 0 when all held. */
static int out_of_address_space_child(void)
{
    const size_t mib = (size_t)1 << 20;
    int capped = cap_address_space(48 * mib);
    if (capped == 1)
        return CHILD_SKIPPED;
    if (capped != 0)
        return 10;
    char *a = bigbuf_alloc(16 * mib);
    if (!a)
        return 11;
    fill(a, 16 * mib, 3);
    if (bigbuf_alloc(256 * mib) != NULL)
        return 12;
    if (bigbuf_resize(a, 256 * mib) != NULL || bigbuf_size(a) != 16 * mib || !same(a, 16 * mib, 3))
        return 13;
    char *small = bigbuf_alloc(64 * 1024);
    if (!small)
        return 14;
    fill(small, 64 * 1024, 5);
    if (bigbuf_resize(small, 256 * mib) != NULL || !same(small, 64 * 1024, 5))
        return 15;
    bigbuf_free(small);
    bigbuf_free(a); /* kept */
    if (bigbuf_kept_bytes() < 16 * mib)
        return 16;
    if (cap_address_space(0) != 0) /* no new mapping at all now */
        return 17;
    char *b = bigbuf_alloc(16 * mib); /* the kept one */
    if (!b)
        return 18;
    if (bigbuf_alloc(16 * mib) != NULL) /* nothing kept, no room */
        return 19;
    bigbuf_free(b);
    bigbuf_release_kept();
    return 0;
}

START_TEST(out_of_address_space_is_null_and_leaves_buffers_whole)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    printf("skipped: an address-space limit and a sanitizer's shadow memory do not mix\n");
    return;
#endif
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        printf("skipped under valgrind: it needs address space of its own\n");
        return;
    }
    bigbuf_release_kept();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(out_of_address_space_child());
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == CHILD_SKIPPED) {
        printf("skipped: the host's hard RLIMIT_AS leaves no room above this process\n");
        return;
    }
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(signal_from_small_and_big_blocks)
{
    block_signal(70000);
    block_signal((size_t)3 << 20);
}
END_TEST

START_TEST(signal_block_resize_keeps_bytes)
{
    char *b = signal_block_alloc(80000);
    ck_assert_ptr_nonnull(b);
    fill(b, 80000, 5);
    b = signal_block_resize(b, (size_t)9 << 20);
    ck_assert_ptr_nonnull(b);
    ck_assert(same(b, 80000, 5));
    signal_block_free(b);
    signal_block_free(NULL);
}
END_TEST

START_TEST(copied_signal_points_at_its_own_bytes)
{
    const char msg[] = {(char)131, 'j'};
    proc_signal *s = signal_new(SIG_MESSAGE, (ph_pid){1, 2, 3, 4}, msg, sizeof msg);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_eq(s->payload, s->inline_payload);
    ck_assert_int_eq(s->in_block, 0);
    ck_assert_mem_eq(s->payload, msg, sizeof msg);
    signal_free(s);
}
END_TEST

/* Small signals are recycled by the thread that frees them; big ones are
 * malloc's; a thread's recycled blocks go when it exits. */
static void *free_elsewhere(void *arg)
{
    signal_free(arg); /* kept by this thread, released at its exit */
    proc_signal *again = signal_new(SIG_MESSAGE, (ph_pid){1, 2, 3, 4}, "\x83j", 2);
    int same_block = again == arg;
    signal_free(again);
    return same_block ? arg : NULL;
}

START_TEST(small_signals_are_recycled_per_thread)
{
    signal_cache_release(); /* whatever tests before left in this thread's cache */
    char big[1000];
    memset(big, 'x', sizeof big);
    big[0] = (char)131;
    proc_signal *a = signal_new(SIG_MESSAGE, (ph_pid){1, 2, 3, 4}, "\x83j", 2);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->small, 1);
    signal_free(a);
    proc_signal *b = signal_new(SIG_EXIT, (ph_pid){5, 6, 7, 8}, "\x83j", 2);
    ck_assert_ptr_eq(b, a); /* the block this thread freed last */
    ck_assert_int_eq(b->kind, SIG_EXIT);
    ck_assert_int_eq(b->from.num, 6);
    ck_assert_ptr_eq(b->payload, b->inline_payload);
    proc_signal *c = signal_new(SIG_MESSAGE, (ph_pid){1, 2, 3, 4}, big, sizeof big);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->small, 0);
    ck_assert_mem_eq(c->payload, big, sizeof big);
    signal_free(c);
    /* made here, freed on another thread: that thread reuses it */
    pthread_t t;
    void *res = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, free_elsewhere, b), 0);
    ck_assert_int_eq(pthread_join(t, &res), 0);
    ck_assert_ptr_eq(res, b);
    signal_cache_release();
}
END_TEST

int main(void)
{

    Suite *s = suite_create("bigbuf");
    TCase *tc = tcase_create("core");
    /* megabytes touched byte by byte: seconds under TSan, ASan or valgrind
     * on a loaded host, past Check's default 4 s */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, small_is_malloc_and_keeps_content);
    tcase_add_test(tc, big_is_mapped_and_returned_on_free);
    tcase_add_test(tc, freed_mappings_are_reused);
    tcase_add_test(tc, kept_mappings_are_bounded);
    tcase_add_test(tc, growing_crosses_into_a_mapping_and_back);
    tcase_add_test(tc, out_of_address_space_is_null_and_leaves_buffers_whole);
    tcase_add_test(tc, signal_from_small_and_big_blocks);
    tcase_add_test(tc, signal_block_resize_keeps_bytes);
    tcase_add_test(tc, copied_signal_points_at_its_own_bytes);
    tcase_add_test(tc, small_signals_are_recycled_per_thread);
    suite_add_tcase(s, tc);
    int rc = check_run(s);
    bigbuf_release_kept();
    return rc;
}
