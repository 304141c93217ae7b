/* workers.h - the worker modules bundled with phnode: examples of the
 * worker API and fixtures for the tests. Their protocols are documented
 * in docs/worker-api.md. */
#ifndef PH_WORKERS_H
#define PH_WORKERS_H

#include <processhub/worker.h>

extern const ph_worker_module echo_module;
extern const ph_worker_module counter_module;
extern const ph_worker_module kv_module;
extern const ph_worker_module crasher_module;

/* Registers all bundled modules. 0 or -1. */
int bundled_workers_register(void);

#endif
