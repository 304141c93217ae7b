/*
 * loopback_floor.c - the physical floor of a server's CPU per call on this
 * machine: what a minimal C server spends per request/reply over loopback
 * TCP, with nothing but the system calls (issue 15). A forked client sends a
 * request, waits for the reply, then works THINK_US before the next one (a
 * caller's own cost between calls); the server (this process) answers:
 *
 *   blocking  recv (sleeps in it) + sendmsg: 2 system calls and one
 *             sleep/wake-up per call, the least any server can do;
 *   epoll     epoll_wait (sleeps in it) + recv + sendmsg: what an event loop
 *             over many connections does;
 *   gen_call  the epoll server, with the message pattern of a BEAM caller's
 *             GenServer.call: the call's monitor and request in one write,
 *             and the demonitor (DEMONITOR_P) sent as soon as the reply is
 *             in, before the caller's own work; the server reads it on its
 *             own when it arrives while the server sleeps;
 *   syscall   the cost of one system call that does nothing (getppid).
 *
 * Prints one JSON object: server CPU microseconds per call (getrusage of the
 * server process) for each mode, and the null system call.
 *
 *   loopback_floor [CALLS [REQUEST_BYTES [REPLY_BYTES [THINK_US]]]]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void)
{
    struct rusage r;
    if (getrusage(RUSAGE_SELF, &r) != 0)
        return 0;
    return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec * 1e-6 +
           (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec * 1e-6;
}

static int read_exactly(int fd, char *buf, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t r = recv(fd, buf + got, want - got, 0);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The size of a DEMONITOR_P frame from a BEAM caller (its part of the
 * 404 bytes of a call's traffic). */
#define DEMONITOR_BYTES 60

static void client(struct sockaddr_in addr, int calls, size_t req, size_t rep, int think_us,
                   int gen_call)
{
    char buf[65536];
    memset(buf, 1, sizeof buf);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        _exit(1);
    for (int i = 0; i < calls; i++) {
        size_t ask = gen_call ? req - DEMONITOR_BYTES : req;
        if (send(s, buf, ask, 0) != (ssize_t)ask || read_exactly(s, buf, rep) != 0)
            _exit(2);
        if (gen_call && send(s, buf, DEMONITOR_BYTES, 0) != DEMONITOR_BYTES)
            _exit(2);
        double until = now_s() + think_us * 1e-6;
        while (now_s() < until)
            ;
    }
    close(s);
    _exit(0);
}

/* One run of `calls` calls in the given mode (0 blocking, 1 epoll, 2
 * gen_call); server CPU us per call, < 0 on error. */
static double run(int mode, int calls, size_t req, size_t rep, int think_us)
{
    int epoll_mode = mode >= 1, gen_call = mode == 2;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(ls, (struct sockaddr *)&addr, &alen) != 0 || listen(ls, 1) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        client(addr, calls, req, rep, think_us, gen_call);
    int s = accept(ls, NULL, NULL);
    close(ls);
    int one = 1, ep = -1;
    if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        return -1;
    if (epoll_mode) {
        struct epoll_event ev = {.events = EPOLLIN};
        ep = epoll_create1(0);
        if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0)
            return -1;
    }
    static char buf[65536];
    double c0 = cpu_s();
    for (int i = 0; i < calls; i++) {
        /* gen_call: the previous call's demonitor comes first */
        size_t got = 0, want = gen_call && i == 0 ? req - DEMONITOR_BYTES : req;
        while (got < want) {
            if (epoll_mode) {
                struct epoll_event ev;
                if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR)
                    return -1;
            }
            ssize_t r = recv(s, buf, sizeof buf, epoll_mode ? MSG_DONTWAIT : 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
        struct iovec iov = {buf, rep};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        if (sendmsg(s, &m, MSG_NOSIGNAL) != (ssize_t)rep)
            return -1;
    }
    if (gen_call) { /* the last demonitor */
        size_t got = 0;
        while (got < DEMONITOR_BYTES) {
            ssize_t r = recv(s, buf, sizeof buf, 0);
            if (r <= 0)
                return -1;
            got += (size_t)r;
        }
    }
    double used = cpu_s() - c0;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    close(s);
    if (ep >= 0)
        close(ep);
    return used / calls * 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int calls = argc > 1 ? atoi(argv[1]) : 20000;
    size_t req = argc > 2 ? (size_t)atoi(argv[2]) : 404; /* DEMONITOR_P + MONITOR_P + SEND */
    size_t rep = argc > 3 ? (size_t)atoi(argv[3]) : 185; /* phnode's ALIAS_SEND reply */
    int think = argc > 4 ? atoi(argv[4]) : 30;
    if (calls <= 0 || req == 0 || rep == 0 || req > 65536 || rep > 65536 || think < 0) {
        fprintf(stderr, "usage: loopback_floor [CALLS [REQUEST_BYTES [REPLY_BYTES [THINK_US]]]]\n");
        return 2;
    }
    if (req <= DEMONITOR_BYTES) {
        fprintf(stderr, "loopback_floor: REQUEST_BYTES must exceed %d\n", DEMONITOR_BYTES);
        return 2;
    }
    /* Five alternating runs of each mode; medians. */
    double blocking[5], epolled[5], gen_call[5];
    for (int i = 0; i < 5; i++) {
        blocking[i] = run(0, calls / 5, req, rep, think);
        epolled[i] = run(1, calls / 5, req, rep, think);
        gen_call[i] = run(2, calls / 5, req, rep, think);
        if (blocking[i] < 0 || epolled[i] < 0 || gen_call[i] < 0) {
            fprintf(stderr, "loopback_floor: %s\n", strerror(errno));
            return 1;
        }
    }
    qsort(blocking, 5, sizeof blocking[0], cmp);
    qsort(epolled, 5, sizeof epolled[0], cmp);
    qsort(gen_call, 5, sizeof gen_call[0], cmp);
    double t0 = now_s();
    for (int i = 0; i < 100000; i++)
        syscall(SYS_getppid);
    double null_us = (now_s() - t0) / 100000 * 1e6;
    printf("{\"scenario\": \"loopback_floor\", \"request_bytes\": %zu, \"reply_bytes\": %zu, "
           "\"client_think_us\": %d, \"blocking_recv_sendmsg_cpu_us_per_call\": %.1f, "
           "\"epoll_recv_sendmsg_cpu_us_per_call\": %.1f, "
           "\"epoll_gen_call_pattern_cpu_us_per_call\": %.1f, \"null_syscall_us\": %.2f}\n",
           req, rep, think, blocking[2], epolled[2], gen_call[2], null_us);
    return 0;
}
