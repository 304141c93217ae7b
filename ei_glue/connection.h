/*
 * connection.h - one connection per peer node, after the handshake.
 *
 * Threads: the handshake thread and connector threads adopt new connections; the pollers
 * (io_loop.c: idle schedulers, or the I/O thread) read, answer ticks, flush
 * queued output and close, one poller at a time per connection; any thread
 * may write a frame. A writer whose connection has nothing queued writes
 * straight to the socket (non-blocking); what does not fit is queued and
 * flushed by a poller on EPOLLOUT, so frames keep their order.
 *
 * Peers: a peer is either idle, connecting (frames wait in its pending
 * queue) or up. Sending to an idle peer starts a connection, as the BEAM
 * auto-connects on a send. As in the BEAM's net_kernel, one connection
 * attempt at a time owns a peer that is not up (an incoming handshake marks
 * it too), so a second connection never comes up beside the first: when
 * both sides dial at once, the attempt initiated by the node with the
 * greater name wins before either connection is up (docs/protocol.md).
 */
#ifndef PH_CONNECTION_H
#define PH_CONNECTION_H

#include "ei_glue/transport.h"

#include <ei.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct chunk {
    struct chunk *next;
    size_t len;
    size_t off;
    char data[];
} chunk;

typedef struct conn {
    uint32_t node;
    int fd;
    const transport_ops *transport;
    int incoming;
    _Atomic int refs;
    pthread_mutex_t out_lock;
    chunk *out_head, *out_tail;
    size_t out_bytes;
    int epollout_armed;
    int closed;
    _Atomic uint64_t last_write_ms;
    _Atomic uint64_t last_read_ms;
    /* Its epoll registration's data (io_loop.c): 0 until registered. */
    _Atomic uint64_t io_token;
    /* Read requests: the poller whose request raises it from 0 reads c,
     * and reads again for each request made meanwhile (io_loop.c). */
    _Atomic unsigned read_req;
    /* Set by a poller that saw the peer's end of stream or an error: its
     * reader reads to the end instead of stopping at a short read. */
    _Atomic int read_to_eof;
    /* Its reader's only (the read_req owner): the shared read buffer, and
     * a big frame being read into a block of its own (io_loop.c): the
     * bytes so far, the block's size, the frame's (header included). */
    char *rbuf;
    size_t rlen, rcap;
    char *fblock;
    size_t fhave, fcap, ftotal;
    /* Under io_loop.c's io_lock */
    int io_index;
} conn;

typedef struct dist_config {
    unsigned net_ticktime; /* seconds */
    unsigned connect_timeout_ms;
    /* The longest frame a peer may send (bytes after the 4-byte length);
     * a longer one closes its connection. Bounds what one connection's
     * reader holds: at most about twice this. 0: DIST_DEFAULT_MAX_FRAME. */
    size_t max_frame_bytes;
    /* Incoming handshakes: each must finish within handshake_timeout_ms
     * (0: 7000, the BEAM's net_setuptime); at most max_pending_handshakes
     * at once (0: 1024), beyond which the oldest is dropped. */
    unsigned handshake_timeout_ms;
    unsigned max_pending_handshakes;
    /* Plain TCP, or TLS (transport_tls_init ran). NULL: TCP. */
    const transport_ops *transport;
} dist_config;

#define DIST_DEFAULT_MAX_FRAME ((size_t)512 << 20)

int connections_init(ei_cnode *ec, const dist_config *config);
/* Starts the I/O thread and the acceptor on listen_fd. */
int connections_start(int listen_fd);
/* Flushes queued output (bounded wait), closes every connection, stops
 * the threads. */
void connections_stop(void);

/* Queues one data frame (control + optional message, both versioned) to
 * node, connecting first if needed. 0 if queued, -1 if dropped. */
int connection_send(uint32_t node, const char *ctl, size_t ctl_len, const char *msg,
                    size_t msg_len);
/* The same with the message in n pieces (n <= REMOTE_MAX_PIECES), which
 * follow each other in the frame. */
struct iovec;
int connection_send_pieces(uint32_t node, const char *ctl, size_t ctl_len, const struct iovec *msg,
                           int n);
/* Corking (per thread, nestable): while corked, frames this thread writes
 * are queued and each connection is flushed once at uncork. */
void connection_cork(void);
void connection_uncork(void);
/* Flushes what this thread has corked so far, staying corked. */
void connection_flush_corked(void);
/* Starts connecting to node unless connected or connecting. */
void connection_request(uint32_t node);
/* Nonzero when node has an established connection. */
int connection_is_up(uint32_t node);
/* A connection attempt's identity (never 0). */
uint64_t connection_new_token(void);
/* What an incoming handshake from node answers, as net_kernel's
 * accept_pending decides; the attempt is known by token from then on. */
typedef enum accept_verdict {
    ACCEPT_OK,              /* "ok": the attempt owns the node now */
    ACCEPT_OK_SIMULTANEOUS, /* "ok_simultaneous": it took over our own dial */
    ACCEPT_NOK,             /* "nok": our own attempt wins (greater name) */
    ACCEPT_ALIVE,           /* "alive": we hold a connection; ask the peer */
    ACCEPT_BUSY,            /* another handshake asks already: close */
} accept_verdict;
accept_verdict connection_accept_pending(uint32_t node, uint64_t token);
/* Nonzero while the attempt token still owns node (not taken over): a
 * dialer answers "alive" with it, and retries only while it holds. */
int connection_owns_attempt(uint32_t node, uint64_t token);
/* Names of connected nodes, for status and tests: calls fn per node. */
void connections_for_each(void (*fn)(uint32_t node, void *arg), void *arg);

/* Handshake side: a finished handshake hands its fd (set up by t) over. It
 * becomes the node's connection if the attempt still owns the node; an
 * incoming one whose peer answered "true" to our "alive" first closes the
 * connection we held, with a nodedown. Otherwise the fd is closed. */
void connection_adopt(int fd, uint32_t node, uint64_t token, int incoming, const transport_ops *t);
/* The attempt gave up (or the peer answered "false" to our "alive"). If it
 * owned the node, the frames waiting are dropped and a nodedown follows;
 * not_running: the node is not registered with epmd or refused the TCP
 * connection (logged at info, not as a warning). */
void connection_attempt_failed(uint32_t node, uint64_t token, int not_running);

/* I/O side (io_loop.c) */
int io_loop_start(void);
void io_loop_stop(void);
int io_register(conn *c);
void io_arm_write(conn *c); /* called with c->out_lock held */
void io_close_later(conn *c);
void conn_put(conn *c);
/* Writes a chunk (takes ownership). 0, or -1 if the connection is closed. */
int conn_write(conn *c, chunk *ch);
/* Flushes queued output without blocking; with out_lock held. -1 on a
 * socket error. */
int conn_flush_locked(conn *c);
/* Called by the I/O thread once it has closed c (or by connection_adopt
 * for a connection the I/O thread could not take). */
void connection_closed(conn *c);
/* The net_ticktime in force. */
unsigned connections_ticktime(void);
/* The max_frame_bytes in force. */
size_t connections_max_frame(void);
void connections_for_each_conn(void (*fn)(conn *c, void *arg), void *arg);

chunk *chunk_new(size_t len);
void chunk_free(chunk *ch);

/* The handshake thread and the connector threads (handshake.c) */
int handshake_start(ei_cnode *ec, int listen_fd, const dist_config *config);
void handshake_stop(void);
int handshake_connect_async(uint32_t node, uint64_t token);

#endif
