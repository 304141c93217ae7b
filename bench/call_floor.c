/*
 * call_floor.c - the floor of BEAM callers' calls on this machine (issue
 * 15): a C node on erl_interface that does nothing for a call but read it
 * and send {Tag, Request} back to the caller. What BEAM nodes calling it
 * reach, and what it spends per call, is what the callers, their
 * distribution and the loopback allow with a server that costs next to
 * nothing: one sequential caller, many callers on one node, or many client
 * nodes (poll mode), each beside phnode and the BEAM server
 * (bench/call_floor.exs).
 *
 *   call_floor NODE@127.0.0.1 COOKIE sleep|spin|poll
 *
 *   sleep  blocks in recv between messages (one sleep and wake-up each);
 *   spin   polls the connection (recv MSG_PEEK|MSG_DONTWAIT) for up to
 *          SPIN_US after each message before it blocks: the least latency
 *          while calls flow, and no vCPU taken from the other servers'
 *          rounds between them (an endless spin would leave them one vCPU);
 *   poll   serves every connection at once, sleeping in poll() until one
 *          is readable, then answering one message from each readable one:
 *          the floor with many calling nodes (sleep and spin serve one
 *          connection at a time).
 *
 * It registers with epmd, answers
 * {'$gen_call', {From, Tag}, :pid} with its own pid (so that the driver can
 * call it by pid, as it calls the other servers) and any other request with
 * itself. Anything else is dropped. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ei.h"

#define SPIN_US 200

static int spin;

static long long now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* Spin mode: checks fd for input without blocking for up to SPIN_US, then
 * lets ei's read block. */
static void spin_until_readable(int fd)
{
    char c;
    long long until = now_us() + SPIN_US;
    while (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && (errno == EAGAIN || errno == EINTR))
        if (now_us() > until)
            return;
}

/* Answers one message if it is a call; returns -1 when the reply cannot be
 * sent (the connection is gone). */
static int answer(ei_cnode *ec, int fd, const ei_x_buff *in)
{
    int i = 0, ver, arity;
    char atom[MAXATOMLEN_UTF8];
    erlang_pid from;
    if (ei_decode_version(in->buff, &i, &ver) < 0 ||
        ei_decode_tuple_header(in->buff, &i, &arity) < 0 || arity != 3 ||
        ei_decode_atom(in->buff, &i, atom) < 0 || strcmp(atom, "$gen_call") != 0 ||
        ei_decode_tuple_header(in->buff, &i, &arity) < 0 || arity != 2 ||
        ei_decode_pid(in->buff, &i, &from) < 0)
        return 0; /* not a call: dropped */
    int tag = i;
    if (ei_skip_term(in->buff, &i) < 0)
        return 0;
    int req = i;
    if (ei_skip_term(in->buff, &i) < 0)
        return 0;
    int req_end = i, k = req;
    int is_pid_req = ei_decode_atom(in->buff, &k, atom) == 0 && strcmp(atom, "pid") == 0;

    ei_x_buff out;
    if (ei_x_new_with_version(&out) < 0)
        return -1;
    int ok = ei_x_encode_tuple_header(&out, 2) == 0 &&
             ei_x_append_buf(&out, in->buff + tag, req - tag) == 0 &&
             (is_pid_req ? ei_x_encode_pid(&out, ei_self(ec)) == 0
                         : ei_x_append_buf(&out, in->buff + req, req_end - req) == 0);
    int rc = ok && ei_send(fd, &from, out.buff, out.index) == 0 ? 0 : -1;
    ei_x_free(&out);
    return rc;
}

/* Reads and answers one message from fd; -1 when the connection is gone. */
static int serve_one(ei_cnode *ec, int fd, ei_x_buff *in)
{
    erlang_msg msg;
    in->index = 0;
    int got = ei_xreceive_msg(fd, &msg, in);
    if (got == ERL_TICK)
        return 0;
    if (got == ERL_ERROR)
        return -1;
    if ((msg.msgtype == ERL_SEND || msg.msgtype == ERL_REG_SEND) && answer(ec, fd, in) < 0)
        return -1;
    return 0;
}

static void serve(ei_cnode *ec, int fd)
{
    ei_x_buff in;
    if (ei_x_new(&in) < 0)
        return;
    for (;;) {
        if (spin)
            spin_until_readable(fd);
        if (serve_one(ec, fd, &in) < 0)
            break;
    }
    ei_x_free(&in);
    close(fd);
}

/* A handshake that stalls gives up after this, so that in poll mode it
 * cannot hold up the connections already served. */
#define ACCEPT_TMO_MS 5000

static int accept_one(ei_cnode *ec, int lfd)
{
    ErlConnect conn;
    int fd = ei_accept_tmo(ec, lfd, &conn, ACCEPT_TMO_MS);
    if (fd < 0)
        return -1; /* a failed handshake: the next one */
    int one = 1;   /* as the BEAM's distribution sockets */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        perror("call_floor: TCP_NODELAY");
    return fd;
}

#define POLL_MAX 64

/* poll mode: the listening socket and every connection in one poll(). */
static void serve_all(ei_cnode *ec, int lfd)
{
    struct pollfd fds[POLL_MAX + 1];
    int n = 0;
    ei_x_buff in;
    if (ei_x_new(&in) < 0)
        return;
    fds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
    for (;;) {
        if (poll(fds, (nfds_t)n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("call_floor: poll");
            break;
        }
        for (int i = 1; i <= n; i++) {
            if (!fds[i].revents)
                continue;
            if (serve_one(ec, fds[i].fd, &in) < 0) {
                close(fds[i].fd);
                fds[i--] = fds[n--];
            }
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept_one(ec, lfd);
            if (fd >= 0 && n == POLL_MAX) {
                fprintf(stderr, "call_floor: more than %d connections: refused\n", POLL_MAX);
                close(fd);
            } else if (fd >= 0) {
                fds[++n] = (struct pollfd){.fd = fd, .events = POLLIN};
            }
        }
    }
    ei_x_free(&in);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[3], "sleep") != 0 && strcmp(argv[3], "spin") != 0 &&
                      strcmp(argv[3], "poll") != 0)) {
        fprintf(stderr, "usage: call_floor NODE@HOST COOKIE sleep|spin|poll\n");
        return 2;
    }
    spin = strcmp(argv[3], "spin") == 0;
    char alive[256], *at = strchr(argv[1], '@');
    if (at == NULL || (size_t)(at - argv[1]) >= sizeof alive) {
        fprintf(stderr, "call_floor: bad node name %s\n", argv[1]);
        return 2;
    }
    memcpy(alive, argv[1], (size_t)(at - argv[1]));
    alive[at - argv[1]] = '\0';

    ei_cnode ec;
    struct in_addr addr;
    addr.s_addr = htonl(INADDR_LOOPBACK);
    int port = 0, lfd;
    if (ei_init() != 0 || ei_connect_xinit(&ec, at + 1, alive, argv[1], &addr, argv[2], 1) < 0 ||
        (lfd = ei_listen(&ec, &port, 64)) < 0 || ei_publish(&ec, port) < 0) {
        fprintf(stderr, "call_floor: cannot start %s (erl_errno %d): is epmd running?\n", argv[1],
                erl_errno);
        return 1;
    }
    fprintf(stderr, "call_floor: %s on port %d, %s mode\n", argv[1], port, argv[3]);
    if (strcmp(argv[3], "poll") == 0) {
        serve_all(&ec, lfd);
        return 1;
    }
    for (;;) {
        int fd = accept_one(&ec, lfd);
        if (fd >= 0)
            serve(&ec, fd);
    }
}
