/*
 * Unit tests: the peer table's handling of connections handed over by a
 * handshake (ei_glue/connection.c), without a handshake or a real peer: a
 * socketpair stands for the socket, a local process for what watches the
 * node. Covers a connection the poller cannot take (io_register fails,
 * injected with PHNODE_TEST_IO_REGISTER_FAIL): it must end as a lost
 * connection does, never stay "up" with nobody reading it.
 */
#include "ei_glue/connection.h"
#include "ei_glue/dist.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/names.h"
#include "hub/runtime/process.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/thread_buf.h"

#include <check.h>

#include "check_run.h"
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PEER_NODE "peer@127.0.0.1"

/* --- what the watcher saw ----------------------------------------------- */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cond = PTHREAD_COND_INITIALIZER;
static char seen[4096];

static void note(const char *text)
{
    pthread_mutex_lock(&seen_lock);
    size_t n = strlen(seen);
    snprintf(seen + n, sizeof seen - n, "%s\n", text);
    pthread_cond_broadcast(&seen_cond);
    pthread_mutex_unlock(&seen_lock);
}

/* 1 once the watcher noted text, 0 if it did not within 10 s. */
static int saw(const char *text)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&seen_lock);
    while (!strstr(seen, text))
        if (pthread_cond_timedwait(&seen_cond, &seen_lock, &deadline) != 0)
            break;
    int found = strstr(seen, text) != NULL;
    if (!found)
        fprintf(stderr, "waited for \"%s\"; the watcher saw:\n%s", text, seen);
    pthread_mutex_unlock(&seen_lock);
    return found;
}

/* Traps exits; links to and monitors the pid it is sent ({watch, Pid}),
 * then notes "watching"; notes every other message as it comes. */
static ph_result watcher_init(ph_ctx *ctx, ph_term args, void **state)
{
    (void)args;
    ph_trap_exit(ctx, 1);
    *state = NULL;
    return PH_OK;
}

static ph_result watcher_info(ph_ctx *ctx, void *state, ph_term msg)
{
    (void)state;
    ph_term t;
    ph_pid pid;
    ph_ref ref;
    char text[256];
    if (ph_match(msg, "{watch, ~t}", &t) == 1 && ph_decode_pid(t, &pid) == 0) {
        ph_link(ctx, pid);
        ph_monitor(ctx, pid, &ref);
        note("watching");
        return PH_OK;
    }
    note(ph_term_format(msg, text, sizeof text));
    return PH_OK;
}

static const ph_worker_module watcher_module = {
    .name = "conn_watcher",
    .init = watcher_init,
    .handle_info = watcher_info,
};

/* --- fixture ------------------------------------------------------------ */

static void setup(void)
{
    runtime_config rc = {"unit@127.0.0.1", 12345, 2, 1024, 0, 0};
    ck_assert_int_eq(runtime_init(&rc), 0);
    if (!ph_find_module(watcher_module.name))
        ph_register_module(&watcher_module);
    remote_set_ops(&dist_remote_ops); /* signals to other nodes go to connection.c */
    dist_config dc = {.net_ticktime = 60};
    ck_assert_int_eq(connections_init(NULL, &dc), 0);
    seen[0] = '\0';
}

static void teardown(void)
{
    runtime_shutdown(); /* first, as main.c: no scheduler polls the I/O set after this */
    connections_stop();
    remote_set_ops(NULL);
    names_shutdown();
    process_table_shutdown();
    atoms_shutdown();
    thread_bufs_release();
    signal_cache_release();
}

/* A process of this node linked to and monitoring a process of node: the
 * LINK and MONITOR frames wait in the peer's queue for its connection. */
static ph_pid watch(uint32_t node)
{
    ph_buf args, err, msg;
    ph_buf_init(&args);
    ph_buf_init(&err);
    ph_buf_init(&msg);
    ck_assert_int_eq(ph_build(&args, "[]"), 0);
    ph_pid w;
    ck_assert_int_eq(ph_spawn(NULL, watcher_module.name, ph_buf_term(&args), NULL, &w, &err), 0);
    ph_pid remote = {.node = node, .num = 7, .serial = 0, .creation = 1};
    ei_x_encode_tuple_header(&msg, 2);
    ei_x_encode_atom(&msg, "watch");
    ph_encode_pid(&msg, remote);
    ck_assert_int_eq(ph_send_from_outside(w, ph_buf_term(&msg)), 0);
    ck_assert(saw("watching"));
    ph_buf_free(&args);
    ph_buf_free(&err);
    ph_buf_free(&msg);
    return w;
}

/* 1 when fd reads end of stream within 10 s (the other end was closed). */
static int reads_eof(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[4096];
    for (int i = 0; i < 100; i++) {
        if (poll(&pfd, 1, 100) < 0)
            return 0;
        if (pfd.revents) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n == 0)
                return 1;
            if (n < 0 && errno != EAGAIN)
                return 0;
        }
    }
    return 0;
}

/* An incoming handshake from node that owns it and hands fd over. */
static void adopt_incoming(uint32_t node, int fd)
{
    uint64_t token = connection_new_token();
    ck_assert_int_eq(connection_accept_pending(node, token), ACCEPT_OK);
    connection_adopt(fd, node, token, 1, &tcp_transport);
}

/* --- tests -------------------------------------------------------------- */

START_TEST(a_connection_the_poller_cannot_take_ends_as_a_lost_one)
{
    ck_assert_int_eq(setenv("PHNODE_TEST_IO_REGISTER_FAIL", "1", 1), 0);
    ck_assert_int_eq(io_loop_start(), 0);
    uint32_t node = atom_intern(PEER_NODE);
    watch(node);

    ck_assert_str_eq(seen, "watching\n"); /* its link and monitor wait */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    adopt_incoming(node, sv[0]);

    /* Not left "up" with nobody reading it: closed, out of the table, and
     * what watched the node hears it is gone. */
    ck_assert_int_eq(connection_is_up(node), 0);
    ck_assert(reads_eof(sv[1]));
    ck_assert(saw("{'EXIT',<" PEER_NODE ".7.0>,noconnection}"));
    ck_assert(saw("process,<" PEER_NODE ".7.0>,noconnection}"));
    close(sv[1]);

    /* The node is free for the next attempt, which the poller takes. */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    adopt_incoming(node, sv[0]);
    ck_assert_int_eq(connection_is_up(node), 1);
    close(sv[1]);
}
END_TEST

START_TEST(a_connection_the_poller_takes_is_up)
{
    ck_assert_int_eq(unsetenv("PHNODE_TEST_IO_REGISTER_FAIL"), 0);
    ck_assert_int_eq(io_loop_start(), 0);
    uint32_t node = atom_intern(PEER_NODE);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    adopt_incoming(node, sv[0]);
    ck_assert_int_eq(connection_is_up(node), 1);
    /* Its peer closing it takes it out of the table. */
    close(sv[1]);
    for (int i = 0; i < 200 && connection_is_up(node); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(connection_is_up(node), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("connection");
    TCase *tc = tcase_create("connection");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_connection_the_poller_cannot_take_ends_as_a_lost_one);
    tcase_add_test(tc, a_connection_the_poller_takes_is_up);
    suite_add_tcase(s, tc);
    return check_run(s);
}
