/*
 * handshake.c - the distribution handshake, both directions, over the
 * transport in force (plain TCP or TLS).
 *
 * Incoming: one handshake thread accepts and runs every pending handshake
 * as a non-blocking state machine on its own epoll set (TLS handshake, then
 * name, status and challenge, reply, ack). A peer that sends nothing or
 * stops half-way holds one small record and its socket until its own
 * deadline, never the thread: 200 such peers do not delay a real one. At
 * most max_pending_handshakes wait at once; beyond that the oldest is
 * dropped. Established connections live on the I/O loop and never pass
 * through here.
 *
 * Outgoing: one short-lived thread per connection attempt, blocking with a
 * deadline (epmd, connect, TLS, handshake), as the BEAM's net_kernel does.
 *
 * A finished handshake hands its socket to connection_adopt; a failed one
 * is classified (handshake_diag.h), counted and logged with the peer's
 * address and, when it sent one, its node name.
 */
#include "ei_glue/connection.h"
#include "ei_glue/handshake_diag.h"
#include "ei_glue/handshake_msg.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/timers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECT_ATTEMPTS 3
#define RETRY_DELAY_US (200 * 1000)
#define EPMD_PORT_PLEASE2_REQ 122
#define EPMD_PORT2_RESP 119

static const transport_ops *transport;
static char our_name[MAXNODELEN + 1];
static char our_cookie[EI_MAX_COOKIE_SIZE + 1];
static uint32_t our_creation;
static int listen_fd = -1;
static unsigned connect_timeout, handshake_timeout, max_pending;
static pthread_t hs_thread;
static int hs_epfd = -1, hs_wakefd = -1;
static _Atomic int accepting;
static _Atomic int connectors; /* running connector threads */

#define HS_HELP "Distribution handshakes that failed, by reason."
#define HS_NAME "phnode_dist_handshake_failures_total"
METRIC_COUNTER(m_hs_not_running, HS_NAME, "reason=\"not_running\"", HS_HELP);
METRIC_COUNTER(m_hs_bad_cookie, HS_NAME, "reason=\"bad_cookie\"", HS_HELP);
METRIC_COUNTER(m_hs_garbage, HS_NAME, "reason=\"garbage\"", HS_HELP);
METRIC_COUNTER(m_hs_timeout, HS_NAME, "reason=\"timeout\"", HS_HELP);
METRIC_COUNTER(m_hs_refused, HS_NAME, "reason=\"refused\"", HS_HELP);
METRIC_COUNTER(m_hs_closed, HS_NAME, "reason=\"closed\"", HS_HELP);
METRIC_COUNTER(m_hs_other, HS_NAME, "reason=\"other\"", HS_HELP);
METRIC_COUNTER(m_hs_tls, HS_NAME, "reason=\"tls\"", HS_HELP);
METRIC_COUNTER(m_hs_plaintext, HS_NAME, "reason=\"plaintext\"", HS_HELP);
METRIC_COUNTER(m_hs_capability, HS_NAME, "reason=\"capability\"", HS_HELP);
METRIC_COUNTER(m_hs_overflow, HS_NAME, "reason=\"overflow\"", HS_HELP);

static void count_failure(handshake_failure kind)
{
    static metric *const by_kind[HS_N_FAILURES] = {
        [HS_NOT_RUNNING] = &m_hs_not_running,
        [HS_BAD_COOKIE] = &m_hs_bad_cookie,
        [HS_GARBAGE] = &m_hs_garbage,
        [HS_TIMEOUT] = &m_hs_timeout,
        [HS_REFUSED] = &m_hs_refused,
        [HS_CLOSED] = &m_hs_closed,
        [HS_OTHER] = &m_hs_other,
        [HS_TLS] = &m_hs_tls,
        [HS_PLAINTEXT] = &m_hs_plaintext,
        [HS_CAPABILITY] = &m_hs_capability,
        [HS_OVERFLOW] = &m_hs_overflow,
    };
    if ((unsigned)kind < HS_N_FAILURES && by_kind[kind])
        metric_inc(by_kind[kind]);
}

static void log_failure(log_level level, const char *direction, const handshake_report *r,
                        const char *suffix)
{
    log_field f[] = {{"peer", r->node}, {"peer_addr", r->peer}, {"reason", r->reason}};
    log_write_fields(level, "handshake", f, 3, "%s handshake failed: %s%s%s%s", direction,
                     handshake_failure_text(r->kind), r->detail[0] ? ": " : "", r->detail, suffix);
}

static void report(handshake_report *r, handshake_failure kind, const char *addr, const char *node,
                   const char *detail)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->reason = handshake_failure_reason(kind);
    snprintf(r->peer, sizeof r->peer, "%s", addr ? addr : "");
    snprintf(r->node, sizeof r->node, "%s", node ? node : "");
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
}

static void format_addr(const struct sockaddr_in *in, char *out, size_t size)
{
    char host[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
}

/* ---------------------------------------------------------------------
 * Incoming: the state machine
 */

typedef enum in_state {
    IN_SECURE, /* the transport's handshake (TLS) */
    IN_NAME,   /* waiting for the peer's name */
    IN_ALIVE,  /* "alive" sent (we hold a connection to it): waiting for true/false */
    IN_REPLY,  /* our status and challenge sent; waiting for its reply */
    IN_ACK,    /* the ack is being written; then the connection is adopted */
} in_state;

typedef struct pending {
    struct pending *prev, *next; /* oldest first: deadlines are in this order */
    int fd;
    in_state state;
    int checked_plaintext; /* TLS: looked at the first bytes */
    int want_write;        /* epoll waits for EPOLLOUT */
    int marked;            /* connection_accept_pending took it: its end is reported */
    uint32_t node;
    uint64_t token; /* the attempt's, for connection.c */
    uint64_t deadline;
    uint32_t challenge;
    hs_name peer;
    char addr[64];
    unsigned char in[HS_MAX_PACKET + 4];
    size_t in_len;
    unsigned char out[2 * (HS_MAX_PACKET + 4)];
    size_t out_len, out_off;
} pending;

static pending *oldest, *newest;
static unsigned n_pending;

static void pending_unlink(pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        oldest = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        newest = p->prev;
    n_pending--;
}

/* Ends a pending handshake: closes it (failed) or hands it over (done). */
static void pending_end(pending *p, int adopt)
{
    epoll_ctl(hs_epfd, EPOLL_CTL_DEL, p->fd, NULL);
    pending_unlink(p);
    if (adopt) {
        connection_adopt(p->fd, p->node, p->token, 1, transport);
    } else {
        transport->close(p->fd);
        if (p->marked) /* the node was pending for it: a nodedown if it owned it */
            connection_attempt_failed(p->node, p->token, 0);
    }
    free(p);
}

/* After a failed read or write: the transport's own reason (a TLS alert),
 * 1 and why, or 0 (errno says it all). */
static int transport_failure(int fd, char *why, size_t why_size)
{
    return transport->failure && transport->failure(fd, why, why_size);
}

static void pending_fail(pending *p, handshake_failure kind, const char *detail)
{
    handshake_report r;
    report(&r, kind, p->addr, p->peer.name, detail);
    count_failure(kind);
    /* A socket that connects and closes without a byte is a port check
     * (a load balancer, a scanner): worth a line, not a warning. */
    log_failure(kind == HS_CLOSED && p->state <= IN_NAME && p->in_len == 0 ? LOG_INFO : LOG_WARN,
                "incoming", &r, "");
    pending_end(p, 0);
}

static int set_events(pending *p, int want_write)
{
    if (p->want_write == want_write)
        return 0;
    struct epoll_event ev = {.events = want_write ? EPOLLOUT : EPOLLIN, .data.ptr = p};
    if (epoll_ctl(hs_epfd, EPOLL_CTL_MOD, p->fd, &ev) != 0)
        return -1;
    p->want_write = want_write;
    return 0;
}

/* Writes what is queued in p->out; 1 all written, 0 waiting, -1 failed. */
static int flush_out(pending *p)
{
    while (p->out_off < p->out_len) {
        struct iovec iov = {p->out + p->out_off, p->out_len - p->out_off};
        ssize_t n = transport->writev(p->fd, &iov, 1);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return set_events(p, 1) == 0 ? 0 : -1;
            return -1;
        }
        p->out_off += (size_t)n;
    }
    p->out_len = p->out_off = 0;
    return set_events(p, 0) == 0 ? 1 : -1;
}

/* TLS on and the first byte is not a TLS record: a plaintext peer. Its
 * name, if the bytes are a distribution name packet, goes in the log. */
static int plaintext_peer(pending *p)
{
    unsigned char peek[HS_MAX_PACKET + 4];
    ssize_t n = recv(p->fd, peek, sizeof peek, MSG_PEEK);
    if (n <= 0)
        return 0; /* nothing yet, or closed: the TLS step will say */
    p->checked_plaintext = 1;
    if (peek[0] == 0x16) /* a TLS handshake record */
        return 0;
    const unsigned char *body;
    size_t body_len, total;
    if (hs_packet(peek, (size_t)n, 2, &body, &body_len, &total) == HS_PARSE_OK)
        (void)hs_parse_name(body, body_len, &p->peer); /* for the log only */
    return 1;
}

/* Queues our challenge, after status (NULL: the status went already). */
static void send_challenge(pending *p, const char *status)
{
    p->challenge = hs_new_challenge();
    size_t n = p->out_len; /* after what may still wait to be written */
    if (status)
        n += hs_build_status(p->out + n, transport->handshake_header, status);
    if (p->peer.old && !(p->peer.flags & HS_DFLAG_HANDSHAKE_23))
        n += hs_build_old_challenge(p->out + n, transport->handshake_header,
                                    (uint32_t)(HS_OUR_FLAGS & 0xffffffffu), p->challenge, our_name);
    else
        n += hs_build_challenge(p->out + n, transport->handshake_header, HS_OUR_FLAGS, p->challenge,
                                our_creation, our_name);
    p->out_len = n;
}

/* Handles the complete packets in p->in; 0 to go on, -1 when p ended. */
static int handle_packets(pending *p)
{
    for (;;) {
        const unsigned char *b;
        size_t n, total;
        hs_parse rc = hs_packet(p->in, p->in_len, transport->handshake_header, &b, &n, &total);
        if (rc == HS_PARSE_MORE)
            return 0;
        if (rc == HS_PARSE_BAD) {
            pending_fail(p, HS_GARBAGE, "a packet length no handshake uses");
            return -1;
        }
        if (p->state == IN_NAME) {
            if (hs_parse_name(b, n, &p->peer) != HS_PARSE_OK) {
                pending_fail(p, HS_GARBAGE, "the first packet is not a node name");
                return -1;
            }
            if ((p->peer.flags & HS_REQUIRED_FLAGS) != HS_REQUIRED_FLAGS) {
                size_t k = hs_build_status(p->out, transport->handshake_header, "not_allowed");
                struct iovec iov = {p->out, k};
                (void)transport->writev(p->fd, &iov, 1); /* best effort */
                pending_fail(p, HS_CAPABILITY, NULL);
                return -1;
            }
            /* What the BEAM's dist_util answers a connecting node, as
             * net_kernel's accept_pending decides (connection.h): the node
             * is marked pending for this handshake, so no second connection
             * to it comes up beside this one. */
            p->node = atom_intern(p->peer.name);
            if (p->node == ATOM_NONE) {
                pending_fail(p, HS_OTHER, "no room for its name in the atom table");
                return -1;
            }
            p->token = connection_new_token();
            accept_verdict v = connection_accept_pending(p->node, p->token);
            if (v == ACCEPT_NOK || v == ACCEPT_BUSY) {
                if (v == ACCEPT_NOK) { /* dist_util sends nothing for a busy node */
                    size_t k = hs_build_status(p->out, transport->handshake_header, "nok");
                    struct iovec iov = {p->out, k};
                    (void)transport->writev(p->fd, &iov, 1); /* best effort */
                }
                count_failure(HS_REFUSED);
                if (v == ACCEPT_NOK)
                    LOG_D("handshake", "incoming from %s: our own attempt to it wins (nok)",
                          p->peer.name);
                else
                    LOG_I("handshake", "incoming from %s: another of its handshakes is under way",
                          p->peer.name);
                pending_end(p, 0);
                return -1;
            }
            p->marked = 1;
            if (v == ACCEPT_ALIVE) {
                /* We hold a connection to it: it answers "true" if it has
                 * lost it (ours is replaced, with a nodedown, once this
                 * handshake has proved the cookie), "false" to keep it. */
                p->out_len +=
                    hs_build_status(p->out + p->out_len, transport->handshake_header, "alive");
                p->state = IN_ALIVE;
            } else {
                send_challenge(p, v == ACCEPT_OK ? "ok" : "ok_simultaneous");
                p->state = IN_REPLY;
            }
        } else if (p->state == IN_ALIVE) {
            char status[64];
            if (hs_parse_status(b, n, status, sizeof status) != HS_PARSE_OK ||
                (strcmp(status, "true") != 0 && strcmp(status, "false") != 0)) {
                pending_fail(p, HS_GARBAGE, "expected true or false after our alive");
                return -1;
            }
            if (strcmp(status, "false") == 0) { /* it keeps the connection we hold */
                LOG_D("handshake", "incoming from %s: it keeps its connection (false)",
                      p->peer.name);
                pending_end(p, 0);
                return -1;
            }
            send_challenge(p, NULL);
            p->state = IN_REPLY;
        } else if (p->state == IN_REPLY && n >= 1 && b[0] == 'c' && p->peer.old) {
            if (hs_parse_complement(b, n, &p->peer) != HS_PARSE_OK) {
                pending_fail(p, HS_GARBAGE, "a malformed complement packet");
                return -1;
            }
        } else if (p->state == IN_REPLY) {
            uint32_t theirs;
            unsigned char digest[16], expected[16];
            if (hs_parse_reply(b, n, &theirs, digest) != HS_PARSE_OK) {
                pending_fail(p, HS_GARBAGE, "expected the challenge reply");
                return -1;
            }
            if (hs_digest(our_cookie, p->challenge, expected) != 0 ||
                !hs_digest_equal(digest, expected)) {
                pending_fail(p, HS_BAD_COOKIE, NULL);
                return -1;
            }
            if (hs_digest(our_cookie, theirs, digest) != 0) {
                pending_fail(p, HS_OTHER, "cannot compute a digest");
                return -1;
            }
            size_t k = hs_build_ack(p->out + p->out_len, transport->handshake_header, digest);
            p->out_len += k;
            p->state = IN_ACK;
        } else {
            pending_fail(p, HS_GARBAGE, "bytes after the challenge reply");
            return -1;
        }
        memmove(p->in, p->in + total, p->in_len - total);
        p->in_len -= total;
        int w = flush_out(p);
        if (w < 0) {
            pending_fail(p, HS_CLOSED, "write failed");
            return -1;
        }
        if (p->state == IN_ACK) {
            if (p->in_len > 0) {
                pending_fail(p, HS_GARBAGE, "bytes after the challenge reply");
                return -1;
            }
            if (w == 1)
                pending_end(p, 1);
            return -1; /* done, or the ack waits for EPOLLOUT */
        }
    }
}

/* Runs p as far as the bytes that arrived allow. */
static void pending_step(pending *p)
{
    if (p->state == IN_SECURE) {
        if (!p->checked_plaintext && transport != &tcp_transport && plaintext_peer(p)) {
            pending_fail(p, HS_PLAINTEXT, NULL);
            return;
        }
        char why[128] = "";
        int want_write = 0;
        int rc = transport->secure(p->fd, &want_write, why, sizeof why);
        if (rc < 0) {
            pending_fail(p, HS_TLS, why);
            return;
        }
        if (rc == 0) {
            if (set_events(p, want_write) != 0)
                pending_fail(p, HS_OTHER, strerror(errno));
            return;
        }
        p->state = IN_NAME;
        if (set_events(p, 0) != 0) {
            pending_fail(p, HS_OTHER, strerror(errno));
            return;
        }
    }
    if (p->state == IN_ACK) {
        int w = flush_out(p);
        if (w < 0)
            pending_fail(p, HS_CLOSED, "write failed");
        else if (w == 1)
            pending_end(p, 1);
        return;
    }
    if (p->out_len > p->out_off) { /* the challenge waits for EPOLLOUT */
        int w = flush_out(p);
        if (w < 0) {
            pending_fail(p, HS_CLOSED, "write failed");
            return;
        }
        if (w == 0)
            return;
    }
    for (;;) {
        if (p->in_len == sizeof p->in) {
            pending_fail(p, HS_GARBAGE, "an over-long packet");
            return;
        }
        ssize_t n = transport->read(p->fd, (char *)p->in + p->in_len, sizeof p->in - p->in_len);
        if (n == 0) {
            pending_fail(p, HS_CLOSED,
                         p->state == IN_REPLY ? "after our challenge (a wrong cookie on its side?)"
                                              : NULL);
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            char why[128];
            if (transport_failure(p->fd, why, sizeof why))
                pending_fail(p, HS_TLS, why);
            else
                pending_fail(p, HS_CLOSED, strerror(errno));
            return;
        }
        p->in_len += (size_t)n;
        if (handle_packets(p) != 0)
            return;
    }
}

static void accept_new(void)
{
    for (;;) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(listen_fd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                LOG_W("handshake", "accept: %s", strerror(errno));
            if (errno == EMFILE || errno == ENFILE) /* no fd: drop the oldest */
                if (oldest)
                    pending_fail(oldest, HS_OVERFLOW, "out of file descriptors");
            return;
        }
        if (n_pending >= max_pending && oldest) {
            /* The limit bounds the peer entries of unproved names too
             * (connection.c): one per pending handshake at most. */
            char limit[64];
            snprintf(limit, sizeof limit, "max_pending_handshakes is %u", max_pending);
            pending_fail(oldest, HS_OVERFLOW, limit);
        }
        pending *p = calloc(1, sizeof *p);
        char why[128] = "";
        if (!p || transport->attach(fd, 1, NULL, why, sizeof why) != 0) {
            LOG_E("handshake", "cannot set up an incoming connection: %s",
                  p ? why : "out of memory");
            free(p);
            close(fd);
            continue;
        }
        p->fd = fd;
        p->state = IN_SECURE;
        p->deadline = monotonic_ms() + handshake_timeout;
        format_addr(&sa, p->addr, sizeof p->addr);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
        if (epoll_ctl(hs_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            LOG_E("handshake", "epoll_ctl: %s", strerror(errno));
            transport->close(fd);
            free(p);
            continue;
        }
        p->prev = newest;
        if (newest)
            newest->next = p;
        else
            oldest = p;
        newest = p;
        n_pending++;
        /* TCP has nothing to negotiate: the name may already be here */
        if (transport == &tcp_transport)
            p->state = IN_NAME;
    }
}

static void expire(uint64_t now)
{
    while (oldest && oldest->deadline <= now) {
        pending *p = oldest;
        const char *at = p->state == IN_SECURE ? "during the TLS handshake"
                         : p->state == IN_NAME
                             ? (p->in_len ? "in the middle of its name" : "before it sent its name")
                             : "after our challenge";
        pending_fail(p, HS_TIMEOUT, at);
    }
}

static void *handshake_main(void *arg)
{
    (void)arg;
    struct epoll_event events[64];
    while (atomic_load(&accepting)) {
        int timeout = -1;
        if (oldest) {
            uint64_t now = monotonic_ms();
            timeout = oldest->deadline > now ? (int)(oldest->deadline - now) : 0;
        }
        int n = epoll_wait(hs_epfd, events, 64, timeout);
        if (n < 0 && errno != EINTR) {
            LOG_E("handshake", "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && atomic_load(&accepting); i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == &listen_fd) {
                accept_new();
            } else if (ptr == &hs_wakefd) {
                uint64_t v;
                ssize_t r = read(hs_wakefd, &v, sizeof v);
                (void)r; /* only a wake-up */
            } else {
                pending_step(ptr);
            }
        }
        expire(monotonic_ms());
    }
    while (oldest)
        pending_end(oldest, 0);
    return NULL;
}

/* ---------------------------------------------------------------------
 * Outgoing: blocking with a deadline, on a connector thread
 */

typedef struct dialer {
    int fd;
    uint64_t deadline;
    unsigned char in[HS_MAX_PACKET + 4];
    size_t in_len;
} dialer;

/* Waits until fd is ready for events or the deadline; 0, or an errno. */
static int wait_ready(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = monotonic_ms();
        if (now >= deadline)
            return ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc = poll(&pfd, 1, (int)(deadline - now));
        if (rc > 0)
            return 0;
        if (rc == 0)
            return ETIMEDOUT;
        if (errno != EINTR)
            return errno;
    }
}

static int tcp_connect(const struct sockaddr_in *sa, uint64_t deadline, int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int rc = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) != 0) {
        if (errno != EINPROGRESS) {
            rc = errno;
        } else if ((rc = wait_ready(fd, POLLOUT, deadline)) == 0) {
            socklen_t sl = sizeof rc;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &sl) != 0)
                rc = errno;
        }
    }
    if (rc) {
        close(fd);
        return rc;
    }
    *fd_out = fd;
    return 0;
}

/* EPMD PORT_PLEASE2: the distribution port of alive on host; -1 when epmd
 * does not know it (or cannot be asked). */
static int epmd_port_please(const struct in_addr *host, const char *alive, uint64_t deadline)
{
    const char *env = getenv("ERL_EPMD_PORT");
    int eport = env && atoi(env) > 0 ? atoi(env) : 4369;
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)eport), .sin_addr = *host};
    int fd;
    if (tcp_connect(&sa, deadline, &fd) != 0)
        return -1;
    unsigned char req[3 + HS_MAX_NAME];
    size_t n = strlen(alive);
    if (n > HS_MAX_NAME) {
        close(fd);
        return -1;
    }
    req[0] = (unsigned char)((n + 1) >> 8);
    req[1] = (unsigned char)(n + 1);
    req[2] = EPMD_PORT_PLEASE2_REQ;
    memcpy(req + 3, alive, n);
    int port = -1;
    unsigned char resp[4];
    size_t got = 0;
    if (send(fd, req, n + 3, MSG_NOSIGNAL) == (ssize_t)(n + 3)) {
        while (got < sizeof resp && wait_ready(fd, POLLIN, deadline) == 0) {
            ssize_t r = recv(fd, resp + got, sizeof resp - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got >= 2 && resp[0] == EPMD_PORT2_RESP && resp[1] == 0 && got == 4)
            port = resp[2] << 8 | resp[3];
    }
    close(fd);
    return port;
}

static int dial_send(dialer *d, const unsigned char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        struct iovec iov = {(void *)(buf + off), len - off};
        ssize_t n = transport->writev(d->fd, &iov, 1);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return errno;
            int rc = wait_ready(d->fd, POLLOUT, d->deadline);
            if (rc)
                return rc;
            continue;
        }
        off += (size_t)n;
    }
    return 0;
}

/* The next packet: its body in d->in (valid until the next call). 0, an
 * errno, or EPROTO for bytes that are not a handshake packet. */
static int dial_recv(dialer *d, const unsigned char **body, size_t *len, size_t *consumed)
{
    if (*consumed) {
        memmove(d->in, d->in + *consumed, d->in_len - *consumed);
        d->in_len -= *consumed;
        *consumed = 0;
    }
    for (;;) {
        hs_parse rc = hs_packet(d->in, d->in_len, transport->handshake_header, body, len, consumed);
        if (rc == HS_PARSE_OK)
            return 0;
        if (rc == HS_PARSE_BAD || d->in_len == sizeof d->in)
            return EPROTO;
        /* Never past this packet: the peer may send distribution frames
         * right after its challenge ack, and those are the connection's
         * to read (with TLS they stay in the socket as well: OpenSSL reads
         * one record at a time). */
        size_t hdr = (size_t)transport->handshake_header, want = hdr - d->in_len;
        if (d->in_len >= hdr)
            want = hdr +
                   (hdr == 4 ? (size_t)d->in[0] << 24 | (size_t)d->in[1] << 16 |
                                   (size_t)d->in[2] << 8 | d->in[3]
                             : (size_t)d->in[0] << 8 | d->in[1]) -
                   d->in_len;
        if (want > sizeof d->in - d->in_len)
            want = sizeof d->in - d->in_len;
        ssize_t n = transport->read(d->fd, (char *)d->in + d->in_len, want);
        if (n == 0)
            return ECONNRESET;
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return errno;
            if (transport->pending(d->fd) > 0)
                continue;
            int w = wait_ready(d->fd, POLLIN, d->deadline);
            if (w)
                return w;
            continue;
        }
        d->in_len += (size_t)n;
    }
}

/* One attempt of the attempt token to node; the socket, or -1 with r
 * filled. */
static int dial(uint32_t node, uint64_t token, const char *name, handshake_report *r)
{
    char alive[HS_MAX_NAME + 1], host[HS_MAX_NAME + 1];
    const char *at = strchr(name, '@');
    report(r, HS_OTHER, NULL, name, NULL);
    if (!at || (size_t)(at - name) > HS_MAX_NAME || strlen(at + 1) > HS_MAX_NAME) {
        report(r, HS_OTHER, NULL, name, "not a node name");
        return -1;
    }
    memcpy(alive, name, (size_t)(at - name));
    alive[at - name] = '\0';
    snprintf(host, sizeof host, "%s", at + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET}, *res;
        if (getaddrinfo(host, NULL, &hints, &res) != 0) {
            report(r, HS_NOT_RUNNING, NULL, name, "cannot resolve its host");
            return -1;
        }
        sa.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    dialer d = {.fd = -1, .deadline = monotonic_ms() + connect_timeout};
    int port = epmd_port_please(&sa.sin_addr, alive, d.deadline);
    if (port <= 0) {
        report(r, HS_NOT_RUNNING, NULL, name, NULL);
        return -1;
    }
    sa.sin_port = htons((uint16_t)port);
    char addr[64];
    format_addr(&sa, addr, sizeof addr);
    int err = tcp_connect(&sa, d.deadline, &d.fd);
    if (err) {
        report(r,
               err == ECONNREFUSED ? HS_NOT_RUNNING
               : err == ETIMEDOUT  ? HS_TIMEOUT
                                   : HS_OTHER,
               addr, name, strerror(err));
        return -1;
    }
    char why[128] = "";
    if (transport->attach(d.fd, 0, host, why, sizeof why) != 0) {
        close(d.fd);
        report(r, HS_TLS, addr, name, why);
        return -1;
    }
    for (;;) {
        int want_write = 0;
        int rc = transport->secure(d.fd, &want_write, why, sizeof why);
        if (rc == 1)
            break;
        if (rc < 0 || (err = wait_ready(d.fd, want_write ? POLLOUT : POLLIN, d.deadline))) {
            transport->close(d.fd);
            report(r, rc < 0 ? HS_TLS : HS_TIMEOUT, addr, name,
                   rc < 0 ? why : "during the TLS handshake");
            return -1;
        }
    }
    unsigned char out[HS_MAX_PACKET + 4];
    const unsigned char *b;
    size_t n, used = 0;
    char status[64];
    hs_name peer;
    uint32_t theirs, mine = hs_new_challenge();
    unsigned char digest[16];
    handshake_failure kind = HS_GARBAGE;
    const char *detail = NULL;
    size_t k =
        hs_build_name(out, transport->handshake_header, HS_OUR_FLAGS, our_creation, our_name);
    if ((err = dial_send(&d, out, k)) || (err = dial_recv(&d, &b, &n, &used)))
        goto failed;
    if (hs_parse_status(b, n, status, sizeof status) != HS_PARSE_OK) {
        detail = "expected a status";
        goto bad;
    }
    if (strcmp(status, "alive") == 0) {
        /* It holds a connection to us that we have lost (we would not dial
         * otherwise): "true" while this attempt still owns the node (it
         * closes its one), "false" if another attempt took over (dist_util's
         * is_pending). */
        int mine_still = connection_owns_attempt(node, token);
        k = hs_build_status(out, transport->handshake_header, mine_still ? "true" : "false");
        if ((err = dial_send(&d, out, k)))
            goto failed;
        if (!mine_still) {
            kind = HS_REFUSED;
            detail = "alive";
            goto bad;
        }
    } else if (strcmp(status, "ok") != 0 && strcmp(status, "ok_simultaneous") != 0) {
        kind = HS_REFUSED;
        detail = status;
        goto bad;
    }
    if ((err = dial_recv(&d, &b, &n, &used)))
        goto failed;
    if (hs_parse_challenge(b, n, &peer, &theirs) != HS_PARSE_OK) {
        detail = "expected a challenge";
        goto bad;
    }
    if ((peer.flags & HS_REQUIRED_FLAGS) != HS_REQUIRED_FLAGS) {
        kind = HS_CAPABILITY;
        goto bad;
    }
    if (hs_digest(our_cookie, theirs, digest) != 0) {
        kind = HS_OTHER;
        detail = "cannot compute a digest";
        goto bad;
    }
    k = hs_build_reply(out, transport->handshake_header, mine, digest);
    if ((err = dial_send(&d, out, k)))
        goto failed;
    if ((err = dial_recv(&d, &b, &n, &used))) {
        /* a peer that hangs up on our digest has another cookie */
        if (err == ECONNRESET || err == EPIPE) {
            kind = HS_BAD_COOKIE;
            goto bad;
        }
        goto failed;
    }
    if (hs_parse_ack(b, n, digest) != HS_PARSE_OK) {
        detail = "expected the challenge ack";
        goto bad;
    }
    unsigned char expected[16];
    if (hs_digest(our_cookie, mine, expected) != 0 || !hs_digest_equal(digest, expected)) {
        kind = HS_BAD_COOKIE;
        goto bad;
    }
    if (used != d.in_len) {
        detail = "bytes after the challenge ack";
        goto bad;
    }
    return d.fd;
failed:
    kind = err == ETIMEDOUT                    ? HS_TIMEOUT
           : err == EPROTO                     ? HS_GARBAGE
           : err == ECONNRESET || err == EPIPE ? HS_CLOSED
                                               : HS_OTHER;
    detail = err == EPROTO ? "not a distribution handshake" : strerror(err);
    if (err != ETIMEDOUT && err != EPROTO && transport_failure(d.fd, why, sizeof why)) {
        kind = HS_TLS;
        detail = why;
    }
bad:
    transport->close(d.fd);
    report(r, kind, addr, name, detail);
    return -1;
}

typedef struct connect_job {
    uint32_t node;
    uint64_t token;
} connect_job;

/* After a "nok" the peer's own attempt to us wins: as dist_util's dialer
 * waits to be replaced, wait (at most handshake_timeout) for its handshake
 * to take this attempt over. 1 if it did. */
static int wait_taken_over(uint32_t node, uint64_t token)
{
    uint64_t deadline = monotonic_ms() + handshake_timeout;
    while (monotonic_ms() < deadline && atomic_load(&accepting)) {
        if (!connection_owns_attempt(node, token))
            return 1;
        usleep(10 * 1000);
    }
    return !connection_owns_attempt(node, token);
}

static void *connector_main(void *arg)
{
    connect_job job = *(connect_job *)arg;
    free(arg);
    uint32_t node = job.node;
    char name[MAXATOMLEN_UTF8];
    snprintf(name, sizeof name, "%s", atom_text(node));
    /* A refused handshake is often the peer dialing us at the same moment
     * (it answers "nok" and its own connection wins): its handshake takes
     * this attempt over, with the messages that wait. A node that is not
     * running (yet: a cluster starting up) or that wins a simultaneous
     * connect is routine: those attempts are logged at debug level; the
     * others are warnings. The attempt ends as soon as another owns the
     * node. */
    int fd = -1, routine = 1, nok = 0;
    for (int attempt = 0; attempt < CONNECT_ATTEMPTS && fd < 0; attempt++) {
        if (attempt > 0 && !nok)
            usleep(RETRY_DELAY_US);
        if ((nok && wait_taken_over(node, job.token)) ||
            !connection_owns_attempt(node, job.token) || !atomic_load(&accepting))
            break;
        handshake_report r;
        fd = dial(node, job.token, name, &r);
        if (fd < 0) {
            count_failure(r.kind);
            nok = r.kind == HS_REFUSED && strcmp(r.detail, "nok") == 0;
            int quiet = r.kind == HS_NOT_RUNNING || nok ||
                        (r.kind == HS_REFUSED && strcmp(r.detail, "alive") == 0);
            routine &= quiet;
            char suffix[32];
            snprintf(suffix, sizeof suffix, " (attempt %d of %d)", attempt + 1, CONNECT_ATTEMPTS);
            if (!quiet)
                log_failure(LOG_WARN, "outgoing", &r, suffix);
            else if (log_enabled(LOG_DEBUG))
                log_failure(LOG_DEBUG, "outgoing", &r, suffix);
        }
    }
    if (fd >= 0)
        connection_adopt(fd, node, job.token, 0, transport);
    else if (!(nok && wait_taken_over(node, job.token)))
        connection_attempt_failed(node, job.token, routine); /* nothing if taken over */
    atomic_fetch_sub(&connectors, 1);
    return NULL;
}

int handshake_connect_async(uint32_t node, uint64_t token)
{
    if (!transport)
        return -1;
    if (!hs_valid_node_name(atom_text(node))) {
        LOG_W("handshake", "not a node name: '%s'", atom_text(node));
        return -1;
    }
    connect_job *job = malloc(sizeof *job);
    if (!job) {
        LOG_E("handshake", "out of memory starting a connection to %s", atom_text(node));
        return -1;
    }
    job->node = node;
    job->token = token;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&connectors, 1);
    int rc = pthread_create(&t, &attr, connector_main, job);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(job);
        atomic_fetch_sub(&connectors, 1);
        LOG_E("handshake", "cannot start a connector thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

int handshake_start(ei_cnode *ec, int lfd, const dist_config *config)
{
    snprintf(our_name, sizeof our_name, "%s", ec->thisnodename);
    snprintf(our_cookie, sizeof our_cookie, "%s", ec->ei_connect_cookie);
    our_creation = ec->creation;
    listen_fd = lfd;
    connect_timeout = config->connect_timeout_ms;
    handshake_timeout = config->handshake_timeout_ms;
    max_pending = config->max_pending_handshakes;
    transport = config->transport;
    int flags = fcntl(lfd, F_GETFL);
    if (flags < 0 || fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -1;
    hs_epfd = epoll_create1(EPOLL_CLOEXEC);
    hs_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listen_fd};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &hs_wakefd};
    if (hs_epfd < 0 || hs_wakefd < 0 || epoll_ctl(hs_epfd, EPOLL_CTL_ADD, lfd, &lev) != 0 ||
        epoll_ctl(hs_epfd, EPOLL_CTL_ADD, hs_wakefd, &wev) != 0) {
        LOG_E("handshake", "cannot set up the handshake thread: %s", strerror(errno));
        return -1;
    }
    atomic_store(&accepting, 1);
    if (pthread_create(&hs_thread, NULL, handshake_main, NULL) != 0) {
        atomic_store(&accepting, 0);
        return -1;
    }
    return 0;
}

void handshake_stop(void)
{
    if (atomic_exchange(&accepting, 0)) {
        uint64_t one = 1;
        ssize_t w = write(hs_wakefd, &one, sizeof one);
        (void)w; /* a full counter still wakes the thread */
        pthread_join(hs_thread, NULL);
        close(hs_epfd);
        close(hs_wakefd);
        hs_epfd = hs_wakefd = -1;
    }
    /* Connector threads finish within their timeout; wait for them so none
     * adopts a connection after the I/O thread is gone. */
    for (int i = 0; i < 1000 && atomic_load(&connectors) > 0; i++)
        usleep(10000);
}
