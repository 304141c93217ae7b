/* connection.c - the peer table, adopting connections after a handshake,
 * and writing frames; see connection.h. */
#include "ei_glue/connection.h"

#include "ei_glue/framing.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/bigbuf.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/process.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/route.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/timers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PENDING_BYTES (256u << 20)
#define MAX_IOV 64

typedef enum peer_state { PEER_IDLE, PEER_CONNECTING, PEER_UP } peer_state;

/* A connection attempt (a connector thread's dial, or an incoming
 * handshake) is known by its token. As in the BEAM's net_kernel, at most one
 * attempt owns a peer that is not up (owner), and at most one incoming
 * handshake waits to replace the connection of a peer that is (up_pending):
 * a second connection to a node is never adopted beside the first. */
typedef struct peer {
    struct peer *next;
    uint32_t node;
    peer_state state;
    conn *conn;
    uint64_t owner;      /* CONNECTING: the attempt that may adopt; 0 before start */
    int owner_incoming;  /* the owner is an incoming handshake, not our dial */
    uint64_t up_pending; /* UP: the incoming handshake answered "alive", or 0 */
    chunk *pending_head, *pending_tail;
    size_t pending_bytes;
    /* 0 while only an incoming handshake that has not proved the cookie
     * made it (peer_forget_locked); 1 once wanted here (a send, a
     * connection request) or connected. */
    int known;
} peer;

#define PEER_BUCKETS 256
static pthread_mutex_t peers_lock = PTHREAD_MUTEX_INITIALIZER;
static peer *buckets[PEER_BUCKETS];
static dist_config config;
static int stopping;
static int started; /* connections_start ran: connecting out is possible */
static ei_cnode *cnode;
static _Atomic uint64_t next_token = 1;
/* Peers with known == 0, under peers_lock. Each is owned by one pending
 * incoming handshake, so at most max_pending_handshakes: a flood of made-up
 * names does not grow the table. */
static unsigned n_unproven;

uint64_t connection_new_token(void)
{
    return atomic_fetch_add(&next_token, 1);
}

/* Starts a dial owned by p (peers_lock held): its token, or 0 when dialing
 * must wait for connections_start. */
static uint64_t dial_locked(peer *p)
{
    p->state = PEER_CONNECTING;
    p->owner = started ? connection_new_token() : 0;
    p->owner_incoming = 0;
    return p->owner;
}

/* Chunks are bigbufs: a multi-megabyte frame's copy is a mapping of its
 * own, given back when it has been written. */
chunk *chunk_new(size_t len)
{
    chunk *ch = bigbuf_alloc(sizeof *ch + len);
    if (ch) {
        ch->next = NULL;
        ch->len = len;
        ch->off = 0;
    }
    return ch;
}

void chunk_free(chunk *ch)
{
    bigbuf_free(ch);
}

/* A chunk holding the bytes of iov[0..n) from skip on (total: their sum). */
static chunk *chunk_from(const struct iovec *iov, int n, size_t total, size_t skip)
{
    chunk *ch = chunk_new(total - skip);
    if (!ch)
        return NULL;
    char *out = ch->data;
    for (int i = 0; i < n; i++) {
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(out, (const char *)iov[i].iov_base + skip, len - skip);
        out += len - skip;
        skip = 0;
    }
    return ch;
}

/* Appends ch to the list head/tail and adds its length to *bytes. */
static void chunk_append(chunk **head, chunk **tail, size_t *bytes, chunk *ch)
{
    if (*tail)
        (*tail)->next = ch;
    else
        *head = ch;
    *tail = ch;
    *bytes += ch->len;
}

static void free_chunks(chunk *ch)
{
    while (ch) {
        chunk *next = ch->next;
        chunk_free(ch);
        ch = next;
    }
}

/* The peer entry of node; create: made if missing, not known yet. */
static peer *peer_find_locked(uint32_t node, int create)
{
    peer **b = &buckets[node % PEER_BUCKETS];
    for (peer *p = *b; p; p = p->next)
        if (p->node == node)
            return p;
    if (!create)
        return NULL;
    peer *p = calloc(1, sizeof *p);
    if (p) {
        p->node = node;
        p->next = *b;
        *b = p;
        n_unproven++;
    }
    return p;
}

/* The node is wanted here, or connected: its entry stays. */
static void peer_keep_locked(peer *p)
{
    if (!p->known) {
        p->known = 1;
        n_unproven--;
    }
}

/* The peer wanted here: its entry, made if missing, or NULL. */
static peer *peer_want_locked(uint32_t node)
{
    peer *p = peer_find_locked(node, 1);
    if (p)
        peer_keep_locked(p);
    return p;
}

/* Drops the entry of a peer that is not known (an incoming handshake made
 * it and ended before proving the cookie): names that peers claim without
 * authenticating do not pile up. No local process links to or monitors
 * such a node (that takes a send, which keeps it), and nothing waits for it. */
static void peer_forget_locked(peer *p)
{
    for (peer **at = &buckets[p->node % PEER_BUCKETS]; *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            n_unproven--;
            free(p);
            return;
        }
}

static void collect_peers(metrics_out *out);

int connections_init(ei_cnode *ec, const dist_config *cfg)
{
    if (metrics_add_collector(collect_peers) != 0)
        return -1;
    cnode = ec;
    config = *cfg;
    if (config.max_frame_bytes == 0 || config.max_frame_bytes > FRAMING_MAX_FRAME)
        config.max_frame_bytes = DIST_DEFAULT_MAX_FRAME;
    if (config.handshake_timeout_ms == 0)
        config.handshake_timeout_ms = 7000;
    if (config.max_pending_handshakes == 0)
        config.max_pending_handshakes = 1024;
    if (!config.transport)
        config.transport = &tcp_transport;
    stopping = 0;
    return 0;
}

int connections_start(int listen_fd)
{
    if (io_loop_start() != 0 || handshake_start(cnode, listen_fd, &config) != 0)
        return -1;
    /* Messages sent during start-up (static children's hooks, the hub's
     * first announcement) waited for this: connect for them now. */
    uint32_t waiting[256];
    uint64_t tokens[256];
    int n = 0;
    pthread_mutex_lock(&peers_lock);
    started = 1;
    for (int b = 0; b < PEER_BUCKETS; b++)
        for (peer *p = buckets[b]; p && n < 256; p = p->next)
            if (p->state == PEER_CONNECTING && p->owner == 0) {
                waiting[n] = p->node;
                tokens[n++] = dial_locked(p);
            }
    pthread_mutex_unlock(&peers_lock);
    for (int i = 0; i < n; i++)
        if (handshake_connect_async(waiting[i], tokens[i]) != 0)
            connection_attempt_failed(waiting[i], tokens[i], 0);
    return 0;
}

unsigned connections_ticktime(void)
{
    return config.net_ticktime;
}

size_t connections_max_frame(void)
{
    return config.max_frame_bytes;
}

/* --- metrics ------------------------------------------------------------ */

METRIC_COUNTER(m_bytes_out, "phnode_dist_sent_bytes_total", "",
               "Bytes written to distribution connections (frames and ticks).");
METRIC_COUNTER(m_frames_out, "phnode_dist_frames_sent_total", "",
               "Distribution frames queued or written (not counting ticks).");
METRIC_COUNTER(m_conn_in, "phnode_dist_connections_established_total", "direction=\"incoming\"",
               "Distribution connections established, by who dialed.");
METRIC_COUNTER(m_conn_out, "phnode_dist_connections_established_total", "direction=\"outgoing\"",
               "Distribution connections established, by who dialed.");
METRIC_COUNTER(m_conn_closed, "phnode_dist_connections_closed_total", "",
               "Distribution connections closed (by either side, lost, or replaced).");
METRIC_COUNTER(m_dropped_frames, "phnode_dist_dropped_frames_total", "",
               "Frames dropped because the peer could not be reached or its queue was full.");

static void collect_peers(metrics_out *out)
{
    unsigned n[3] = {0, 0, 0};
    uint64_t queued = 0;
    pthread_mutex_lock(&peers_lock);
    for (int b = 0; b < PEER_BUCKETS; b++)
        for (peer *p = buckets[b]; p; p = p->next) {
            n[p->state]++;
            queued += p->pending_bytes;
        }
    unsigned unproven = n_unproven;
    pthread_mutex_unlock(&peers_lock);
    metrics_out_family(out, "phnode_dist_peers", METRIC_TYPE_GAUGE,
                       "Known peer nodes by connection state.");
    metrics_out_sample(out, "phnode_dist_peers", "state=\"idle\"", n[PEER_IDLE]);
    metrics_out_sample(out, "phnode_dist_peers", "state=\"connecting\"", n[PEER_CONNECTING]);
    metrics_out_sample(out, "phnode_dist_peers", "state=\"up\"", n[PEER_UP]);
    metrics_out_family(out, "phnode_dist_unauthenticated_peers", METRIC_TYPE_GAUGE,
                       "Peer entries made by incoming handshakes that have not proved the cookie "
                       "yet (at most max_pending_handshakes).");
    metrics_out_sample(out, "phnode_dist_unauthenticated_peers", "", unproven);
    metrics_out_family(out, "phnode_dist_pending_bytes", METRIC_TYPE_GAUGE,
                       "Bytes waiting for connections that are not up yet.");
    metrics_out_sample(out, "phnode_dist_pending_bytes", "", (double)queued);
}

/* --- writing ------------------------------------------------------------ */

int conn_flush_locked(conn *c)
{
    while (c->out_head) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (chunk *ch = c->out_head; ch && n < MAX_IOV; ch = ch->next, n++) {
            iov[n].iov_base = ch->data + ch->off;
            iov[n].iov_len = ch->len - ch->off;
        }
        ssize_t w = c->transport->writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        metric_add(&m_bytes_out, (uint64_t)w);
        size_t left = (size_t)w;
        c->out_bytes -= left;
        while (left > 0 && c->out_head) {
            chunk *ch = c->out_head;
            size_t rest = ch->len - ch->off;
            if (left < rest) {
                ch->off += left;
                left = 0;
                break;
            }
            left -= rest;
            c->out_head = ch->next;
            if (!c->out_head)
                c->out_tail = NULL;
            chunk_free(ch);
        }
        if (c->out_head && (size_t)w == 0)
            return 0;
    }
    return 0;
}

#define CORK_MAX 16
#define CORK_BIG_FRAME (64 * 1024)
static _Thread_local struct {
    int depth;
    int n;
    conn *conns[CORK_MAX];
} cork;

void connection_cork(void)
{
    cork.depth++;
}

static void flush_now(conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    int rc = c->closed ? 0 : conn_flush_locked(c);
    if (rc == 0 && c->out_head && !c->closed)
        io_arm_write(c);
    pthread_mutex_unlock(&c->out_lock);
    if (rc != 0) {
        LOG_W("dist", "write to %s failed: %s", atom_text(c->node), strerror(errno));
        io_close_later(c);
    }
}

void connection_flush_corked(void)
{
    for (int i = 0; i < cork.n; i++) {
        flush_now(cork.conns[i]);
        conn_put(cork.conns[i]);
    }
    cork.n = 0;
}

void connection_uncork(void)
{
    if (--cork.depth > 0)
        return;
    connection_flush_corked();
}

/* While corked: remember c for the flush at uncork; 0 if it will be
 * flushed then, -1 if the caller must flush now (cork list full). */
static int cork_add(conn *c)
{
    for (int i = 0; i < cork.n; i++)
        if (cork.conns[i] == c)
            return 0;
    if (cork.n == CORK_MAX)
        return -1;
    atomic_fetch_add(&c->refs, 1);
    cork.conns[cork.n++] = c;
    return 0;
}

int conn_write(conn *c, chunk *ch)
{
    pthread_mutex_lock(&c->out_lock);
    if (c->closed) {
        pthread_mutex_unlock(&c->out_lock);
        chunk_free(ch);
        return -1;
    }
    size_t len = ch->len;
    chunk_append(&c->out_head, &c->out_tail, &c->out_bytes, ch);
    /* Corking batches small frames; a big one goes out at once, so the
     * peer can start on it while this thread does the rest of its work. */
    if (cork.depth > 0 && len < CORK_BIG_FRAME && !c->epollout_armed && cork_add(c) == 0) {
        atomic_store_explicit(&c->last_write_ms, monotonic_ms(), memory_order_relaxed);
        pthread_mutex_unlock(&c->out_lock);
        return 0;
    }
    int rc = conn_flush_locked(c);
    if (rc == 0 && c->out_head)
        io_arm_write(c);
    atomic_store_explicit(&c->last_write_ms, monotonic_ms(), memory_order_relaxed);
    pthread_mutex_unlock(&c->out_lock);
    if (rc != 0) {
        LOG_W("dist", "write to %s failed: %s", atom_text(c->node), strerror(errno));
        io_close_later(c);
    }
    return 0;
}

/* --- sending ------------------------------------------------------------ */

/* A frame whose message is at least this big is written from the caller's
 * bytes when nothing waits before it on the connection: only what the
 * socket does not take is copied (and queued). Smaller frames are copied
 * into one chunk, which corking can batch. */
#define DIRECT_MIN (64 * 1024)

static void write_failed(conn *c)
{
    LOG_W("dist", "write to %s failed: %s", atom_text(c->node), strerror(errno));
    io_close_later(c);
}

/* Writes the frame iov[0..n) (total bytes) to c, straight from the
 * caller's memory as far as the socket takes it. 0, or -1 if c is closed
 * (or was closed: a frame that cannot be finished ends the connection). */
static int conn_write_direct(conn *c, const struct iovec *iov, int n, size_t total)
{
    pthread_mutex_lock(&c->out_lock);
    if (c->closed) {
        pthread_mutex_unlock(&c->out_lock);
        return -1;
    }
    size_t done = 0;
    int rc = conn_flush_locked(c); /* what waits goes first */
    if (rc == 0 && !c->out_head) {
        ssize_t w = c->transport->writev(c->fd, iov, n);
        if (w >= 0) {
            done = (size_t)w;
            metric_add(&m_bytes_out, (uint64_t)w);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            rc = -1;
        }
    }
    if (rc == 0 && done < total) {
        chunk *ch = chunk_from(iov, n, total, done);
        if (ch) {
            chunk_append(&c->out_head, &c->out_tail, &c->out_bytes, ch);
            io_arm_write(c);
        } else {
            /* Part of the frame may be out: the stream cannot go on. */
            LOG_E("dist", "out of memory queueing a frame for %s; closing the connection",
                  atom_text(c->node));
            metric_inc(&m_dropped_frames);
            errno = ENOMEM;
            rc = -1;
        }
    }
    atomic_store_explicit(&c->last_write_ms, monotonic_ms(), memory_order_relaxed);
    pthread_mutex_unlock(&c->out_lock);
    if (rc != 0)
        write_failed(c);
    return 0;
}

int connection_send(uint32_t node, const char *ctl, size_t ctl_len, const char *msg, size_t msg_len)
{
    struct iovec piece = {(void *)msg, msg_len};
    return connection_send_pieces(node, ctl, ctl_len, &piece, msg_len ? 1 : 0);
}

int connection_send_pieces(uint32_t node, const char *ctl, size_t ctl_len, const struct iovec *msg,
                           int n)
{
    if (n < 0 || n > REMOTE_MAX_PIECES)
        return -1;
    size_t msg_len = 0;
    for (int i = 0; i < n; i++)
        msg_len += msg[i].iov_len;
    unsigned char hdr[FRAMING_HEADER_LEN];
    framing_header(hdr, ctl_len + msg_len);
    struct iovec iov[2 + REMOTE_MAX_PIECES] = {{hdr, sizeof hdr}, {(void *)ctl, ctl_len}};
    int n_iov = 2;
    for (int i = 0; i < n; i++)
        if (msg[i].iov_len)
            iov[n_iov++] = msg[i];
    size_t total = FRAMING_HEADER_LEN + ctl_len + msg_len;
    int direct = msg_len >= DIRECT_MIN;
    chunk *ch = NULL;
    if (!direct && !(ch = chunk_from(iov, n_iov, total, 0))) {
        LOG_E("dist", "out of memory queueing a frame for %s", atom_text(node));
        metric_inc(&m_dropped_frames);
        return -1;
    }
    metric_inc(&m_frames_out);

    uint64_t dial = 0;
    conn *c = NULL;
    pthread_mutex_lock(&peers_lock);
    peer *p = stopping ? NULL : peer_want_locked(node);
    if (!p) {
        pthread_mutex_unlock(&peers_lock);
        chunk_free(ch);
        return -1;
    }
    if (p->state == PEER_UP) {
        c = p->conn;
        atomic_fetch_add(&c->refs, 1);
    } else if (p->pending_bytes + total > MAX_PENDING_BYTES) {
        pthread_mutex_unlock(&peers_lock);
        LOG_W("dist", "dropping a frame for %s: %zu bytes already wait for the connection",
              atom_text(node), p->pending_bytes);
        metric_inc(&m_dropped_frames);
        chunk_free(ch);
        return -1;
    } else {
        /* Waits for the connection: a copy, even of a big frame. */
        if (!ch && !(ch = chunk_from(iov, n_iov, total, 0))) {
            pthread_mutex_unlock(&peers_lock);
            LOG_E("dist", "out of memory queueing a frame for %s", atom_text(node));
            metric_inc(&m_dropped_frames);
            return -1;
        }
        chunk_append(&p->pending_head, &p->pending_tail, &p->pending_bytes, ch);
        ch = NULL;
        if (p->state == PEER_IDLE)
            dial = dial_locked(p);
    }
    pthread_mutex_unlock(&peers_lock);
    if (dial && handshake_connect_async(node, dial) != 0)
        connection_attempt_failed(node, dial, 0);
    if (c) {
        if (ch)
            conn_write(c, ch);
        else
            conn_write_direct(c, iov, n_iov, total);
        conn_put(c);
    }
    return 0;
}

void connection_request(uint32_t node)
{
    uint64_t dial = 0;
    pthread_mutex_lock(&peers_lock);
    peer *p = stopping ? NULL : peer_want_locked(node);
    if (p && p->state == PEER_IDLE)
        dial = dial_locked(p);
    pthread_mutex_unlock(&peers_lock);
    if (dial && handshake_connect_async(node, dial) != 0)
        connection_attempt_failed(node, dial, 0);
}

int connection_is_up(uint32_t node)
{
    pthread_mutex_lock(&peers_lock);
    peer *p = peer_find_locked(node, 0);
    int up = p && p->state == PEER_UP;
    pthread_mutex_unlock(&peers_lock);
    return up;
}

void connections_for_each(void (*fn)(uint32_t node, void *arg), void *arg)
{
    uint32_t nodes[1024];
    size_t n = 0;
    pthread_mutex_lock(&peers_lock);
    for (int b = 0; b < PEER_BUCKETS; b++)
        for (peer *p = buckets[b]; p && n < 1024; p = p->next)
            if (p->state == PEER_UP)
                nodes[n++] = p->node;
    pthread_mutex_unlock(&peers_lock);
    for (size_t i = 0; i < n; i++)
        fn(nodes[i], arg);
}

/* --- adopting and losing connections ------------------------------------ */

static conn *conn_new(int fd, uint32_t node, int incoming, const transport_ops *t)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->transport = t;
    c->node = node;
    c->incoming = incoming;
    c->io_index = -1;
    atomic_init(&c->refs, 1); /* the peer table's */
    pthread_mutex_init(&c->out_lock, NULL);
    uint64_t now = monotonic_ms();
    atomic_init(&c->last_read_ms, now);
    atomic_init(&c->last_write_ms, now);
    atomic_init(&c->io_token, 0);
    atomic_init(&c->read_req, 0);
    atomic_init(&c->read_to_eof, 0);
    return c;
}

void conn_put(conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    free_chunks(c->out_head);
    free(c->rbuf);
    signal_block_free(c->fblock);
    pthread_mutex_destroy(&c->out_lock);
    free(c);
}

/* Two attempts at once: the one initiated by the node with the greater name
 * wins (dist_util's rule; strcmp orders UTF-8 names as Erlang orders atoms). */
static int we_are_greater(uint32_t node)
{
    return strcmp(runtime_node_name(), atom_text(node)) > 0;
}

accept_verdict connection_accept_pending(uint32_t node, uint64_t token)
{
    accept_verdict v;
    pthread_mutex_lock(&peers_lock);
    peer *p = stopping ? NULL : peer_find_locked(node, 1);
    if (!p) {
        v = ACCEPT_BUSY;
    } else if (p->state == PEER_UP) {
        /* Ask the peer whether it still has this connection; at most one
         * handshake asks at a time. */
        v = p->up_pending ? ACCEPT_BUSY : ACCEPT_ALIVE;
        if (!p->up_pending)
            p->up_pending = token;
    } else if (p->state == PEER_CONNECTING && p->owner != 0 && !p->owner_incoming) {
        if (we_are_greater(node)) {
            v = ACCEPT_NOK;
        } else {
            /* Simultaneous: this handshake takes the attempt over, and with
             * it the frames that wait. The dial it replaces sees it is no
             * longer the owner and ends without touching them. */
            p->owner = token;
            p->owner_incoming = 1;
            v = ACCEPT_OK_SIMULTANEOUS;
        }
    } else {
        /* Idle (or waiting for connections_start): sends from now on wait
         * for this handshake instead of dialing a second connection. An
         * earlier incoming handshake from the node is replaced too (net_kernel
         * would answer nok while it lasts): the peer dials again, so it gave
         * that one up (a cut in its middle, a restart), and waiting for its
         * deadline would hold the node for handshake_timeout_ms. */
        p->state = PEER_CONNECTING;
        p->owner = token;
        p->owner_incoming = 1;
        v = ACCEPT_OK;
    }
    pthread_mutex_unlock(&peers_lock);
    return v;
}

int connection_owns_attempt(uint32_t node, uint64_t token)
{
    pthread_mutex_lock(&peers_lock);
    peer *p = peer_find_locked(node, 0);
    int owns = p && p->state == PEER_CONNECTING && p->owner == token;
    pthread_mutex_unlock(&peers_lock);
    return owns;
}

/* An incoming handshake the peer confirmed ("true" to our "alive"): the
 * connection we hold is dead on its side. It goes down first, with a
 * nodedown, as net_kernel's wait_pending has it; what was in flight on it is
 * lost, and the processes that watched the node are told. The attempt then
 * owns the peer as any other; frames sent meanwhile wait for it. */
static void replace_up_connection(uint32_t node, uint64_t token)
{
    conn *old = NULL;
    pthread_mutex_lock(&peers_lock);
    peer *p = peer_find_locked(node, 0);
    if (p && p->state == PEER_UP && p->up_pending == token) {
        old = p->conn;
        p->conn = NULL;
        p->up_pending = 0;
        p->state = PEER_CONNECTING;
        p->owner = token;
        p->owner_incoming = 1;
    }
    pthread_mutex_unlock(&peers_lock);
    if (!old)
        return;
    LOG_I("dist", "%s reconnected: it had lost the connection we held; closing that one",
          atom_text(node));
    io_close_later(old);
    conn_put(old); /* the peer table's reference */
    route_nodedown(node);
}

/* The poller could not take c (io_register failed): nobody would read it
 * or see it close, so it ends here as a lost connection does (io_close, for
 * a connection never registered): closed, out of the peer table, and a
 * nodedown for what watched the node. The frames that waited for it are
 * lost with it. Takes the I/O layer's reference and the caller's. */
static void adopt_failed(conn *c)
{
    size_t lost = 0;
    pthread_mutex_lock(&c->out_lock);
    c->closed = 1;
    for (chunk *ch = c->out_head; ch; ch = ch->next)
        lost++;
    c->transport->close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&c->out_lock);
    LOG_E("dist", "cannot watch the connection to %s for input; closed it%s", atom_text(c->node),
          lost ? ", and dropped the messages waiting for it" : "");
    metric_add(&m_dropped_frames, lost);
    connection_closed(c);
    conn_put(c); /* the I/O layer's */
    conn_put(c); /* the caller's */
}

void connection_adopt(int fd, uint32_t node, uint64_t token, int incoming, const transport_ops *t)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        LOG_E("dist", "cannot make the socket to %s non-blocking", atom_text(node));
        t->close(fd);
        connection_attempt_failed(node, token, 0);
        return;
    }
    conn *c = conn_new(fd, node, incoming, t);
    if (!c) {
        t->close(fd);
        connection_attempt_failed(node, token, 0);
        return;
    }
    if (incoming)
        replace_up_connection(node, token);
    int adopted = 0;
    pthread_mutex_lock(&peers_lock);
    peer *p = stopping ? NULL : peer_find_locked(node, 0);
    if (p && p->state == PEER_CONNECTING && p->owner == token) {
        adopted = 1;
        peer_keep_locked(p);
        p->conn = c;
        p->state = PEER_UP;
        p->owner = 0;
        /* Frames that waited for the connection go first. */
        c->out_head = p->pending_head;
        c->out_tail = p->pending_tail;
        c->out_bytes = p->pending_bytes;
        p->pending_head = p->pending_tail = NULL;
        p->pending_bytes = 0;
        atomic_fetch_add(&c->refs, 1); /* the I/O thread's */
    }
    pthread_mutex_unlock(&peers_lock);

    if (!adopted) {
        /* Another attempt owns the peer (it took this one over): closing
         * this one before any frame went on it loses nothing here; the
         * peer, if it adopted it, sees it close and says nodedown. */
        LOG_I("dist", "closing a duplicate %s connection to %s", incoming ? "incoming" : "outgoing",
              atom_text(node));
        c->fd = -1;
        conn_put(c);
        t->close(fd);
        return;
    }
    metric_inc(incoming ? &m_conn_in : &m_conn_out);
    LOG_I("dist", "connected to %s (%s)", atom_text(node), incoming ? "incoming" : "outgoing");
    /* Once registered, the poller may see the peer close it and drop both
     * the peer table's and its own reference: hold one of ours meanwhile. */
    atomic_fetch_add(&c->refs, 1);
    if (io_register(c) != 0) {
        adopt_failed(c);
        return;
    }
    pthread_mutex_lock(&c->out_lock);
    if (!c->closed && conn_flush_locked(c) == 0 && c->out_head)
        io_arm_write(c);
    pthread_mutex_unlock(&c->out_lock);
    conn_put(c);
}

void connection_attempt_failed(uint32_t node, uint64_t token, int not_running)
{
    chunk *dropped = NULL;
    int owned = 0;
    pthread_mutex_lock(&peers_lock);
    peer *p = peer_find_locked(node, 0);
    if (p && p->state == PEER_UP && p->up_pending == token) {
        p->up_pending = 0; /* "false", or a failed check: ours stays up */
    } else if (p && p->state == PEER_CONNECTING && p->owner == token && !p->known) {
        peer_forget_locked(p); /* nothing waits for it, nothing watches it */
    } else if (p && p->state == PEER_CONNECTING && p->owner == token) {
        owned = 1;
        p->state = PEER_IDLE;
        p->owner = 0;
        dropped = p->pending_head;
        p->pending_head = p->pending_tail = NULL;
        p->pending_bytes = 0;
    }
    /* Otherwise another attempt took this one over, or the node is up:
     * nothing of the peer's is this attempt's to drop. */
    pthread_mutex_unlock(&peers_lock);
    if (!owned)
        return;
    if (dropped) {
        /* A node that is not running (yet) is routine at cluster start-up. */
        log_write(not_running ? LOG_INFO : LOG_WARN, "dist",
                  "cannot connect to %s%s; dropped the messages waiting for it", atom_text(node),
                  not_running ? " (not running)" : "");
        for (chunk *ch = dropped; ch; ch = ch->next)
            metric_inc(&m_dropped_frames);
    }
    free_chunks(dropped);
    /* As the BEAM: an attempt that failed after it owned the node is a
     * nodedown (links and monitors made meanwhile fire). */
    route_nodedown(node);
}

void connection_closed(conn *c)
{
    metric_inc(&m_conn_closed);
    int was_current = 0;
    pthread_mutex_lock(&peers_lock);
    peer *p = peer_find_locked(c->node, 0);
    if (p && p->conn == c) {
        p->conn = NULL;
        was_current = 1;
        if (p->up_pending) {
            /* The handshake that asked "alive" carries on as the owner. */
            p->state = PEER_CONNECTING;
            p->owner = p->up_pending;
            p->owner_incoming = 1;
            p->up_pending = 0;
        } else {
            p->state = PEER_IDLE;
        }
    }
    pthread_mutex_unlock(&peers_lock);
    if (was_current) {
        conn_put(c); /* the peer table's reference */
        LOG_I("dist", "connection to %s closed", atom_text(c->node));
        route_nodedown(c->node);
    }
}

void connections_stop(void)
{
    pthread_mutex_lock(&peers_lock);
    stopping = 1;
    started = 0;
    pthread_mutex_unlock(&peers_lock);
    handshake_stop();
    /* Let queued frames (exit signals of stopping workers) reach the peers. */
    uint64_t deadline = monotonic_ms() + 2000;
    for (;;) {
        size_t queued = 0;
        pthread_mutex_lock(&peers_lock);
        for (int b = 0; b < PEER_BUCKETS; b++)
            for (peer *p = buckets[b]; p; p = p->next)
                if (p->conn) {
                    pthread_mutex_lock(&p->conn->out_lock);
                    queued += p->conn->out_bytes;
                    pthread_mutex_unlock(&p->conn->out_lock);
                }
        pthread_mutex_unlock(&peers_lock);
        if (queued == 0 || monotonic_ms() > deadline)
            break;
        usleep(2000);
    }
    io_loop_stop();
    pthread_mutex_lock(&peers_lock);
    for (int b = 0; b < PEER_BUCKETS; b++) {
        peer *p = buckets[b];
        while (p) {
            peer *next = p->next;
            if (p->conn)
                conn_put(p->conn);
            free_chunks(p->pending_head);
            free(p);
            p = next;
        }
        buckets[b] = NULL;
    }
    n_unproven = 0;
    pthread_mutex_unlock(&peers_lock);
}
