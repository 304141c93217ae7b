/* modules.h - the worker modules this node can start. */
#ifndef PH_MODULES_H
#define PH_MODULES_H

#include <processhub/worker.h>

/* Calls fn for each registered non-system module, in registration order. */
void modules_for_each(void (*fn)(const ph_worker_module *m, void *arg), void *arg);
/* Loads a --worker-lib shared object and registers its modules. 0 or -1
 * (the reason is logged). */
int modules_load_library(const char *path);
void modules_shutdown(void);

#endif
