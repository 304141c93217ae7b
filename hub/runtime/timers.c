/*
 * timers.c - a binary min-heap of pending timers ordered by due time, one
 * thread sleeping on a condition variable until the earliest is due.
 * Cancelling searches the heap linearly: timers are few next to messages.
 */
#include "hub/runtime/timers.h"

#include "hub/runtime/context.h"
#include "hub/runtime/log.h"
#include "hub/runtime/route.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct timer_entry {
    uint64_t due;
    ph_ref ref;
    ph_pid to;
    uint32_t len;
    char *msg;
} timer_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static timer_entry *heap;
static size_t heap_len, heap_cap;
static int running;
static pthread_t thread;

uint64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void swap(size_t a, size_t b)
{
    timer_entry t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void sift_up(size_t i)
{
    while (i > 0 && heap[(i - 1) / 2].due > heap[i].due) {
        swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l].due < heap[m].due)
            m = l;
        if (r < heap_len && heap[r].due < heap[m].due)
            m = r;
        if (m == i)
            return;
        swap(i, m);
        i = m;
    }
}

static timer_entry remove_at(size_t i)
{
    timer_entry e = heap[i];
    heap[i] = heap[--heap_len];
    if (i < heap_len) {
        sift_down(i);
        sift_up(i);
    }
    return e;
}

static void *timer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (running) {
        if (heap_len == 0) {
            pthread_cond_wait(&cond, &lock);
            continue;
        }
        uint64_t now = monotonic_ms();
        if (heap[0].due > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = heap[0].due - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&cond, &lock, &ts);
            continue;
        }
        timer_entry e = remove_at(0);
        pthread_mutex_unlock(&lock);
        route_message(e.to, e.to, e.msg, e.len);
        free(e.msg);
        pthread_mutex_lock(&lock);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

int timers_start(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &attr);
    pthread_condattr_destroy(&attr);
    running = 1;
    if (pthread_create(&thread, NULL, timer_main, NULL) != 0) {
        running = 0;
        return -1;
    }
    return 0;
}

void timers_stop(void)
{
    pthread_mutex_lock(&lock);
    if (!running) {
        pthread_mutex_unlock(&lock);
        return;
    }
    running = 0;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    for (size_t i = 0; i < heap_len; i++)
        free(heap[i].msg);
    free(heap);
    heap = NULL;
    heap_len = heap_cap = 0;
    pthread_cond_destroy(&cond);
}

int timers_add(ph_pid to, unsigned ms, const char *msg, uint32_t len, ph_ref *ref)
{
    char *copy = malloc(len);
    if (!copy)
        return -1;
    memcpy(copy, msg, len);
    *ref = ph_make_ref();
    pthread_mutex_lock(&lock);
    if (heap_len == heap_cap) {
        size_t cap = heap_cap ? heap_cap * 2 : 64;
        timer_entry *n = realloc(heap, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&lock);
            free(copy);
            return -1;
        }
        heap = n;
        heap_cap = cap;
    }
    /* +1: now is rounded down to the millisecond, and a timer never fires
     * early (as erlang:send_after). */
    heap[heap_len] = (timer_entry){monotonic_ms() + ms + 1, *ref, to, len, copy};
    sift_up(heap_len++);
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return 0;
}

int ph_cancel_timer(const ph_ref *ref)
{
    int found = 0;
    char *msg = NULL;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < heap_len; i++) {
        if (ph_ref_equal(&heap[i].ref, ref)) {
            msg = remove_at(i).msg;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    free(msg);
    return found;
}

int ph_send_after(ph_ctx *ctx, unsigned ms, ph_term msg, ph_ref *timer)
{
    ph_buf b;
    if (ph_buf_init_versioned(&b) != 0)
        return -1;
    int rc = ph_buf_append_term(&b, msg);
    if (rc == 0)
        rc = timers_add(ctx->proc->pid, ms, b.buff, (uint32_t)b.index, timer);
    ph_buf_free(&b);
    return rc;
}
