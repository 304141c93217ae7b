/*
 * io_loop.c - one epoll set over every connection, and reading them.
 * io_poll waits on it, reads in bulk and splits frames, hands each frame to
 * control.c (which only decodes and posts to mailboxes; no user code runs
 * here), answers ticks, flushes queued output and closes connections. It
 * runs on idle schedulers (the poll-role holder, which gives the role up
 * as soon as input arrives: scheduler.c), and on the I/O thread when every
 * scheduler is busy; a scheduler then runs the worker it made runnable
 * itself. Several threads read at once: the one waiting in epoll_wait and
 * those still reading what they got earlier, and a batch that takes long
 * hands its unread events to a fresh poller (batch_check).
 *
 * So: connections are edge-triggered, so one arrival is reported to one
 * poller; a connection's read_req makes its reads one
 * thread's at a time (the frames of a connection stay in order, and a TLS
 * session is never read from two threads); a connection is found from its
 * event through a table by token, with a reference, so a poller that holds
 * an event for a connection another poller closed finds nothing instead of
 * freed memory.
 *
 * The I/O thread also sends our ticks and closes peers that stayed silent
 * for net_ticktime, whatever the schedulers are doing.
 */
#include "ei_glue/connection.h"
#include "ei_glue/control.h"
#include "ei_glue/framing.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/bigbuf.h"
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
/* A frame of this many bytes or more is read into a block of its own
 * (signal_block_alloc), which becomes its message's signal: no growing of
 * the shared buffer, no copy out of it. */
#define OWN_FRAME_MIN READ_CHUNK
/* The block is sized from the frame's header up to this much at first, then
 * doubles as the bytes arrive: a header alone reserves at most this (a
 * mapping, whose pages are backed only as bytes are written). */
#define OWN_FRAME_RESERVE ((size_t)8 << 20)

static int epfd = -1, wakefd = -1;
static pthread_t thread;
static _Atomic int running;
static pthread_mutex_t io_lock = PTHREAD_MUTEX_INITIALIZER;
/* Under io_lock: the registered connections (ticks, stop), and the same by
 * fd for io_lookup. */
static conn **conns;
static int n_conns, cap_conns;
static conn **by_fd;
static int cap_fd;
static uint32_t token_gen;
static const char tick_bytes[4] = {0, 0, 0, 0};

/* A token: the fd and a registration count, never 0 (the eventfd's data). */
static uint64_t token_fd(uint64_t token)
{
    return token & 0xffffffffu;
}

/* The connection a token names, with a reference; NULL once it closed. */
static conn *io_lookup(uint64_t token)
{
    uint64_t fd = token_fd(token);
    conn *c = NULL;
    pthread_mutex_lock(&io_lock);
    if (fd < (uint64_t)cap_fd && by_fd[fd] &&
        atomic_load_explicit(&by_fd[fd]->io_token, memory_order_relaxed) == token) {
        c = by_fd[fd];
        atomic_fetch_add(&c->refs, 1);
    }
    pthread_mutex_unlock(&io_lock);
    return c;
}

static int grow_locked(int fd)
{
    if (n_conns == cap_conns) {
        int cap = cap_conns ? cap_conns * 2 : 16;
        conn **n = realloc(conns, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        conns = n;
        cap_conns = cap;
    }
    if (fd >= cap_fd) {
        int cap = cap_fd ? cap_fd : 256;
        while (cap <= fd)
            cap *= 2;
        conn **n = realloc(by_fd, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        memset(n + cap_fd, 0, (size_t)(cap - cap_fd) * sizeof *n);
        by_fd = n;
        cap_fd = cap;
    }
    return 0;
}

/* Edge-triggered: an arrival is reported once, to one poller. */
static uint32_t conn_events(const conn *c)
{
    return EPOLLIN | EPOLLRDHUP | EPOLLET | (c->epollout_armed ? EPOLLOUT : 0u);
}

/* PHNODE_TEST_IO_REGISTER_FAIL=N (tests only): the first N registrations
 * fail as an epoll_ctl or allocation failure would, so that the path that
 * ends a connection the poller could not take is tested (test_connection). */
static _Atomic int test_register_failures;

int io_register(conn *c)
{
    int rc = 0;
    if (atomic_load(&test_register_failures) > 0 &&
        atomic_fetch_sub(&test_register_failures, 1) > 0) {
        LOG_W("io", "PHNODE_TEST_IO_REGISTER_FAIL: the connection to %s is not registered",
              atom_text(c->node));
        return -1;
    }
    pthread_mutex_lock(&io_lock);
    if (c->fd < 0 || grow_locked(c->fd) != 0) {
        pthread_mutex_unlock(&io_lock);
        return -1;
    }
    if (++token_gen == 0)
        token_gen = 1;
    uint64_t token = (uint64_t)token_gen << 32 | (uint32_t)c->fd;
    c->io_index = n_conns;
    conns[n_conns++] = c;
    by_fd[c->fd] = c;
    /* Listed and named before it is added, so its first event finds it
     * (io_lookup waits for io_lock); a writer arming EPOLLOUT (out_lock)
     * sees the token only once the fd is in the set. */
    pthread_mutex_lock(&c->out_lock);
    atomic_store(&c->io_token, token);
    struct epoll_event ev = {.events = conn_events(c), .data.u64 = token};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        LOG_E("io", "epoll_ctl add: %s", strerror(errno));
        atomic_store(&c->io_token, 0);
        by_fd[c->fd] = NULL;
        conns[c->io_index] = conns[--n_conns];
        conns[c->io_index]->io_index = c->io_index;
        c->io_index = -1;
        rc = -1;
    }
    pthread_mutex_unlock(&c->out_lock);
    pthread_mutex_unlock(&io_lock);
    return rc;
}

/* With c->out_lock held. */
static void io_modify_locked(conn *c)
{
    uint64_t token = atomic_load_explicit(&c->io_token, memory_order_relaxed);
    struct epoll_event ev = {.events = conn_events(c), .data.u64 = token};
    if (token && epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
        LOG_E("io", "epoll_ctl mod: %s", strerror(errno));
}

void io_arm_write(conn *c)
{
    if (c->epollout_armed || atomic_load_explicit(&c->io_token, memory_order_relaxed) == 0)
        return;
    c->epollout_armed = 1;
    io_modify_locked(c);
}

void io_close_later(conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    if (!c->closed && c->fd >= 0)
        c->transport->shutdown(c->fd); /* the loop sees EOF and closes */
    pthread_mutex_unlock(&c->out_lock);
}

/* The connection that delivered input last (its token). A caller that
 * spins waiting for its reply reads it directly, which saves the
 * epoll_wait on every arrival. */
static _Atomic uint64_t hot_token;
/* How many arrivals in a row came on it: with one busy peer a check reads
 * it directly; when arrivals move between connections (many peers), that
 * recv mostly finds nothing and one epoll_wait asks all of them in the same
 * one system call. */
static _Atomic unsigned hot_streak;
#define HOT_STREAK_MIN 2
/* While one connection is hot, the other connections are still asked
 * (one epoll_wait) at least this often: every 4th check, as before, cost a
 * system call (~3.5 us on the test VM) on every other call. */
#define SPIN_EPOLL_EVERY_US 250
static _Atomic uint64_t last_epoll_us;
/* The batch this thread is reading: events from one epoll_wait, or one
 * spin check. When it has taken PROMOTE_AFTER_US, a parked scheduler takes
 * over the waiting (scheduler_poll_promote) and the events not read yet
 * are handed over to it through epoll: one long read (a flood, a big
 * frame, many connections at once) does not hold up the others. Shorter
 * batches wake nobody: on the test VM a wake-up costs about 10 us of CPU,
 * more than a few reads of calls (4-5 us each) that it would overlap. The
 * time is wall time, so a reader preempted on a busy machine counts too;
 * with 50 us, 1-3% of the calls of 8 client nodes woke a scheduler on the
 * test VM under load, with 200 us 0.1%. */
#define PROMOTE_AFTER_US 200
/* With at least EAGER_MIN_SCHEDULERS schedulers (by default one per core),
 * a batch of several connections is handed over before the first read:
 * there, idle cores are likely and a wake-up is cheap next to the reads it
 * overlaps. On 2 vCPUs the wake-up costs more than it saves (see
 * docs/benchmarks.md). */
#define EAGER_MIN_SCHEDULERS 4
static int eager_handover; /* set before the pollers start */
static _Thread_local struct {
    uint64_t began_us;
    int promoted;
    const struct epoll_event *events;
    int next, n; /* events[next..n) are not read yet */
} batch;

static uint64_t io_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void note_input(const conn *c)
{
    uint64_t token = atomic_load_explicit(&c->io_token, memory_order_relaxed);
    if (atomic_exchange_explicit(&hot_token, token, memory_order_relaxed) == token)
        atomic_fetch_add_explicit(&hot_streak, 1, memory_order_relaxed);
    else
        atomic_store_explicit(&hot_streak, 0, memory_order_relaxed);
}

static void batch_begin(const struct epoll_event *events, int n)
{
    batch.began_us = io_now_us();
    batch.promoted = 0;
    batch.events = events;
    batch.next = 0;
    batch.n = n;
}

static void io_rearm(uint64_t token);

METRIC_COUNTER(m_promotions, "phnode_dist_read_promotions_total", "",
               "Read batches that took long enough to have another scheduler wait for the "
               "next arrivals (and take the batch's unread events).");

/* Called between reads: after PROMOTE_AFTER_US (now: at once), once per
 * batch. */
static void batch_check(int now)
{
    if (batch.promoted || (!now && io_now_us() - batch.began_us < PROMOTE_AFTER_US))
        return;
    batch.promoted = 1;
    if (!scheduler_poll_promote())
        return;
    metric_inc(&m_promotions);
    /* Re-armed, each is reported again to whoever waits now. */
    for (int i = batch.next; i < batch.n; i++) {
        if (batch.events[i].data.u64 != 0) {
            io_rearm(batch.events[i].data.u64);
        } else {
            uint64_t v;
            ssize_t r = read(wakefd, &v, sizeof v);
            (void)r; /* only a wake-up: this thread goes back to the run queue */
        }
    }
    batch.n = batch.next;
}

/* By c's reader (which keeps read_req raised: nobody reads c again), or at
 * stop. Pollers that still hold an event for c find it no more. */
static void io_close(conn *c)
{
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
    if (c->fd < cap_fd && by_fd[c->fd] == c)
        by_fd[c->fd] = NULL;
    pthread_mutex_unlock(&io_lock);
    c->transport->close(c->fd);
    c->fd = -1;
    connection_closed(c);
    conn_put(c); /* the I/O layer's reference */
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

static int malformed(const conn *c)
{
    LOG_W("io", "malformed distribution message from %s; closing the connection",
          atom_text(c->node));
    return -1;
}

/* The big frame whose first have bytes (its header included) are at bytes
 * goes on in a block of its own, which the reads fill from now on. -1: no
 * memory. */
static int own_frame_begin(conn *c, const char *bytes, size_t have, size_t total)
{
    size_t cap = total < OWN_FRAME_RESERVE ? total : OWN_FRAME_RESERVE;
    char *b = signal_block_alloc(cap);
    if (!b) {
        LOG_E("io", "out of memory for a %zu-byte frame from %s; closing the connection", total,
              atom_text(c->node));
        return -1;
    }
    memcpy(b, bytes, have);
    c->fblock = b;
    c->fhave = have;
    c->fcap = cap;
    c->ftotal = total;
    return 0;
}

/* The own frame is complete: dispatched with its block. -1: drop c. */
static int own_frame_end(conn *c)
{
    char *b = c->fblock;
    frame f = framing_next(b, c->ftotal, connections_max_frame());
    c->fblock = NULL;
    c->fhave = c->fcap = c->ftotal = 0;
    if (f.kind != FRAME_DATA) { /* checked when it began: cannot happen */
        signal_block_free(b);
        return malformed(c);
    }
    return control_dispatch_block(c->node, b, f.body, f.body_len) == 0 ? 0 : malformed(c);
}

/* Splits and dispatches the complete frames in c->rbuf; counts them in
 * *frames. A big frame's start moves to a block of its own (own_frame_begin).
 * -1: drop c. */
static int process_frames(conn *c, int *frames)
{
    size_t off = 0;
    while (off < c->rlen) {
        frame f = framing_next(c->rbuf + off, c->rlen - off, connections_max_frame());
        /* An incomplete frame waits for its bytes: the buffer grows with
         * what arrives (conn_read), never with what a header announces. A
         * big one (its 'p' seen) goes on in its own block. */
        if (f.kind == FRAME_INCOMPLETE) {
            size_t have = c->rlen - off;
            if (f.total >= OWN_FRAME_MIN && have >= FRAMING_HEADER_LEN) {
                if (own_frame_begin(c, c->rbuf + off, have, f.total) != 0)
                    return -1;
                off = c->rlen;
            }
            break;
        }
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
        if (f.kind == FRAME_TICK)
            send_tick(c);
        else if (control_dispatch(c->node, f.body, f.body_len) != 0)
            return malformed(c);
        off += f.total;
    }
    if (off > 0) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
    return 0;
}

/* Where the next read goes, and how much it may take: the own frame's
 * block (never beyond the frame: what follows it belongs to the shared
 * buffer), or the shared buffer. -1: no memory. */
static int read_target(conn *c, char **at, size_t *room)
{
    if (c->fblock) {
        if (c->fhave == c->fcap) {
            /* Doubling with what arrived, up to the frame's length. */
            size_t cap = c->fcap * 2 < c->ftotal ? c->fcap * 2 : c->ftotal;
            char *n = signal_block_resize(c->fblock, cap);
            if (!n)
                return -1;
            c->fblock = n;
            c->fcap = cap;
        }
        *at = c->fblock + c->fhave;
        *room = c->fcap - c->fhave;
        return 0;
    }
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
    *at = c->rbuf + c->rlen;
    *room = c->rcap - c->rlen;
    return 0;
}

/* n bytes arrived where read_target said: dispatch what is complete. */
static int bytes_arrived(conn *c, size_t n, int *frames)
{
    if (!c->fblock) {
        c->rlen += n;
        return process_frames(c, frames);
    }
    c->fhave += n;
    if (c->fhave < c->ftotal)
        return 0;
    (*frames)++;
    return own_frame_end(c);
}

/* Reads what is available (bounded, for fairness). -1: drop c. */
METRIC_COUNTER(m_bytes_in, "phnode_dist_received_bytes_total", "",
               "Bytes read from distribution connections after the handshake.");

/* *more: it stopped before the socket was drained (fairness). */
static int conn_read(conn *c, size_t *got, int *more)
{
    /* Once the peer's end of stream is in, a short read no longer means
     * drained: the end of stream waits behind the data and makes no new
     * edge. */
    int to_eof = atomic_load_explicit(&c->read_to_eof, memory_order_relaxed);
    *more = 1;
    for (int round = 0; round < READ_ROUNDS; round++) {
        char *at;
        size_t space;
        if (read_target(c, &at, &space) != 0)
            return -1;
        ssize_t n = c->transport->read(c->fd, at, space);
        if (n == 0)
            return -1;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                *more = 0;
                break;
            }
            char why[128];
            int err = errno;
            if (c->transport->failure && c->transport->failure(c->fd, why, sizeof why))
                LOG_W("io", "read from %s: TLS: %s", atom_text(c->node), why);
            else
                LOG_I("io", "read from %s: %s", atom_text(c->node), strerror(err));
            return -1;
        }
        /* The next arrival may be waited for by another thread now. */
        scheduler_poll_reading();
        metric_add(&m_bytes_in, (uint64_t)n);
        *got += (size_t)n;
        atomic_store_explicit(&c->last_read_ms, monotonic_ms(), memory_order_relaxed);
        int frames = 0;
        scheduler_defer_begin();
        int rc = bytes_arrived(c, (size_t)n, &frames);
        scheduler_defer_end(frames < FLOOD_FRAMES);
        if (rc != 0)
            return -1;
        batch_check(0);
        /* A short read drained the socket (transport.h): a later arrival
         * is a new edge, reported again. */
        if (!to_eof && c->transport->short_read_drains && (size_t)n < space &&
            c->transport->pending(c->fd) == 0) {
            *more = 0;
            break;
        }
    }
    if (c->rlen == 0 && c->rcap > RBUF_KEEP) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
    return 0;
}

/* Reads c (referenced by the caller) unless another poller is reading it,
 * in which case that one reads again before it lets go. The bytes read. */
static size_t conn_service(conn *c)
{
    if (atomic_fetch_add(&c->read_req, 1) != 0)
        return 0;
    unsigned seen = 1;
    size_t got = 0;
    for (;;) {
        int more = 0;
        if (conn_read(c, &got, &more) != 0) {
            io_close(c);
            return got;
        }
        if (got)
            note_input(c);
        if (atomic_compare_exchange_strong(&c->read_req, &seen, 0)) {
            if (more) {
                /* Not drained: no new edge may come, so ask for one. */
                pthread_mutex_lock(&c->out_lock);
                if (!c->closed)
                    io_modify_locked(c);
                pthread_mutex_unlock(&c->out_lock);
            }
            return got;
        }
        /* seen is the count now: requests came meanwhile, read again. */
    }
}

static void io_rearm(uint64_t token)
{
    conn *c = io_lookup(token);
    if (!c)
        return;
    pthread_mutex_lock(&c->out_lock);
    if (!c->closed)
        io_modify_locked(c);
    pthread_mutex_unlock(&c->out_lock);
    conn_put(c);
}

static void conn_writable(conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    if (c->closed) {
        pthread_mutex_unlock(&c->out_lock);
        return;
    }
    int rc = conn_flush_locked(c);
    if (rc == 0 && !c->out_head && c->epollout_armed) {
        c->epollout_armed = 0;
        io_modify_locked(c);
    }
    pthread_mutex_unlock(&c->out_lock);
    if (rc != 0)
        io_close_later(c);
}

/* The I/O thread's: when check_ticks ran last. */
static uint64_t last_check_ms;

static void check_ticks(void)
{
    uint64_t now = monotonic_ms();
    uint64_t ticktime_ms = (uint64_t)connections_ticktime() * 1000u;
    uint64_t interval = ticktime_ms / 4;
    /* How late this check is tells a silent peer from a stalled I/O thread
     * in the log line below. */
    uint64_t since_check = last_check_ms && now > last_check_ms ? now - last_check_ms : 0;
    last_check_ms = now;
    conn *expired[64];
    uint64_t silent_ms[64];
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
            silent_ms[n_expired] = now - last_read;
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
        LOG_W("io",
              "%s not responding: nothing arrived for %llu ms (net_ticktime %u s; the previous "
              "check was %llu ms before); closing the connection",
              atom_text(expired[i]->node), (unsigned long long)silent_ms[i], connections_ticktime(),
              (unsigned long long)since_check);
        io_close_later(expired[i]); /* whoever polls sees the end of stream */
        conn_put(expired[i]);
    }
}

/* Waits for and handles I/O; several threads may at once. */
static int io_poll(int timeout_ms)
{
    struct epoll_event events[64];
    int n = epoll_wait(epfd, events, 64, timeout_ms);
    atomic_store_explicit(&last_epoll_us, io_now_us(), memory_order_relaxed);
    if (n < 0 && errno != EINTR)
        LOG_E("io", "epoll_wait: %s", strerror(errno));
    if (n > 0)
        scheduler_poll_reading();
    batch_begin(events, n > 0 ? n : 0);
    for (int i = 0; i < batch.n; i++) {
        batch.next = i;
        if (i > 0) {
            batch_check(0);
            if (i >= batch.n)
                break; /* handed over */
        }
        batch.next = i + 1;
        /* With schedulers to spare, the other connections of the batch go
         * to another one at once, while this one reads the first. */
        if (eager_handover && i + 1 < batch.n)
            batch_check(1);
        if (events[i].data.u64 == 0) {
            uint64_t v;
            ssize_t r = read(wakefd, &v, sizeof v);
            (void)r; /* only a wake-up */
            continue;
        }
        conn *c = io_lookup(events[i].data.u64);
        if (!c)
            continue; /* closed by another poller meanwhile */
        if (events[i].events & EPOLLOUT)
            conn_writable(c);
        if (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            atomic_store_explicit(&c->read_to_eof, 1, memory_order_relaxed);
        if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn_service(c);
        conn_put(c);
    }
    return n > 0 ? n : 0;
}

static int io_spin_check(void)
{
    /* No hot connection: input comes from many peers at times of their
     * own, and the wait is better spent asleep (the CPU goes to other
     * threads; 8 client nodes ran faster on less CPU without the spin). */
    uint64_t token = atomic_load_explicit(&hot_token, memory_order_relaxed);
    if (!token || atomic_load_explicit(&hot_streak, memory_order_relaxed) < HOT_STREAK_MIN)
        return -1;
    if (io_now_us() - atomic_load_explicit(&last_epoll_us, memory_order_relaxed) >=
        SPIN_EPOLL_EVERY_US)
        return io_poll(0);
    conn *c = io_lookup(token);
    if (!c)
        return -1;
    batch_begin(NULL, 0);
    size_t got = conn_service(c);
    conn_put(c);
    return got > 0;
}

static void io_interrupt(void)
{
    uint64_t one = 1;
    ssize_t w = write(wakefd, &one, sizeof one);
    (void)w; /* a full counter still wakes a poller */
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
        bigbuf_trim(); /* freed big buffers kept long enough go back */
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
    /* Edge-triggered too: each interrupt wakes one poller, and a poller
     * that finds it already read does not wake another. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 0};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, wakefd, &ev) != 0)
        return -1;
    eager_handover = scheduler_count() >= EAGER_MIN_SCHEDULERS;
    const char *fail = getenv("PHNODE_TEST_IO_REGISTER_FAIL");
    atomic_store(&test_register_failures, fail ? atoi(fail) : 0);
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
    free(by_fd);
    by_fd = NULL;
    cap_fd = 0;
    atomic_store(&hot_token, 0);
    atomic_store(&hot_streak, 0);
    close(wakefd);
    close(epfd);
    wakefd = epfd = -1;
}
