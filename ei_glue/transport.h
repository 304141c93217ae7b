/*
 * transport.h - the byte stream of one distribution connection, from the
 * handshake on.
 *
 * The handshake (handshake.c), framing, the I/O loop and the writers only
 * talk to a transport_ops, so TLS (transport_tls.c, OpenSSL) replaces plain
 * TCP (transport_tcp.c) without touching them. A transport keeps whatever
 * it needs per connection (a TLS session) keyed by the socket's fd, from
 * attach to close.
 */
#ifndef PH_TRANSPORT_H
#define PH_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct transport_ops {
    const char *name;
    /* Bytes of the length before each handshake packet: 2 over TCP, 4 over
     * TLS (what the BEAM's inet_tcp_dist and inet_tls_dist send). */
    int handshake_header;
    /* 1 when a read that returns fewer bytes than asked for has drained
     * the socket (TCP's recv); 0 when it may stop early (TLS: one record
     * per read). The I/O loop is edge-triggered: without a later arrival it
     * hears of no bytes left behind, so it reads on to EAGAIN unless this
     * is 1. */
    int short_read_drains;
    /* Sets fd (a connected, non-blocking socket) up before the handshake:
     * incoming as the server, else as the client; server_name: the host the
     * peer's certificate must name, or NULL. 0, or -1 with why filled. */
    int (*attach)(int fd, int incoming, const char *server_name, char *why, size_t why_size);
    /* Drives the transport's own handshake without blocking: 1 done, 0 not
     * yet (*want_write: it waits to write rather than to read), -1 failed
     * (why says why). */
    int (*secure)(int fd, int *want_write, char *why, size_t why_size);
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
    /* Closes the socket and frees what attach set up for it. */
    void (*close)(int fd);
    /* After a read or write failed: 1 and why when the transport knows
     * more than errno (a TLS alert from the peer), else 0. May be NULL. */
    int (*failure)(int fd, char *why, size_t why_size);
} transport_ops;

extern const transport_ops tcp_transport;
extern const transport_ops tls_transport;

/* TLS distribution, with the options of OTP's ssl_dist_optfile. */
typedef struct tls_options {
    const char *certfile;     /* this node's certificate (PEM; may hold the chain) */
    const char *keyfile;      /* its private key (PEM); NULL: in certfile */
    const char *cacertfile;   /* the CAs a peer's certificate must chain to */
    int verify_peer;          /* 1: verify_peer (default), 0: verify_none */
    int fail_if_no_peer_cert; /* incoming: refuse a peer that shows no certificate */
    int verify_server_name;   /* outgoing: the certificate must name the node's host */
} tls_options;

/* Loads the certificates and key; 0, or -1 with a message in err. */
int transport_tls_init(const tls_options *o, char *err, size_t err_size);
void transport_tls_shutdown(void);

#endif
