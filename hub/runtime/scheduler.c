/*
 * scheduler.c - mailboxes and the scheduler threads.
 *
 * A mailbox is a lock-free LIFO that any thread pushes to; the scheduler
 * running the process takes the whole LIFO at once and reverses it onto the
 * process's private FIFO, which keeps every sender's order.
 *
 * A process is in the run queue at most once: the push that flips
 * `scheduled` from 0 to 1 enqueues it. After a run the scheduler clears the
 * flag and looks at the mailbox again; with sequentially consistent atomics
 * on both sides, either the pusher sees 0 and enqueues, or the scheduler
 * sees the new signal and re-enqueues.
 *
 * Sleeping and waking cost system calls, which dominate a call's cost, so:
 * the run queue is guarded by a spinlock (its critical sections are a few
 * pointer moves), and an idle scheduler parks on a futex word of its own.
 * Whoever makes a process runnable hands it to one parked scheduler with
 * exactly one FUTEX_WAKE; nothing is woken when no scheduler is parked.
 *
 * Polling the network: the first idle scheduler does not park but waits
 * for I/O itself (the "poll role", held by one thread at a time: the only
 * one that busy-polls). When a call arrives it gives the role up and reads
 * the frames, then runs the worker on the same thread: no thread hand-off,
 * no wake-up; meanwhile the next idle scheduler may take the role. A
 * reader that is still reading after a while has a parked scheduler take
 * the role (scheduler_poll_promote), so other connections are read in
 * parallel rather than behind it; short reads wake nobody (on 2 vCPUs the
 * wake-up costs more than the wait it saves; with 4+ schedulers io_loop.c
 * hands a batch of several connections over at once). The I/O layer makes
 * sure one thread at a time reads a connection. The I/O thread keeps the node
 * responsive when every scheduler is busy in long callbacks: it takes the
 * poll role when nobody has polled for a while (and schedulers between two
 * runs poll briefly too, as BEAM schedulers check I/O). The frame handler
 * only decodes and posts to mailboxes, so polling never runs user code;
 * the callbacks run afterwards.
 */
#include "hub/runtime/busy_poll.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/log.h"
#include "hub/runtime/runtime_metrics.h"
#include "hub/runtime/process.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RUN_BUDGET 64
#define MAX_SCHEDULERS 64

typedef struct scheduler {
    _Alignas(64) _Atomic uint64_t busy_us; /* time running processes; written by its thread */
    pthread_t thread;
    _Atomic uint32_t parked; /* futex word: 1 while parked */
    struct scheduler *next_idle;
} scheduler;

static atomic_flag runq_lock = ATOMIC_FLAG_INIT;
/* Set once by the main thread when the network starts, read by every
 * scheduler: atomic. */
static _Atomic(const scheduler_io *) io_ops;

static const scheduler_io *io_get(void)
{
    return atomic_load_explicit(&io_ops, memory_order_acquire);
}
static _Atomic int poll_role; /* 1 while some thread holds it */
/* Schedulers asleep in the poll (past any busy poll): a process made
 * runnable when none is parked interrupts one of them. A poller counts
 * itself and then looks at the run queue; a pusher appends and then reads
 * the count: with both sequentially consistent, either the poller sees the
 * process or the pusher sees the poller. The busy poll is not counted: it
 * watches the run queue itself. */
static _Atomic int pollers_asleep;
/* An interrupt is on its way to the poller asleep: the pushes after the
 * first do not write the eventfd again (a stop of 33k children pushed an
 * exit signal each, and each push was a write system call while the
 * poller was still waking up). Cleared by a poller before it sleeps, so
 * a push after that interrupts it again (the same ordering as above). */
static _Atomic int poller_interrupted;
static _Atomic uint64_t last_poll_us;
#define BUSY_POLL_INTERVAL_US 1000
static process *runq_head, *runq_tail;
static _Atomic uint32_t runq_len;
static scheduler *idle_list; /* parked schedulers, under runq_lock */
static _Atomic int stopping;
static scheduler schedulers[MAX_SCHEDULERS];
static unsigned n_threads;
static _Thread_local int on_scheduler;
/* The poll role as this thread holds it: given up when input arrives
 * (scheduler_poll_reading) or when the poll ends, whichever comes first. */
static _Thread_local struct {
    int held;
    int timeout_ms;
    uint64_t began_us;
    int asleep;            /* counted in pollers_asleep */
    int spun;              /* this wait began with a spin */
    int sampled;           /* its CPU is measured (cpu_began_ns) */
    uint64_t cpu_began_ns; /* the thread's CPU time when it began */
} role;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The busy poll's rule (hub/runtime/busy_poll.c): touched only by the
 * poll-role holder (the role's atomic hand-over orders it). */
static busy_poll bp;

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Gives the role up (once per poll): the bookkeeping of the wait, then the
 * next idle scheduler may take it. */
static void release_role(int got_work)
{
    if (!role.held)
        return;
    role.held = 0;
    uint64_t ended = now_us();
    if (role.timeout_ms < 0 && (got_work || atomic_load(&runq_len) != 0)) {
        busy_poll_note_wait(&bp, ended - role.began_us);
        uint64_t cpu = role.sampled ? thread_cpu_ns() : 0;
        if (cpu && cpu >= role.cpu_began_ns)
            busy_poll_note_cost(&bp, role.spun, cpu - role.cpu_began_ns);
    }
    atomic_store(&last_poll_us, ended);
    atomic_store(&poll_role, 0);
}

/* Awake again: a reading poller is not one a push should interrupt, nor
 * one that waits for the next arrival (scheduler_poll_promote). */
static void count_awake(void)
{
    if (role.asleep) {
        role.asleep = 0;
        atomic_fetch_sub(&pollers_asleep, 1);
    }
}

void scheduler_poll_reading(void)
{
    count_awake();
    release_role(1);
}

/* Polls with the role held; the caller took it. A blocking poll first
 * checks without blocking for a short while when waits have been short. */
static void poll_with_role(int timeout_ms)
{
    /* Read once: the network may be stopping meanwhile. */
    const scheduler_io *io = io_get();
    int handled = 0;
    uint64_t began = now_us();
    role.held = 1;
    role.timeout_ms = timeout_ms;
    role.began_us = began;
    role.spun = role.sampled = 0;
    if (io && timeout_ms < 0 && busy_poll_allowed(&bp)) {
        role.spun = busy_poll_choose(&bp, &role.sampled);
        role.cpu_began_ns = role.sampled ? thread_cpu_ns() : 0;
        role.sampled = role.sampled && role.cpu_began_ns;
    }
    if (role.spun) {
        /* A check is a system call: space them out, which also lets a
         * stream of small frames collect into fewer, larger reads. */
        uint64_t now = began, until = began + busy_poll_budget_us(&bp), next_check = began;
        while (!handled && atomic_load(&runq_len) == 0 && now < until) {
            if (now >= next_check) {
                handled = io->spin_check();
                if (handled < 0) {
                    handled = 0;
                    break; /* not worth spinning: sleep */
                }
                next_check = now + BUSY_POLL_STEP_US;
                /* A thread waiting for this CPU, often the very peer we
                 * wait for on a busy machine, runs now instead of after
                 * the spin: pausing alone halved the call rate when the
                 * caller shared our CPU. */
                if (!handled)
                    sched_yield();
            } else {
                __builtin_ia32_pause();
            }
            now = now_us();
        }
    }
    if (io && !handled) {
        if (timeout_ms != 0) {
            atomic_store(&poller_interrupted, 0);
            role.asleep = 1;
            atomic_fetch_add(&pollers_asleep, 1);
        }
        if (atomic_load(&runq_len) == 0)
            handled = io->poll(timeout_ms);
        count_awake();
    }
    release_role(handled);
}

static int take_poll_role(void)
{
    int expected = 0;
    return atomic_compare_exchange_strong(&poll_role, &expected, 1);
}

int scheduler_poll_if_stalled(unsigned stalled_us)
{
    if (!io_get() || now_us() - atomic_load(&last_poll_us) < stalled_us || !take_poll_role())
        return 0;
    poll_with_role(0);
    return 1;
}

void scheduler_set_io(const scheduler_io *ops)
{
    atomic_store_explicit(&io_ops, ops, memory_order_release);
    atomic_store(&last_poll_us, now_us());
}

static void lock_runq(void)
{
    for (int spins = 0; atomic_flag_test_and_set_explicit(&runq_lock, memory_order_acquire);
         spins++) {
        if (spins > 100)
            sched_yield(); /* the holder was preempted */
    }
}

static void unlock_runq(void)
{
    atomic_flag_clear_explicit(&runq_lock, memory_order_release);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* Takes one parked scheduler off the idle list (runq_lock held). */
static scheduler *unpark_one_locked(void)
{
    scheduler *s = idle_list;
    if (s) {
        idle_list = s->next_idle;
        atomic_store(&s->parked, 0);
    }
    return s;
}

/* Wakes the poller asleep, once per sleep. */
static void interrupt_poller(void)
{
    if (!atomic_exchange(&poller_interrupted, 1))
        io_get()->interrupt();
}

static void runq_append_locked(process *p)
{
    p->runq_next = NULL;
    if (runq_tail)
        runq_tail->runq_next = p;
    else
        runq_head = p;
    runq_tail = p;
    atomic_fetch_add(&runq_len, 1);
}

static void runq_push(process *p)
{
    lock_runq();
    runq_append_locked(p);
    scheduler *wake = unpark_one_locked();
    int interrupt = !wake && atomic_load(&pollers_asleep) > 0;
    unlock_runq();
    if (wake)
        futex_wake(&wake->parked, 1);
    else if (interrupt)
        interrupt_poller();
}

void process_push(process *p, proc_signal *s)
{
    metric_inc(&m_signals_in);
    proc_signal *head = atomic_load(&p->inbox);
    do {
        s->next = head;
    } while (!atomic_compare_exchange_weak(&p->inbox, &head, s));
    process_schedule(p);
}

/* While deferring, processes made runnable by this thread are collected
 * and queued together at the end (one wake-up for a whole read batch). */
#define DEFER_MAX 256
static _Thread_local struct {
    int on;
    int n;
    process *list[DEFER_MAX];
} deferred;

void process_schedule(process *p)
{
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong(&p->scheduled, &expected, 1))
        return;
    process_ref(p); /* the run queue's reference */
    if (deferred.on && deferred.n < DEFER_MAX)
        deferred.list[deferred.n++] = p;
    else
        runq_push(p);
}

void scheduler_defer_begin(void)
{
    deferred.on = 1;
}

int scheduler_deferring(void)
{
    return deferred.on;
}

void scheduler_defer_end(int keep_one)
{
    deferred.on = 0;
    if (deferred.n == 0)
        return;
    scheduler *wake[MAX_SCHEDULERS];
    int n_wake = 0;
    /* A scheduler that polled runs the first of these itself. */
    int self_runs = on_scheduler && keep_one ? 1 : 0;
    lock_runq();
    for (int i = 0; i < deferred.n; i++) {
        runq_append_locked(deferred.list[i]);
        if (i < self_runs)
            continue;
        scheduler *s = unpark_one_locked();
        if (s)
            wake[n_wake++] = s;
    }
    int interrupt = n_wake == 0 && deferred.n > self_runs && atomic_load(&pollers_asleep) > 0;
    unlock_runq();
    deferred.n = 0;
    for (int i = 0; i < n_wake; i++)
        futex_wake(&wake[i]->parked, 1);
    if (interrupt)
        interrupt_poller();
}

int scheduler_poll_promote(void)
{
    /* Somebody waits for the next arrival already. */
    if (atomic_load(&poll_role) != 0 || atomic_load(&pollers_asleep) > 0)
        return 0;
    lock_runq();
    scheduler *s = atomic_load(&poll_role) == 0 ? unpark_one_locked() : NULL;
    unlock_runq();
    if (!s)
        return 0;
    futex_wake(&s->parked, 1); /* it finds the run queue empty and takes the role */
    return 1;
}

static process *runq_pop_locked(void)
{
    process *p = runq_head;
    if (p) {
        runq_head = p->runq_next;
        if (!runq_head)
            runq_tail = NULL;
        atomic_fetch_sub(&runq_len, 1);
    }
    return p;
}

static process *next_process(scheduler *self)
{
    for (;;) {
        lock_runq();
        process *p = runq_pop_locked();
        if (p || atomic_load(&stopping)) {
            unlock_runq();
            const scheduler_io *io = io_get();
            if (!p && io)
                io->interrupt(); /* the next poller sees the stop too */
            return p;
        }
        const scheduler_io *io = io_get();
        if (io && take_poll_role()) {
            /* Wait for I/O instead of parking; a process made runnable by
             * another thread interrupts the wait. */
            unlock_runq();
            poll_with_role(-1);
            continue;
        }
        atomic_store(&self->parked, 1);
        self->next_idle = idle_list;
        idle_list = self;
        unlock_runq();
        while (atomic_load(&self->parked) && !atomic_load(&stopping))
            futex_wait(&self->parked, 1);
    }
}

static void *scheduler_main(void *arg)
{
    scheduler *self = arg;
    on_scheduler = 1;
    process *p;
    while ((p = next_process(self)) != NULL) {
        int more;
        /* Busy time for the metrics: one clock read per run besides the
         * one the stall check below already makes. */
        uint64_t started_us = now_us(), ended_us = started_us;
        /* Keep running a busy process while nothing else waits: handing it
         * to another thread would cost a wake-up per batch. */
        do {
            const remote_ops *net = remote();
            if (net)
                net->batch_begin();
            more = process_run(p, RUN_BUDGET);
            if (net)
                net->batch_end();
            ended_us = now_us();
            if (io_get() && ended_us - atomic_load(&last_poll_us) >= BUSY_POLL_INTERVAL_US)
                scheduler_poll_if_stalled(BUSY_POLL_INTERVAL_US);
        } while (p->alive && (more || atomic_load(&p->inbox) != NULL) &&
                 atomic_load(&runq_len) == 0);
        atomic_store_explicit(&self->busy_us,
                              atomic_load_explicit(&self->busy_us, memory_order_relaxed) +
                                  (ended_us - started_us),
                              memory_order_relaxed);
        atomic_store(&p->scheduled, 0);
        if ((more || atomic_load(&p->inbox) != NULL) && p->alive) {
            uint32_t expected = 0;
            if (atomic_compare_exchange_strong(&p->scheduled, &expected, 1)) {
                runq_push(p); /* keeps the run queue's reference */
                continue;
            }
        }
        process_put(p);
    }
    return NULL;
}

unsigned scheduler_count(void)
{
    return n_threads;
}

uint64_t scheduler_busy_us(unsigned i)
{
    return i < MAX_SCHEDULERS ? atomic_load_explicit(&schedulers[i].busy_us, memory_order_relaxed)
                              : 0;
}

uint32_t scheduler_runq_length(void)
{
    return atomic_load_explicit(&runq_len, memory_order_relaxed);
}

int scheduler_on_thread(void)
{
    return on_scheduler;
}

int scheduler_start(unsigned count, unsigned busy_poll_us, int busy_poll_latency)
{
    busy_poll_init(&bp, busy_poll_us, busy_poll_latency);
    if (count == 0)
        count = 1;
    if (count > MAX_SCHEDULERS)
        count = MAX_SCHEDULERS;
    atomic_store(&stopping, 0);
    idle_list = NULL;
    for (n_threads = 0; n_threads < count; n_threads++) {
        scheduler *s = &schedulers[n_threads];
        atomic_store(&s->parked, 0);
        s->next_idle = NULL;
        if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
            LOG_E("scheduler", "cannot start scheduler thread %u", n_threads);
            scheduler_stop();
            return -1;
        }
    }
    return 0;
}

void scheduler_stop(void)
{
    atomic_store(&stopping, 1);
    const scheduler_io *ops = io_get();
    if (ops)
        ops->interrupt();
    lock_runq();
    while (unpark_one_locked())
        ;
    unlock_runq();
    for (unsigned i = 0; i < n_threads; i++)
        futex_wake(&schedulers[i].parked, INT_MAX);
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(schedulers[i].thread, NULL);
    n_threads = 0;
    idle_list = NULL;
    /* Drop processes still queued (their references). */
    process *p;
    for (;;) {
        lock_runq();
        p = runq_pop_locked();
        unlock_runq();
        if (!p)
            break;
        atomic_store(&p->scheduled, 0);
        process_put(p);
    }
}
