/*
 * Unit tests: the actor runtime on one node, without the network —
 * mailbox order, scheduling, links, monitors, exit signals, trap_exit,
 * kill, registered names, timers and spawn failures.
 *
 * The `recorder` test module writes every event into a shared log that
 * the tests wait on.
 */
#include "hub/runtime/atoms.h"
#include "hub/runtime/names.h"
#include "hub/runtime/process.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/thread_buf.h"

#include <check.h>

#include "check_run.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- the event log ------------------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static char event_log[1 << 16];
static size_t log_len;

static void record(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&log_lock);
    size_t n = strlen(line);
    if (log_len + n + 2 < sizeof event_log) {
        memcpy(event_log + log_len, line, n);
        log_len += n;
        event_log[log_len++] = '\n';
        event_log[log_len] = '\0';
    }
    pthread_cond_broadcast(&log_cond);
    pthread_mutex_unlock(&log_lock);
}

/* Waits until the log contains text; 1 if it did within ms. */
static int wait_for(const char *text, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&log_lock);
    int found;
    while (!(found = strstr(event_log, text) != NULL))
        if (pthread_cond_timedwait(&log_cond, &log_lock, &deadline) != 0)
            break;
    found = strstr(event_log, text) != NULL;
    if (!found)
        fprintf(stderr, "waited for \"%s\"; the log has:\n%s", text, event_log);
    pthread_mutex_unlock(&log_lock);
    return found;
}

static int log_has(const char *text)
{
    pthread_mutex_lock(&log_lock);
    int found = strstr(event_log, text) != NULL;
    pthread_mutex_unlock(&log_lock);
    return found;
}

static void settle(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* --- the recorder module ------------------------------------------------ */

typedef struct recorder {
    long id;
    long next_seq;
    int order_ok;
    ph_ref last_ref;
} recorder;

static ph_result rec_init(ph_ctx *ctx, ph_term args, void **state)
{
    long id, trap;
    if (ph_match(args, "[~i, ~i]", &id, &trap) != 1) {
        ph_stop_reasonf(ctx, "{bad_args, ~t}", args);
        return PH_STOP;
    }
    recorder *r = calloc(1, sizeof *r);
    r->id = id;
    r->order_ok = 1;
    ph_trap_exit(ctx, (int)trap);
    *state = r;
    return PH_OK;
}

static ph_result rec_info(ph_ctx *ctx, void *state, ph_term msg)
{
    recorder *r = state;
    ph_term a, b;
    long n;
    char text[256];
    ph_pid pid;
    if (ph_match(msg, "{seq, ~i}", &n) == 1) {
        if (n != r->next_seq)
            r->order_ok = 0;
        r->next_seq = n + 1;
        return PH_OK;
    }
    if (ph_match(msg, "report_seq") == 1) {
        record("%ld: seq %ld order %s", r->id, r->next_seq, r->order_ok ? "ok" : "broken");
        return PH_OK;
    }
    if (ph_match(msg, "{link, ~t}", &a) == 1 && ph_decode_pid(a, &pid) == 0) {
        ph_link(ctx, pid);
        return PH_OK;
    }
    if (ph_match(msg, "{unlink, ~t}", &a) == 1 && ph_decode_pid(a, &pid) == 0) {
        ph_unlink(ctx, pid);
        record("%ld: unlinked", r->id);
        return PH_OK;
    }
    if (ph_match(msg, "{monitor, ~t}", &a) == 1 && ph_decode_pid(a, &pid) == 0) {
        ph_monitor(ctx, pid, &r->last_ref);
        return PH_OK;
    }
    if (ph_match(msg, "demonitor") == 1) {
        record("%ld: demonitor %d", r->id, ph_demonitor(ctx, &r->last_ref));
        return PH_OK;
    }
    if (ph_match(msg, "{exit, ~t, ~t}", &a, &b) == 1 && ph_decode_pid(a, &pid) == 0) {
        ph_exit(ctx, pid, b);
        return PH_OK;
    }
    if (ph_match(msg, "{stop, ~t}", &a) == 1) {
        ph_set_stop_reason(ctx, a);
        return PH_STOP;
    }
    if (ph_match(msg, "{after, ~i, ~t}", &n, &a) == 1) {
        ph_send_after(ctx, (unsigned)n, a, &r->last_ref);
        return PH_OK;
    }
    if (ph_match(msg, "cancel") == 1) {
        record("%ld: cancel %d", r->id, ph_cancel_timer(&r->last_ref));
        return PH_OK;
    }
    if (ph_match(msg, "{'DOWN', _, process, _, ~t}", &a) == 1) {
        record("%ld: DOWN %s", r->id, ph_term_format(a, text, sizeof text));
        return PH_OK;
    }
    if (ph_match(msg, "{'EXIT', _, ~t}", &a) == 1) {
        record("%ld: EXIT %s", r->id, ph_term_format(a, text, sizeof text));
        return PH_OK;
    }
    record("%ld: got %s", r->id, ph_term_format(msg, text, sizeof text));
    return PH_OK;
}

static void rec_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    (void)ctx;
    char text[256];
    recorder *r = state;
    record("%ld: terminate %s", r->id, ph_term_format(reason, text, sizeof text));
    free(r);
}

static const ph_worker_module recorder_module = {
    .name = "recorder",
    .init = rec_init,
    .handle_info = rec_info,
    .terminate = rec_terminate,
};

/* --- helpers ------------------------------------------------------------ */

static void setup(void)
{
    runtime_config rc = {"unit@127.0.0.1", 12345, 2, 4096, 0, 0};
    ck_assert_int_eq(runtime_init(&rc), 0);
    if (!ph_find_module("recorder"))
        ph_register_module(&recorder_module);
    pthread_mutex_lock(&log_lock);
    log_len = 0;
    event_log[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

static void teardown(void)
{
    runtime_shutdown();
    ck_assert_uint_eq(process_count(), 0);
    names_shutdown();
    process_table_shutdown();
    atoms_shutdown();
    thread_bufs_release();
    signal_cache_release();
}

static ph_pid spawn_named(long id, int trap, const char *name)
{
    ph_buf args, err;
    ph_buf_init(&args);
    ph_buf_init(&err);
    ck_assert_int_eq(ph_build(&args, "[~i, ~i]", id, (long)trap), 0);
    ph_spawn_opts opts = {.name = name};
    ph_pid pid;
    int rc = ph_spawn(NULL, "recorder", ph_buf_term(&args), &opts, &pid, &err);
    ck_assert_int_eq(rc, 0);
    ph_buf_free(&args);
    ph_buf_free(&err);
    return pid;
}

static ph_pid spawn_rec(long id, int trap)
{
    return spawn_named(id, trap, NULL);
}

static void send_fmt(ph_pid to, const char *fmt, ...)
{
    ph_buf b;
    ph_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_eq(ph_vbuild(&b, fmt, ap), 0);
    va_end(ap);
    ph_send_from_outside(to, ph_buf_term(&b));
    ph_buf_free(&b);
}

/* {Tag, Pid} built with the pid encoder */
static void send_with_pid(ph_pid to, const char *tag, ph_pid pid)
{
    ph_buf b;
    ph_buf_init(&b);
    ei_x_encode_tuple_header(&b, 2);
    ei_x_encode_atom(&b, tag);
    ph_encode_pid(&b, pid);
    ph_send_from_outside(to, ph_buf_term(&b));
    ph_buf_free(&b);
}

static int is_alive(ph_pid pid)
{
    process *p = process_get(pid);
    if (p)
        process_put(p);
    return p != NULL;
}

/* The table entry goes just after terminate ran: poll briefly. */
static int becomes_dead(ph_pid pid)
{
    for (int i = 0; i < 200 && is_alive(pid); i++) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return !is_alive(pid);
}

/* --- tests -------------------------------------------------------------- */

START_TEST(messages_keep_order)
{
    ph_pid a = spawn_rec(1, 0);
    for (long i = 0; i < 5000; i++)
        send_fmt(a, "{seq, ~i}", i);
    send_fmt(a, "report_seq");
    ck_assert(wait_for("1: seq 5000 order ok", 5000));
}
END_TEST

typedef struct sender_arg {
    ph_pid to;
    long base;
} sender_arg;

static void *sender(void *arg)
{
    sender_arg *s = arg;
    for (long i = 0; i < 2000; i++)
        send_fmt(s->to, "{seq, ~i}", i);
    return NULL;
}

START_TEST(concurrent_senders_each_keep_order)
{
    /* Two workers, each fed by its own thread while the schedulers run. */
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    pthread_t t1, t2;
    sender_arg s1 = {a, 0}, s2 = {b, 0};
    pthread_create(&t1, NULL, sender, &s1);
    pthread_create(&t2, NULL, sender, &s2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    send_fmt(a, "report_seq");
    send_fmt(b, "report_seq");
    ck_assert(wait_for("1: seq 2000 order ok", 5000));
    ck_assert(wait_for("2: seq 2000 order ok", 5000));
}
END_TEST

START_TEST(link_propagates_abnormal_exit)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_with_pid(a, "link", b);
    settle();
    send_fmt(b, "{stop, {boom,1}}");
    ck_assert(wait_for("2: terminate {boom,1}", 2000));
    ck_assert(wait_for("1: terminate {boom,1}", 2000));
    ck_assert(becomes_dead(a));
}
END_TEST

START_TEST(link_ignores_normal_exit)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_with_pid(a, "link", b);
    settle();
    send_fmt(b, "{stop, normal}");
    ck_assert(wait_for("2: terminate normal", 2000));
    settle();
    ck_assert(is_alive(a));
}
END_TEST

START_TEST(trap_exit_turns_exit_into_message)
{
    ph_pid a = spawn_rec(1, 1), b = spawn_rec(2, 0);
    send_with_pid(a, "link", b);
    settle();
    send_fmt(b, "{stop, {boom,2}}");
    ck_assert(wait_for("1: EXIT {boom,2}", 2000));
    ck_assert(is_alive(a));
}
END_TEST

START_TEST(unlink_stops_propagation)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_with_pid(a, "link", b);
    settle();
    send_with_pid(a, "unlink", b);
    ck_assert(wait_for("1: unlinked", 2000));
    settle();
    send_fmt(b, "{stop, crash}");
    ck_assert(wait_for("2: terminate crash", 2000));
    settle();
    ck_assert(is_alive(a));
}
END_TEST

START_TEST(link_to_dead_pid_gives_noproc)
{
    ph_pid a = spawn_rec(1, 1), b = spawn_rec(2, 0);
    send_fmt(b, "{stop, normal}");
    ck_assert(wait_for("2: terminate normal", 2000));
    send_with_pid(a, "link", b);
    ck_assert(wait_for("1: EXIT noproc", 2000));
}
END_TEST

START_TEST(monitor_reports_reason)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_with_pid(a, "monitor", b);
    settle();
    send_fmt(b, "{stop, {shutdown,why}}");
    ck_assert(wait_for("1: DOWN {shutdown,why}", 2000));
    ck_assert(is_alive(a)); /* a monitor never kills the watcher */
}
END_TEST

START_TEST(monitor_dead_pid_gives_noproc)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_fmt(b, "{stop, normal}");
    ck_assert(wait_for("2: terminate normal", 2000));
    send_with_pid(a, "monitor", b);
    ck_assert(wait_for("1: DOWN noproc", 2000));
}
END_TEST

START_TEST(demonitor_prevents_down)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 0);
    send_with_pid(a, "monitor", b);
    send_fmt(a, "demonitor");
    ck_assert(wait_for("1: demonitor 1", 2000));
    send_fmt(b, "{stop, bye}");
    ck_assert(wait_for("2: terminate bye", 2000));
    settle();
    ck_assert(!log_has("1: DOWN"));
}
END_TEST

START_TEST(kill_is_untrappable)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 1);
    ph_buf b1;
    ph_buf_init(&b1);
    ei_x_encode_tuple_header(&b1, 3);
    ei_x_encode_atom(&b1, "exit");
    ph_encode_pid(&b1, b);
    ei_x_encode_atom(&b1, "kill");
    ph_send_from_outside(a, ph_buf_term(&b1));
    ph_buf_free(&b1);
    ck_assert(wait_for("2: terminate killed", 2000));
    ck_assert(becomes_dead(b));
}
END_TEST

START_TEST(exit_signal_trapped_when_not_kill)
{
    ph_pid a = spawn_rec(1, 0), b = spawn_rec(2, 1);
    ph_buf b1;
    ph_buf_init(&b1);
    ei_x_encode_tuple_header(&b1, 3);
    ei_x_encode_atom(&b1, "exit");
    ph_encode_pid(&b1, b);
    ei_x_encode_atom(&b1, "please");
    ph_send_from_outside(a, ph_buf_term(&b1));
    ph_buf_free(&b1);
    ck_assert(wait_for("2: EXIT please", 2000));
    ck_assert(is_alive(b));
}
END_TEST

START_TEST(registered_names)
{
    ph_pid a = spawn_named(1, 0, "alpha"), found;
    ck_assert_int_eq(ph_whereis("alpha", &found), 0);
    ck_assert(ph_pid_equal(a, found));
    ph_buf args, err;
    ph_buf_init(&args);
    ph_buf_init(&err);
    ph_build(&args, "[2, 0]");
    ph_spawn_opts opts = {.name = "alpha"};
    ph_pid pid;
    ck_assert_int_eq(ph_spawn(NULL, "recorder", ph_buf_term(&args), &opts, &pid, &err), -1);
    ph_term holder;
    ck_assert_int_eq(ph_match(ph_buf_term(&err), "{already_started, ~t}", &holder), 1);
    ph_pid holder_pid;
    ck_assert_int_eq(ph_decode_pid(holder, &holder_pid), 0);
    ck_assert(ph_pid_equal(holder_pid, a));
    ck_assert_int_eq(ph_send_named(NULL, "alpha", NULL, ph_buf_term(&args)), 0);
    ck_assert(wait_for("1: got [2,0]", 2000));
    send_fmt(a, "{stop, normal}");
    ck_assert(wait_for("1: terminate normal", 2000));
    settle();
    ck_assert_int_eq(ph_whereis("alpha", &found), -1);
    ph_buf_free(&args);
    ph_buf_free(&err);
}
END_TEST

START_TEST(spawn_failures_give_reasons)
{
    ph_buf args, err;
    ph_buf_init(&args);
    ph_buf_init(&err);
    ph_build(&args, "not_a_list");
    ph_pid pid;
    ck_assert_int_eq(ph_spawn(NULL, "recorder", ph_buf_term(&args), NULL, &pid, &err), -1);
    ck_assert_int_eq(ph_match(ph_buf_term(&err), "{bad_args, not_a_list}"), 1);
    ph_buf_reset(&err);
    ck_assert_int_eq(ph_spawn(NULL, "no_such_module", ph_buf_term(&args), NULL, &pid, &err), -1);
    ck_assert_int_eq(ph_match(ph_buf_term(&err), "{unknown_module, no_such_module}"), 1);
    ck_assert_uint_eq(process_count(), 0);
    ph_buf_free(&args);
    ph_buf_free(&err);
}
END_TEST

START_TEST(send_after_and_cancel)
{
    ph_pid a = spawn_rec(1, 0);
    send_fmt(a, "{after, 50, fired}");
    ck_assert(wait_for("1: got fired", 2000));
    send_fmt(a, "{after, 300, never}");
    send_fmt(a, "cancel");
    ck_assert(wait_for("1: cancel 1", 2000));
    struct timespec ts = {0, 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    ck_assert(!log_has("never"));
}
END_TEST

static int log_count(const char *text)
{
    int n = 0;
    pthread_mutex_lock(&log_lock);
    for (const char *p = event_log; (p = strstr(p, text)) != NULL; p++)
        n++;
    pthread_mutex_unlock(&log_lock);
    return n;
}

START_TEST(many_links_use_the_index_correctly)
{
    /* 60 links exceed the threshold where relations get a hash index. */
    enum { N = 60 };
    ph_pid a = spawn_rec(1, 1), others[N];
    for (int i = 0; i < N; i++) {
        others[i] = spawn_rec(100 + i, 0);
        send_with_pid(a, "link", others[i]);
    }
    settle();
    for (int i = 0; i < 20; i++) /* unlinked: their exits must not arrive */
        send_with_pid(a, "unlink", others[i]);
    ck_assert(wait_for("1: unlinked", 2000));
    settle();
    for (int i = 0; i < N; i++)
        send_fmt(others[i], "{stop, {gone, ~i}}", (long)i);
    for (int i = 0; i < N; i++)
        ck_assert(becomes_dead(others[i]));
    settle();
    ck_assert_int_eq(log_count("1: EXIT {gone,"), N - 20);
    ck_assert(!log_has("1: EXIT {gone,5}"));
    ck_assert(log_has("1: EXIT {gone,59}"));
    ck_assert(is_alive(a));
}
END_TEST

START_TEST(many_processes_and_shutdown)
{
    for (long i = 0; i < 2000; i++)
        spawn_rec(100 + i, 0);
    ck_assert_uint_eq(process_count(), 2000);
    /* teardown's runtime_shutdown stops them all and checks the count */
}
END_TEST

static uint32_t slot_of(ph_pid pid)
{
    return ((uint32_t)pid.num & 0x7fff) | (((uint32_t)pid.serial & 0x1f) << 15);
}

/* The process table hands out the slots never used first, in order, then
 * the freed ones in the order they were freed, each with its generation
 * bumped; it is full when every slot but 0 is taken. */
START_TEST(process_table_slot_order)
{
    enum { CAP = 4096 }; /* setup's max_processes */
    static process *ps[CAP];
    int n = 0;
    process *p;
    while (n < CAP && (p = process_create(&recorder_module)) != NULL)
        ps[n++] = p;
    ck_assert_int_gt(n, CAP / 2);
    ck_assert_int_lt(n, CAP);
    for (int i = 1; i < n; i++)
        ck_assert_uint_eq(slot_of(ps[i]->pid), slot_of(ps[i - 1]->pid) + 1);
    ck_assert_uint_eq(slot_of(ps[n - 1]->pid), CAP - 1);
    ph_pid first = ps[10]->pid, second = ps[3]->pid;
    process_put(ps[10]);
    process_put(ps[3]);
    ps[10] = process_create(&recorder_module);
    ps[3] = process_create(&recorder_module);
    ck_assert_ptr_nonnull(ps[10]);
    ck_assert_ptr_nonnull(ps[3]);
    ck_assert_uint_eq(slot_of(ps[10]->pid), slot_of(first));
    ck_assert_uint_eq(slot_of(ps[3]->pid), slot_of(second));
    ck_assert_uint_eq(ps[10]->pid.serial >> 5, ((first.serial >> 5) + 1) & 0xff);
    ck_assert(!ph_pid_equal(ps[3]->pid, second));
    ck_assert_ptr_null(process_create(&recorder_module));
    for (int i = 0; i < n; i++)
        process_put(ps[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("runtime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, messages_keep_order);
    tcase_add_test(tc, concurrent_senders_each_keep_order);
    tcase_add_test(tc, link_propagates_abnormal_exit);
    tcase_add_test(tc, link_ignores_normal_exit);
    tcase_add_test(tc, trap_exit_turns_exit_into_message);
    tcase_add_test(tc, unlink_stops_propagation);
    tcase_add_test(tc, link_to_dead_pid_gives_noproc);
    tcase_add_test(tc, monitor_reports_reason);
    tcase_add_test(tc, monitor_dead_pid_gives_noproc);
    tcase_add_test(tc, demonitor_prevents_down);
    tcase_add_test(tc, kill_is_untrappable);
    tcase_add_test(tc, exit_signal_trapped_when_not_kill);
    tcase_add_test(tc, registered_names);
    tcase_add_test(tc, spawn_failures_give_reasons);
    tcase_add_test(tc, send_after_and_cancel);
    tcase_add_test(tc, many_processes_and_shutdown);
    tcase_add_test(tc, many_links_use_the_index_correctly);
    tcase_add_test(tc, process_table_slot_order);
    suite_add_tcase(s, tc);
    return check_run(s);
}
