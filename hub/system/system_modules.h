/* system_modules.h - processes every node runs: net_kernel and the phnode
 * service (unsupervised workers). */
#ifndef PH_SYSTEM_MODULES_H
#define PH_SYSTEM_MODULES_H

#include <processhub/worker.h>

extern const ph_worker_module net_kernel_module;
extern const ph_worker_module phnode_service_module;

/* What `status` reports about this node besides the runtime's numbers; set
 * once by main before the network starts (strings are not copied). */
typedef struct phnode_info {
    const char *version;
    const char *hub_id;
    unsigned schedulers;
    unsigned creation;
    const char *strategies[5][2]; /* {kind, description}: distribution, redundancy, ... */
} phnode_info;
void phnode_service_set_info(const phnode_info *info);

/* Registers the system modules and starts them under their names. */
int system_processes_start(void);

#endif
