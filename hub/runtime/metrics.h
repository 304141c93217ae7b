/*
 * metrics.h - named counters and gauges, cheap enough for the hot paths,
 * and their Prometheus text rendering (served by cnode/metrics_http.c).
 *
 * A counter is striped: each thread adds to its own cache line with a
 * relaxed atomic add, so counting a message costs about a nanosecond and
 * threads never contend. A gauge is one atomic value (set or add). Values
 * that are cheaper to compute when scraped (process count, connections by
 * state) come from collector functions instead.
 *
 * Define a metric once, at file scope, in the file that updates it:
 *     METRIC_COUNTER(m_bytes_in, "phnode_dist_received_bytes_total", "",
 *                    "Bytes read from distribution connections.");
 *     ... metric_add(&m_bytes_in, n);
 * `labels` is the label set as Prometheus writes it without braces
 * (`reason="bad_cookie"`), or "". Metrics sharing a name form one family
 * (one HELP/TYPE). Definitions register themselves before main runs.
 */
#ifndef PH_METRICS_H
#define PH_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_STRIPES 16

typedef enum metric_type { METRIC_TYPE_COUNTER, METRIC_TYPE_GAUGE } metric_type;

typedef struct metric_stripe {
    _Alignas(64) _Atomic uint64_t v;
} metric_stripe;

typedef struct metric {
    const char *name;
    const char *labels;
    const char *help;
    metric_type type;
    struct metric *next;
    _Atomic int64_t gauge;
    metric_stripe stripe[METRICS_STRIPES];
} metric;

/* Collectors render families computed at scrape time. */
typedef struct metrics_out metrics_out;
typedef void (*metrics_collector_fn)(metrics_out *out);

void metrics_register(metric *m);
/* Adds a collector; at most 32. 0, or -1 when full. */
int metrics_add_collector(metrics_collector_fn fn);

/* In a collector: a family header, then its samples. */
void metrics_out_family(metrics_out *out, const char *name, metric_type type, const char *help);
void metrics_out_sample(metrics_out *out, const char *name, const char *labels, double value);

/* The whole exposition (text format 0.0.4) in a malloc'ed string; the
 * caller frees it. NULL when out of memory. */
char *metrics_render(size_t *len);

/* A counter's or gauge's current value (tests, collectors). */
uint64_t metric_counter_value(const metric *m);

extern _Thread_local unsigned metrics_thread_slot; /* 0: not assigned yet */
unsigned metrics_assign_slot(void);

static inline void metric_add(metric *m, uint64_t n)
{
    unsigned s = metrics_thread_slot;
    if (__builtin_expect(s == 0, 0))
        s = metrics_assign_slot();
    atomic_fetch_add_explicit(&m->stripe[s - 1].v, n, memory_order_relaxed);
}

static inline void metric_inc(metric *m)
{
    metric_add(m, 1);
}

static inline void metric_gauge_set(metric *m, int64_t v)
{
    atomic_store_explicit(&m->gauge, v, memory_order_relaxed);
}

static inline void metric_gauge_add(metric *m, int64_t d)
{
    atomic_fetch_add_explicit(&m->gauge, d, memory_order_relaxed);
}

#define METRIC_DEFINE_(var, type_, name_, labels_, help_)                                          \
    metric var = {.name = name_, .labels = labels_, .help = help_, .type = type_};                 \
    __attribute__((constructor)) static void var##_register(void)                                  \
    {                                                                                              \
        metrics_register(&var);                                                                    \
    }
#define METRIC_COUNTER(var, name, labels, help)                                                    \
    METRIC_DEFINE_(var, METRIC_TYPE_COUNTER, name, labels, help)
#define METRIC_GAUGE(var, name, labels, help)                                                      \
    METRIC_DEFINE_(var, METRIC_TYPE_GAUGE, name, labels, help)

#endif
