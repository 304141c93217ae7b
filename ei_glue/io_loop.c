/*
 * io_loop.c - one epoll set over every connection. io_poll reads in bulk
 * and splits frames, hands each frame to control.c (which only decodes and
 * posts to mailboxes; no user code runs here), answers ticks, flushes
 * queued output and closes connections. It runs on whichever thread holds
 * the scheduler's poll role: usually an idle scheduler, which then runs the
 * worker itself; the I/O thread when every scheduler is busy.
 *
 * The I/O thread also sends our ticks and closes peers that stayed silent
 * for net_ticktime, whatever the schedulers are doing.
 */
#include "ei_glue/connection.h"
#include "ei_glue/control.h"
#include "ei_glue/framing.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/process.h"
#include "hub/runtime/timers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (64u * 1024u)
#define READ_ROUNDS 16
#define RBUF_KEEP (1u << 20)

static int epfd = -1, wakefd = -1;
static pthread_t thread;
static _Atomic int running;
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
static conn **conns;
static int n_conns, cap_conns;
static const char tick_bytes[4] = {0, 0, 0, 0};

int io_register(conn *c)
{
    int rc = 0;
    pthread_mutex_lock(&io_lock);
    if (n_conns == cap_conns) {
        int cap = cap_conns ? cap_conns * 2 : 16;
        conn **n = realloc(conns, (size_t)cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&io_lock);
            return -1;
        }
        conns = n;
        cap_conns = cap;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        LOG_E("io", "epoll_ctl add: %s", strerror(errno));
        rc = -1;
    } else {
        c->io_index = n_conns;
        conns[n_conns++] = c;
    }
    pthread_mutex_unlock(&io_lock);
    return rc;
}

void io_arm_write(conn *c)
{
    if (c->epollout_armed || c->io_index < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->epollout_armed = 1;
}

void io_close_later(conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    if (!c->closed && c->fd >= 0)
        c->transport->shutdown(c->fd); /* the loop sees EOF and closes */
    pthread_mutex_unlock(&c->out_lock);
}

/* The connection that delivered input last. A caller that spins waiting for
 * its reply reads it directly, which saves the epoll_wait on every arrival.
 * Only the poll-role holder touches it; io_close clears it, so the pointer
 * never outlives the I/O thread's reference. */
static conn *last_active;
/* How many arrivals in a row came on last_active: with one busy peer a
 * check reads it directly; when arrivals move between connections (many
 * peers), that recv mostly finds nothing and one epoll_wait asks all of
 * them in the same one system call. */
static unsigned hot_streak;
#define HOT_STREAK_MIN 2
/* While one connection is hot, the other connections are still asked
 * (one epoll_wait) at least this often: every 4th check, as before, cost a
 * system call (~3.5 us on the test VM) on every other call. */
#define SPIN_EPOLL_EVERY_US 250
static uint64_t last_epoll_us;

static uint64_t io_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void io_close(conn *c)
{
    if (last_active == c)
        last_active = NULL;
    pthread_mutex_lock(&c->out_lock);
    c->closed = 1;
    pthread_mutex_unlock(&c->out_lock);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    pthread_mutex_lock(&io_lock);
    if (c->io_index >= 0) {
        conns[c->io_index] = conns[--n_conns];
        conns[c->io_index]->io_index = c->io_index;
        c->io_index = -1;
    }
    pthread_mutex_unlock(&io_lock);
    c->transport->close(c->fd);
    c->fd = -1;
    connection_closed(c);
    conn_put(c); /* the I/O thread's reference */
}

static void send_tick(conn *c)
{
    chunk *ch = chunk_new(sizeof tick_bytes);
    if (ch) {
        memcpy(ch->data, tick_bytes, sizeof tick_bytes);
        conn_write(c, ch);
    }
}

/* A read batch with at least this many frames is a flood: hand the work to
 * other schedulers and keep reading (see scheduler_defer_end). */
#define FLOOD_FRAMES 12

/* Splits and dispatches the complete frames in c->rbuf; counts them in
 * *frames. -1: drop c. */
static int process_frames(conn *c, int *frames)
{
    size_t off = 0;
    while (off < c->rlen) {
        frame f = framing_next(c->rbuf + off, c->rlen - off, connections_max_frame());
        /* An incomplete frame waits for its bytes: the buffer grows with
         * what arrives (conn_read), never with what a header announces. */
        if (f.kind == FRAME_INCOMPLETE)
            break;
        if (f.kind == FRAME_BAD) {
            if (f.total > connections_max_frame())
                LOG_W("io",
                      "%s announced a %zu-byte frame, more than max_frame_bytes (%zu); closing "
                      "the connection",
                      atom_text(c->node), f.total - 4, connections_max_frame());
            else
                LOG_W("io", "malformed frame from %s; closing the connection", atom_text(c->node));
            return -1;
        }
        (*frames)++;
        if (f.kind == FRAME_TICK) {
            send_tick(c);
        } else if (control_dispatch(c->node, f.body, f.body_len) != 0) {
            LOG_W("io", "malformed distribution message from %s; closing the connection",
                  atom_text(c->node));
            return -1;
        }
        off += f.total;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

/* Reads what is available (bounded, for fairness). -1: drop c. */
METRIC_COUNTER(m_bytes_in, "phnode_dist_received_bytes_total", "",
               "Bytes read from distribution connections after the handshake.");

static int conn_read(conn *c, size_t *got)
{
    for (int round = 0; round < READ_ROUNDS; round++) {
        if (c->rcap - c->rlen < READ_CHUNK / 4) {
            /* Doubling with what arrived: a frame of N bytes costs at most
             * 2N (+64 KiB), and only once its bytes are here. The frame
             * size is bounded by max_frame_bytes (FRAME_BAD above). */
            size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK;
            char *n = realloc(c->rbuf, cap);
            if (!n)
                return -1;
            c->rbuf = n;
            c->rcap = cap;
        }
        ssize_t n = c->transport->read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char why[128];
            int err = errno;
            if (c->transport->failure && c->transport->failure(c->fd, why, sizeof why))
                LOG_W("io", "read from %s: TLS: %s", atom_text(c->node), why);
            else
                LOG_I("io", "read from %s: %s", atom_text(c->node), strerror(err));
            return -1;
        }
        size_t space = c->rcap - c->rlen;
        metric_add(&m_bytes_in, (uint64_t)n);
        *got += (size_t)n;
        c->rlen += (size_t)n;
        atomic_store_explicit(&c->last_read_ms, monotonic_ms(), memory_order_relaxed);
        int frames = 0;
        scheduler_defer_begin();
        int rc = process_frames(c, &frames);
        scheduler_defer_end(frames < FLOOD_FRAMES);
        if (rc != 0)
            return -1;
        if ((size_t)n < space && c->transport->pending(c->fd) == 0)
            break; /* drained; epoll (level-triggered) reports more */
    }
    if (c->rlen == 0 && c->rcap > RBUF_KEEP) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    return 0;
}

static void conn_writable(conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    int rc = conn_flush_locked(c);
    if (rc == 0 && !c->out_head && c->epollout_armed) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->epollout_armed = 0;
    }
    pthread_mutex_unlock(&c->out_lock);
    if (rc != 0)
        io_close_later(c);
}

static void check_ticks(void)
{
    uint64_t now = monotonic_ms();
    uint64_t ticktime_ms = (uint64_t)connections_ticktime() * 1000u;
    uint64_t interval = ticktime_ms / 4;
    conn *expired[64];
    int n_expired = 0;
    pthread_mutex_lock(&io_lock);
    for (int i = 0; i < n_conns; i++) {
        conn *c = conns[i];
        /* Another thread may have read (or written) after `now` was taken:
         * a later timestamp is not an old one (unsigned, now - last would wrap
         * and close a live connection). */
        uint64_t last_read = atomic_load(&c->last_read_ms);
        uint64_t last_write = atomic_load(&c->last_write_ms);
        if (last_read < now && now - last_read > ticktime_ms && n_expired < 64) {
            /* Bytes waiting in the socket: the peer is alive, we are the
             * ones behind (a poller busy with a huge frame). The BEAM
             * counts what its port received, not what it decoded. (c is
             * still listed, so its fd is still open: io_close unlists
             * first.) */
            int unread = 0;
            if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0) {
                atomic_store(&c->last_read_ms, now);
                continue;
            }
            atomic_fetch_add(&c->refs, 1);
            expired[n_expired++] = c;
            continue;
        }
        if (last_write < now && now - last_write >= interval) {
            atomic_fetch_add(&c->refs, 1);
            pthread_mutex_unlock(&io_lock);
            send_tick(c);
            conn_put(c);
            pthread_mutex_lock(&io_lock);
        }
    }
    pthread_mutex_unlock(&io_lock);
    for (int i = 0; i < n_expired; i++) {
        LOG_W("io", "%s not responding for %u s (net_ticktime); closing the connection",
              atom_text(expired[i]->node), connections_ticktime());
        io_close_later(expired[i]); /* whoever polls sees the end of stream */
        conn_put(expired[i]);
    }
}

/* Waits for and handles I/O; called with the poll role held. */
static int io_poll(int timeout_ms)
{
    struct epoll_event events[64];
    int n = epoll_wait(epfd, events, 64, timeout_ms);
    last_epoll_us = io_now_us();
    if (n < 0 && errno != EINTR)
        LOG_E("io", "epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == NULL) {
            uint64_t v;
            ssize_t r = read(wakefd, &v, sizeof v);
            (void)r; /* only a wake-up */
            continue;
        }
        conn *c = events[i].data.ptr;
        if (events[i].events & EPOLLOUT)
            conn_writable(c);
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            size_t got = 0;
            if (conn_read(c, &got) != 0) {
                io_close(c);
            } else if (got) {
                hot_streak = c == last_active ? hot_streak + 1 : 0;
                last_active = c;
            }
        }
    }
    return n > 0 ? n : 0;
}

static int io_spin_check(void)
{
    /* No hot connection: input comes from many peers at times of their
     * own, and the wait is better spent asleep (the CPU goes to other
     * threads; 8 client nodes ran faster on less CPU without the spin). */
    if (!last_active || hot_streak < HOT_STREAK_MIN)
        return -1;
    if (io_now_us() - last_epoll_us >= SPIN_EPOLL_EVERY_US)
        return io_poll(0);
    size_t got = 0;
    if (conn_read(last_active, &got) != 0) {
        io_close(last_active);
        return 1;
    }
    if (got)
        hot_streak++;
    return got > 0;
}

static void io_interrupt(void)
{
    uint64_t one = 1;
    ssize_t w = write(wakefd, &one, sizeof one);
    (void)w; /* a full counter still wakes the poller */
}

static const scheduler_io io_ops = {
    .poll = io_poll, .spin_check = io_spin_check, .interrupt = io_interrupt};

#define STALL_CHECK_MS 10

static void *io_main(void *arg)
{
    (void)arg;
    uint64_t interval = (uint64_t)connections_ticktime() * 1000u / 4;
    if (interval == 0)
        interval = 250;
    uint64_t next_tick = monotonic_ms() + interval;
    while (atomic_load(&running)) {
        struct timespec ts = {0, STALL_CHECK_MS * 1000 * 1000};
        nanosleep(&ts, NULL);
        /* Every scheduler busy for a while: read on their behalf. */
        while (atomic_load(&running) && scheduler_poll_if_stalled(STALL_CHECK_MS * 1000u))
            ;
        if (monotonic_ms() >= next_tick) {
            check_ticks();
            next_tick = monotonic_ms() + interval;
        }
    }
    return NULL;
}

int io_loop_start(void)
{
    epfd = epoll_create1(EPOLL_CLOEXEC);
    wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || wakefd < 0) {
        LOG_E("io", "cannot create epoll/eventfd: %s", strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) != 0)
        return -1;
    atomic_store(&running, 1);
    if (pthread_create(&thread, NULL, io_main, NULL) != 0) {
        atomic_store(&running, 0);
        return -1;
    }
    scheduler_set_io(&io_ops);
    return 0;
}

void io_loop_stop(void)
{
    if (!atomic_load(&running))
        return;
    atomic_store(&running, 0);
    scheduler_set_io(NULL);
    pthread_join(thread, NULL);
    while (n_conns > 0)
        io_close(conns[n_conns - 1]);
    free(conns);
    conns = NULL;
    cap_conns = 0;
    close(wakefd);
    close(epfd);
    wakefd = epfd = -1;
}
