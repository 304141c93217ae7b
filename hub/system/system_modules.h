/* system_modules.h - processes every node runs: net_kernel and the phnode
 * service (unsupervised workers). */
#ifndef PH_SYSTEM_MODULES_H
#define PH_SYSTEM_MODULES_H

#include <processhub/worker.h>

extern const ph_worker_module net_kernel_module;
extern const ph_worker_module phnode_service_module;

/* Registers the system modules and starts them under their names. */
int system_processes_start(void);

#endif
