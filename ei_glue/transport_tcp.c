/* transport_tcp.c - plain TCP: recv/sendmsg on the non-blocking socket. */
#include "ei_glue/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int tcp_attach(int fd, int incoming, const char *server_name, char *why, size_t why_size)
{
    (void)incoming;
    (void)server_name;
    (void)why;
    (void)why_size;
    int on = 1;
    /* best effort: a socket without them still works */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    return 0;
}

static int tcp_secure(int fd, int *want_write, char *why, size_t why_size)
{
    (void)fd;
    (void)why;
    (void)why_size;
    *want_write = 0;
    return 1; /* nothing to negotiate */
}

static ssize_t tcp_read(int fd, char *buf, size_t len)
{
    ssize_t n;
    do {
        n = recv(fd, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n;
}

static ssize_t tcp_writev(int fd, const struct iovec *iov, int iovcnt)
{
    struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;
    do {
        n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n;
}

static size_t tcp_pending(int fd)
{
    (void)fd;
    return 0; /* the kernel buffers; epoll reports it */
}

static void tcp_shutdown(int fd)
{
    shutdown(fd, SHUT_RDWR);
}

static void tcp_close(int fd)
{
    close(fd);
}

const transport_ops tcp_transport = {
    .name = "tcp",
    .handshake_header = 2,
    .short_read_drains = 1,
    .attach = tcp_attach,
    .secure = tcp_secure,
    .read = tcp_read,
    .writev = tcp_writev,
    .pending = tcp_pending,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};
