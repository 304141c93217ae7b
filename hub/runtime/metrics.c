/* metrics.c - the metric registry and its Prometheus text rendering. */
#include "hub/runtime/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLLECTORS 32

static metric *metrics_head; /* registration order reversed; set before main */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static metrics_collector_fn collectors[MAX_COLLECTORS];
static int n_collectors;
static _Atomic unsigned next_slot;
_Thread_local unsigned metrics_thread_slot;

struct metrics_out {
    char *buf;
    size_t len, cap;
    int failed;
};

unsigned metrics_assign_slot(void)
{
    unsigned s = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % METRICS_STRIPES;
    metrics_thread_slot = s + 1;
    return s + 1;
}

void metrics_register(metric *m)
{
    pthread_mutex_lock(&lock);
    /* Keep definition order within the list: append. */
    metric **at = &metrics_head;
    while (*at)
        at = &(*at)->next;
    m->next = NULL;
    *at = m;
    pthread_mutex_unlock(&lock);
}

int metrics_add_collector(metrics_collector_fn fn)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < n_collectors; i++)
        if (collectors[i] == fn)
            rc = 0;
    if (rc != 0 && n_collectors < MAX_COLLECTORS) {
        collectors[n_collectors++] = fn;
        rc = 0;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

uint64_t metric_counter_value(const metric *m)
{
    if (m->type == METRIC_TYPE_GAUGE)
        return (uint64_t)atomic_load_explicit(&m->gauge, memory_order_relaxed);
    uint64_t sum = 0;
    for (int i = 0; i < METRICS_STRIPES; i++)
        sum += atomic_load_explicit(&m->stripe[i].v, memory_order_relaxed);
    return sum;
}

static void out_printf(metrics_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(metrics_out *o, const char *fmt, ...)
{
    if (o->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->failed = 1;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

void metrics_out_family(metrics_out *out, const char *name, metric_type type, const char *help)
{
    out_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
               type == METRIC_TYPE_COUNTER ? "counter" : "gauge");
}

void metrics_out_sample(metrics_out *out, const char *name, const char *labels, double value)
{
    if (labels && *labels)
        out_printf(out, "%s{%s} %.17g\n", name, labels, value);
    else
        out_printf(out, "%s %.17g\n", name, value);
}

static void render_metric(metrics_out *o, const metric *m)
{
    if (m->type == METRIC_TYPE_GAUGE)
        metrics_out_sample(o, m->name, m->labels,
                           (double)atomic_load_explicit(&m->gauge, memory_order_relaxed));
    else if (m->labels && *m->labels)
        out_printf(o, "%s{%s} %llu\n", m->name, m->labels,
                   (unsigned long long)metric_counter_value(m));
    else
        out_printf(o, "%s %llu\n", m->name, (unsigned long long)metric_counter_value(m));
}

char *metrics_render(size_t *len)
{
    metrics_out o = {.cap = 16384};
    o.buf = malloc(o.cap);
    if (!o.buf)
        return NULL;
    o.buf[0] = 0;
    pthread_mutex_lock(&lock);
    /* Families: every metric whose name was not seen before starts one and
     * takes the later metrics of the same name with it. */
    for (metric *m = metrics_head; m; m = m->next) {
        int seen = 0;
        for (metric *p = metrics_head; p != m && !seen; p = p->next)
            seen = strcmp(p->name, m->name) == 0;
        if (seen)
            continue;
        metrics_out_family(&o, m->name, m->type, m->help);
        for (metric *s = m; s; s = s->next)
            if (strcmp(s->name, m->name) == 0)
                render_metric(&o, s);
    }
    int n = n_collectors;
    metrics_collector_fn fns[MAX_COLLECTORS];
    memcpy(fns, collectors, sizeof fns);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++)
        fns[i](&o);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
