/* runtime_metrics.c - the actor runtime's metrics (see runtime_metrics.h). */
#include "hub/runtime/runtime_metrics.h"

#include <stdio.h>
#include <unistd.h>

#include "hub/runtime/process.h"

#include <stdio.h>

METRIC_COUNTER(m_signals_in, "phnode_signals_enqueued_total", "",
               "Signals (messages, calls, links, monitors, exits) pushed to mailboxes.");
METRIC_COUNTER(m_signals_taken, "phnode_signals_dequeued_total", "",
               "Signals taken from their mailbox by the receiving process.");

static void collect(metrics_out *out)
{
    metrics_out_family(out, "phnode_processes", METRIC_TYPE_GAUGE,
                       "Processes alive on this node (workers, hub children, system).");
    metrics_out_sample(out, "phnode_processes", "", process_count());
    /* Read taken first: a signal counted as taken was counted as pushed
     * before, so the difference never goes below what was really waiting
     * by more than the races of this instant. */
    uint64_t taken = metric_counter_value(&m_signals_taken);
    uint64_t pushed = metric_counter_value(&m_signals_in);
    metrics_out_family(out, "phnode_mailbox_backlog", METRIC_TYPE_GAUGE,
                       "Signals waiting in mailboxes, summed over every process.");
    metrics_out_sample(out, "phnode_mailbox_backlog", "",
                       pushed > taken ? (double)(pushed - taken) : 0);
    metrics_out_family(out, "phnode_run_queue_length", METRIC_TYPE_GAUGE,
                       "Processes waiting for a scheduler thread.");
    metrics_out_sample(out, "phnode_run_queue_length", "", scheduler_runq_length());
    unsigned n = scheduler_count();
    metrics_out_family(out, "phnode_schedulers", METRIC_TYPE_GAUGE, "Scheduler threads.");
    metrics_out_sample(out, "phnode_schedulers", "", n);
    metrics_out_family(out, "phnode_scheduler_busy_seconds_total", METRIC_TYPE_COUNTER,
                       "Time each scheduler thread spent running processes.");
    for (unsigned i = 0; i < n; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "scheduler=\"%u\"", i + 1);
        metrics_out_sample(out, "phnode_scheduler_busy_seconds_total", labels,
                           (double)scheduler_busy_us(i) / 1e6);
    }
}

int runtime_metrics_init(void)
{
    return metrics_add_collector(collect);
}

long process_resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size = 0, rss = 0;
    int n = fscanf(f, "%ld %ld", &size, &rss);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? rss * page : -1;
}
