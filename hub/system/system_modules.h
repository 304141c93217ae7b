/* system_modules.h - processes every node runs: net_kernel and the phnode
 * service, and the supervisor that restarts them and the hub. */
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

/* Registers the system modules and starts them under their names,
 * unsupervised (for a runtime without node_sup: the unit tests). */
int system_processes_start(void);
/* Registers the system modules and adds net_kernel and the phnode service
 * to the node's supervisor (node_sup.c). */
int system_processes_supervise(void);

/* The node's supervisor (node_sup.c): children added before it starts, in
 * start order; each is spawned with args [] and registered under name. */
int node_sup_add(const char *module, const char *name);
/* Starts phnode_sup, which starts its children; 0, or -1 if one failed
 * (logged). */
int node_sup_start(void);
/* The node is shutting down: no more restarts. */
void node_sup_shutdown(void);

#endif
