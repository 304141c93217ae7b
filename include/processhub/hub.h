/*
 * processhub/hub.h - C hook handlers for the hub.
 *
 * A C handler is called on the hub's thread with the hook's data term. For
 * alter hooks (child_data_alter_hook) it may write a replacement term into
 * `altered` (appending exactly one term) and return 1; the next handler
 * and the hub then use the replacement. Return 0 to leave the data as is.
 *
 * Handlers registered before the hub starts (ph_hub_register_hook, e.g.
 * from an embedding program or a --worker-lib constructor) are installed
 * when it starts.
 */
#ifndef PROCESSHUB_HUB_H
#define PROCESSHUB_HUB_H

#include <processhub/term.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*ph_hub_hook_fn)(void *arg, const char *hook_key, ph_term data, ph_buf *altered);

/* 0, or -1 if id is already registered for hook_key or out of memory. */
int ph_hub_register_hook(const char *hook_key, const char *id, int priority, ph_hub_hook_fn fn,
                         void *arg);

#ifdef __cplusplus
}
#endif

#endif
