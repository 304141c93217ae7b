/*
 * transport.h - the byte stream of one connection after the handshake.
 *
 * Framing, the I/O loop and the writers only talk to a transport_ops, so a
 * TLS transport (OpenSSL, with the handshake done through a second
 * ei_socket_callbacks table) replaces plain TCP without touching them.
 */
#ifndef PH_TRANSPORT_H
#define PH_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct transport_ops {
    const char *name;
    /* Reads up to len bytes without blocking: the count, 0 at end of
     * stream, or -1 with errno (EAGAIN: nothing now). */
    ssize_t (*read)(int fd, char *buf, size_t len);
    /* Writes from iov without blocking: the count or -1 with errno. */
    ssize_t (*writev)(int fd, const struct iovec *iov, int iovcnt);
    /* Bytes the transport already holds for reading (decrypted TLS records)
     * that the loop must consume before waiting on the fd again. */
    size_t (*pending)(int fd);
    /* Ends both directions so the I/O loop sees end of stream; safe from
     * any thread while the connection is open. */
    void (*shutdown)(int fd);
    /* Closes the connection and frees what the handshake set up for it. */
    void (*close)(int fd);
} transport_ops;

extern const transport_ops tcp_transport;

#endif
