/*
 * hooks.h - hook handlers of the hub: for each hook key, handlers sorted
 * by priority (higher first). A handler is a BEAM pid (it is sent
 * {process_hub, Key, Data}), an {M, F, Args} applied on the registering
 * BEAM node through its rex server (every '_' in Args replaced by Data),
 * or a C function (public API, may alter the data of alter hooks).
 * Owned by the hub process.
 */
#ifndef PH_HOOKS_H
#define PH_HOOKS_H

#include <processhub/hub.h>
#include <processhub/worker.h>

typedef struct hooks hooks;

hooks *hooks_new(void);
void hooks_free(hooks *h);

/* Registers the handler terms of list for key, from_node being the node
 * of the caller (for M/F/A handlers). 0; -1 when any id is already
 * registered for key or repeats within list (nothing is registered then);
 * -2 when a handler term is malformed. */
int hooks_register_terms(hooks *h, const char *key, ph_term list, uint32_t from_node);
int hooks_register_c(hooks *h, const char *key, const char *id, int priority, ph_hub_hook_fn fn,
                     void *arg);
/* Removes the handlers whose ids are in list (unknown ids are fine). */
void hooks_cancel_terms(hooks *h, const char *key, ph_term list);
int hooks_has(const hooks *h, const char *key);
/* Runs the handlers of key with data. For alter hooks, C handlers may
 * replace the data: *data is then updated to point into altered. */
void hooks_dispatch(hooks *h, ph_ctx *ctx, const char *key, ph_term *data, ph_buf *altered);
/* Installs the C handlers registered with ph_hub_register_hook. */
void hooks_install_pending(hooks *h);

#endif
