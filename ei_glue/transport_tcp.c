/* transport_tcp.c - plain TCP: recv/sendmsg on the non-blocking socket. */
#include "ei_glue/transport.h"

#include <ei.h>
#include <errno.h>
#include <sys/socket.h>

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
    /* The fd came from ei_accept/ei_connect: ei frees its socket context. */
    ei_close_connection(fd);
}

const transport_ops tcp_transport = {
    .name = "tcp",
    .read = tcp_read,
    .writev = tcp_writev,
    .pending = tcp_pending,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
};
