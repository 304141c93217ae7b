/* quorum.c - the quorum strategies' arithmetic; see quorum.h. */
#include "strategies/partition/quorum.h"

#include <stdlib.h>
#include <string.h>

int static_quorum_present(long nodes, long quorum_size)
{
    return nodes >= quorum_size;
}

long majority_quorum(long max_seen)
{
    return max_seen / 2 + 1;
}

long majority_initial_size(long initial_cluster_size, long nodes)
{
    long size = initial_cluster_size > 0 ? initial_cluster_size : 1;
    return nodes > size ? nodes : size;
}

long majority_after_join(long max_seen, long nodes, int track_max_size)
{
    return track_max_size && nodes > max_seen ? nodes : max_seen;
}

int majority_present(long max_seen, long nodes)
{
    return nodes >= majority_quorum(max_seen);
}

void dq_log_free(dq_log *l)
{
    free(l->log);
    l->log = NULL;
    l->n = l->cap = 0;
}

void dq_log_prune(dq_log *l, long now, long threshold_s, uint32_t node)
{
    long oldest = now - threshold_s;
    int k = 0;
    for (int i = 0; i < l->n; i++)
        if (l->log[i].at >= oldest && l->log[i].node != node)
            l->log[k++] = l->log[i];
    l->n = k;
}

int dq_log_add(dq_log *l, uint32_t node, long now)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        if (cap > DQ_MAX_LOG)
            cap = DQ_MAX_LOG;
        dq_entry *n = cap > l->cap ? realloc(l->log, (size_t)cap * sizeof *n) : l->log;
        if (!n)
            return -1;
        l->log = n;
        l->cap = cap;
        if (l->n == l->cap)
            l->n--; /* full: the oldest goes */
    }
    memmove(l->log + 1, l->log, (size_t)l->n * sizeof *l->log);
    l->log[0] = (dq_entry){node, now};
    l->n++;
    return 0;
}

int dq_log_take(dq_log *l, const dq_entry *entries, int n)
{
    if (n <= l->n)
        return 0;
    if (n > DQ_MAX_LOG)
        n = DQ_MAX_LOG;
    dq_entry *log = malloc((size_t)n * sizeof *log);
    if (!log)
        return -1;
    memcpy(log, entries, (size_t)n * sizeof *log);
    free(l->log);
    l->log = log;
    l->n = l->cap = n;
    return 1;
}

int dq_failing(long up, long down, long quorum_pct)
{
    double u = (double)up, d = (double)down;
    return 100.0 - d / (u + d) * 100.0 < (double)quorum_pct;
}
