/* socket_callbacks.c - TCP for ei, with timeouts done here by poll(2)
 * (EI_SCLBK_FLG_FULL_IMPL) so ei never select()s on a high fd; with
 * socket_callbacks_enable_tls, connections to a node (not to epmd) run
 * inside TLS (transport_tls.c), as `phnode ctl` needs for a TLS node. */
#include "ei_glue/socket_callbacks.h"

#include "ei_glue/handshake_diag.h"
#include "ei_glue/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HANDSHAKE_HEADER 2

typedef struct tcp_ctx {
    int fd;
    int handshake_done;
    int tls; /* this connection runs inside TLS */
} tcp_ctx;

static int use_tls;
static char tls_error[160];

void socket_callbacks_enable_tls(void)
{
    use_tls = 1;
}

const char *socket_callbacks_tls_error(void)
{
    return tls_error;
}

static int epmd_port(void)
{
    const char *env = getenv("ERL_EPMD_PORT");
    int p = env ? atoi(env) : 0;
    return p > 0 && p < 65536 ? p : 4369;
}

static int wait_fd(int fd, short events, unsigned tmo)
{
    if (tmo == EI_SCLBK_INF_TMO)
        return 0;
    struct pollfd pfd = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&pfd, 1, tmo > 0x7fffffffu ? -1 : (int)tmo);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return errno;
    return rc == 0 ? ETIMEDOUT : 0;
}

/* The TLS client handshake on c's non-blocking socket, within tmo. */
static int start_tls(tcp_ctx *c, unsigned tmo)
{
    if (tls_transport.attach(c->fd, 0, NULL, tls_error, sizeof tls_error) != 0)
        return EPROTO;
    c->tls = 1;
    for (;;) {
        int want_write = 0;
        int r = tls_transport.secure(c->fd, &want_write, tls_error, sizeof tls_error);
        if (r == 1)
            return 0;
        if (r < 0)
            return EPROTO;
        int rc = wait_fd(c->fd, want_write ? POLLOUT : POLLIN, tmo);
        if (rc)
            return rc;
    }
}

static int cb_socket(void **ctx, void *setup_ctx)
{
    (void)setup_ctx;
    tcp_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        int e = errno;
        free(c);
        return e;
    }
    *ctx = c;
    return 0;
}

static int cb_close(void *ctx)
{
    tcp_ctx *c = ctx;
    int rc = 0;
    if (c->tls)
        tls_transport.close(c->fd);
    else
        rc = close(c->fd) == 0 ? 0 : errno;
    free(c);
    return rc;
}

static int cb_listen(void *ctx, void *addr, int *len, int backlog)
{
    tcp_ctx *c = ctx;
    int on = 1;
    socklen_t sl = (socklen_t)*len;
    if (setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
        return errno;
    if (bind(c->fd, addr, sl) != 0 || listen(c->fd, backlog) != 0)
        return errno;
    if (getsockname(c->fd, addr, &sl) != 0)
        return errno;
    *len = (int)sl;
    return 0;
}

static int cb_accept(void **ctx, void *addr, int *len, unsigned tmo)
{
    tcp_ctx *listener = *ctx;
    int rc = wait_fd(listener->fd, POLLIN, tmo);
    if (rc)
        return rc;
    socklen_t sl = (socklen_t)*len;
    int fd = accept4(listener->fd, addr, &sl, SOCK_CLOEXEC);
    if (fd < 0)
        return errno;
    tcp_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return ENOMEM;
    }
    c->fd = fd;
    *len = (int)sl;
    *ctx = c;
    handshake_diag_begin(addr, *len, 0);
    return 0;
}

static int cb_connect(void *ctx, void *addr, int len, unsigned tmo)
{
    tcp_ctx *c = ctx;
    handshake_diag_begin(addr, len, 1);
    int flags = fcntl(c->fd, F_GETFL);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return errno;
    int rc = 0;
    if (connect(c->fd, addr, (socklen_t)len) != 0) {
        if (errno != EINPROGRESS) {
            rc = errno;
        } else if ((rc = wait_fd(c->fd, POLLOUT, tmo)) == 0) {
            socklen_t sl = sizeof rc;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &rc, &sl) != 0)
                rc = errno;
        }
    }
    const struct sockaddr_in *in = addr;
    if (rc == 0 && use_tls && len >= (int)sizeof *in && ntohs(in->sin_port) != epmd_port())
        rc = start_tls(c, tmo);
    if (fcntl(c->fd, F_SETFL, flags) < 0 && rc == 0)
        rc = errno;
    if (rc)
        handshake_diag_connect_error(rc);
    return rc;
}

/* Adds our extra capability flags to a 'N' (send_name / send_challenge)
 * packet: [len:16]['N'][flags:64]... */
static const char *patch_flags(tcp_ctx *c, const char *buf, ssize_t len, char *copy)
{
    if (c->handshake_done || len < HANDSHAKE_HEADER + 9 || len > 1024 ||
        buf[HANDSHAKE_HEADER] != 'N')
        return buf;
    memcpy(copy, buf, (size_t)len);
    unsigned char *flags = (unsigned char *)copy + HANDSHAKE_HEADER + 1;
    uint64_t f = 0;
    for (int i = 0; i < 8; i++)
        f = (f << 8) | flags[i];
    f |= DFLAG_DIST_MONITOR_NAME;
    for (int i = 7; i >= 0; i--, f >>= 8)
        flags[i] = (unsigned char)(f & 0xff);
    return copy;
}

static int cb_write(void *ctx, const char *buf, ssize_t *len, unsigned tmo)
{
    tcp_ctx *c = ctx;
    char copy[1024];
    const char *data = patch_flags(c, buf, *len, copy);
    int rc = wait_fd(c->fd, POLLOUT, tmo);
    if (rc)
        return rc;
    ssize_t n;
    if (c->tls) {
        struct iovec iov = {(void *)data, (size_t)*len};
        n = tls_transport.writev(c->fd, &iov, 1);
    } else {
        do {
            n = send(c->fd, data, (size_t)*len, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
    }
    if (n < 0)
        return errno;
    if (!c->handshake_done)
        handshake_diag_tx(data, (size_t)n);
    *len = n;
    return 0;
}

static int cb_read(void *ctx, char *buf, ssize_t *len, unsigned tmo)
{
    tcp_ctx *c = ctx;
    int rc = c->tls && tls_transport.pending(c->fd) > 0 ? 0 : wait_fd(c->fd, POLLIN, tmo);
    if (rc)
        return rc;
    ssize_t n;
    if (c->tls) {
        n = tls_transport.read(c->fd, buf, (size_t)*len);
    } else {
        do {
            n = recv(c->fd, buf, (size_t)*len, 0);
        } while (n < 0 && errno == EINTR);
    }
    if (n < 0)
        return errno;
    if (!c->handshake_done && n > 0)
        handshake_diag_rx(buf, (size_t)n);
    *len = n;
    return 0;
}

static int cb_header_size(void *ctx, int *sz)
{
    /* inet_tls_dist's handshake packets carry a 4-byte length */
    *sz = ((tcp_ctx *)ctx)->tls ? 4 : HANDSHAKE_HEADER;
    return 0;
}

static int cb_handshake_complete(void *ctx)
{
    tcp_ctx *c = ctx;
    int on = 1;
    c->handshake_done = 1;
    handshake_diag_done();
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    return 0;
}

static int cb_get_fd(void *ctx, int *fd)
{
    *fd = ((tcp_ctx *)ctx)->fd;
    return 0;
}

ei_socket_callbacks tcp_socket_callbacks = {
    .flags = EI_SCLBK_FLG_FULL_IMPL,
    .socket = cb_socket,
    .close = cb_close,
    .listen = cb_listen,
    .EI_ACCEPT_NAME = cb_accept,
    .connect = cb_connect,
    .writev = NULL,
    .write = cb_write,
    .read = cb_read,
    .handshake_packet_header_size = cb_header_size,
    .connect_handshake_complete = cb_handshake_complete,
    .accept_handshake_complete = cb_handshake_complete,
    .get_fd = cb_get_fd,
};
