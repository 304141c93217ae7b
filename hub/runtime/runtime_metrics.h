/* runtime_metrics.h - the actor runtime's metrics: signals in and out of
 * mailboxes (counted on the hot paths), and processes, mailbox backlog and
 * scheduler time (read when scraped). */
#ifndef PH_RUNTIME_METRICS_H
#define PH_RUNTIME_METRICS_H

#include "hub/runtime/metrics.h"

extern metric m_signals_in;    /* pushed to a mailbox (scheduler.c) */
extern metric m_signals_taken; /* taken by the process (process_run.c) */

/* This process's resident memory in bytes (/proc/self/statm), or -1. */
long process_resident_bytes(void);

/* Registers the scrape-time collector; 0 or -1. */
int runtime_metrics_init(void);

#endif
