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
 * Idle schedulers spin briefly before sleeping: a call arriving from the
 * network is then picked up without a futex wake-up most of the time.
 */
#include "ei_glue/dist.h"
#include "hub/log.h"
#include "hub/process.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define RUN_BUDGET 64
#define IDLE_SPINS 0
#define MAX_SCHEDULERS 64

static pthread_mutex_t runq_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t runq_cond = PTHREAD_COND_INITIALIZER;
static process *runq_head, *runq_tail;
static _Atomic uint32_t runq_len;
static unsigned sleeping;
static int stopping;
static pthread_t threads[MAX_SCHEDULERS];
static unsigned n_threads;
static _Thread_local int on_scheduler;

static void runq_push(process *p)
{
    pthread_mutex_lock(&runq_lock);
    p->runq_next = NULL;
    if (runq_tail)
        runq_tail->runq_next = p;
    else
        runq_head = p;
    runq_tail = p;
    atomic_fetch_add(&runq_len, 1);
    if (sleeping)
        pthread_cond_signal(&runq_cond);
    pthread_mutex_unlock(&runq_lock);
}

void process_push(process *p, proc_signal *s)
{
    proc_signal *head = atomic_load(&p->inbox);
    do {
        s->next = head;
    } while (!atomic_compare_exchange_weak(&p->inbox, &head, s));
    process_schedule(p);
}

void process_schedule(process *p)
{
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong(&p->scheduled, &expected, 1)) {
        process_ref(p); /* the run queue's reference */
        runq_push(p);
    }
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

static process *next_process(void)
{
    int spins = 0;
    pthread_mutex_lock(&runq_lock);
    for (;;) {
        process *p = runq_pop_locked();
        if (p || stopping) {
            pthread_mutex_unlock(&runq_lock);
            return p;
        }
        if (spins < IDLE_SPINS) {
            pthread_mutex_unlock(&runq_lock);
            while (spins++ < IDLE_SPINS && atomic_load(&runq_len) == 0)
                sched_yield();
            pthread_mutex_lock(&runq_lock);
            continue;
        }
        sleeping++;
        pthread_cond_wait(&runq_cond, &runq_lock);
        sleeping--;
        spins = 0;
    }
}

static void *scheduler_main(void *arg)
{
    (void)arg;
    on_scheduler = 1;
    process *p;
    while ((p = next_process()) != NULL) {
        int more;
        /* Keep running a busy process while nothing else waits: handing it
         * to another thread would cost a wake-up per batch. */
        do {
            dist_batch_begin();
            more = process_run(p, RUN_BUDGET);
            dist_batch_end();
        } while (p->alive && (more || atomic_load(&p->inbox) != NULL) &&
                 atomic_load(&runq_len) == 0);
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

int scheduler_on_thread(void)
{
    return on_scheduler;
}

int scheduler_start(unsigned count)
{
    if (count == 0)
        count = 1;
    if (count > MAX_SCHEDULERS)
        count = MAX_SCHEDULERS;
    stopping = 0;
    for (n_threads = 0; n_threads < count; n_threads++) {
        if (pthread_create(&threads[n_threads], NULL, scheduler_main, NULL) != 0) {
            LOG_E("scheduler", "cannot start scheduler thread %u", n_threads);
            scheduler_stop();
            return -1;
        }
    }
    return 0;
}

void scheduler_stop(void)
{
    pthread_mutex_lock(&runq_lock);
    stopping = 1;
    pthread_cond_broadcast(&runq_cond);
    pthread_mutex_unlock(&runq_lock);
    for (unsigned i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    n_threads = 0;
    /* Drop processes still queued (their references). */
    pthread_mutex_lock(&runq_lock);
    process *p;
    while ((p = runq_pop_locked()) != NULL) {
        atomic_store(&p->scheduled, 0);
        pthread_mutex_unlock(&runq_lock);
        process_put(p);
        pthread_mutex_lock(&runq_lock);
    }
    pthread_mutex_unlock(&runq_lock);
}
