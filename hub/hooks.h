/*
 * hooks.h - hook handlers of the hub: for each hook key, handlers sorted
 * by priority (higher first). A handler is a BEAM pid (it is sent
 * {process_hub, Key, Data}), an {M, F, Args} applied on the registering
 * BEAM node through its rex server (every '_' in Args replaced by Data),
 * or a C function (public API, may alter the data of alter hooks).
 * Runs are ordered and M/F/A handlers awaited (hooks_run).
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
/* Runs the handlers of key with data at once, waiting for none: M/F/A
 * handlers are sent their call and not awaited (the hub's terminate).
 * For alter hooks, C handlers may replace the data: *data is then updated
 * to point into altered. */
void hooks_dispatch(hooks *h, ph_ctx *ctx, const char *key, ph_term *data, ph_buf *altered);

/* How long a run waits for one M/F/A handler (docs/api.md, "Hooks"). */
#define HOOKS_CALL_TIMEOUT_MS 5000

/* Called when a run is over, with its data (for alter hooks the data the
 * last handler left); arg is then the callee's. */
typedef void (*hooks_cont_fn)(void *arg, ph_ctx *ctx, ph_term data);
/* Frees arg of a run dropped before it was over (the hub stopped). */
typedef void (*hooks_drop_fn)(void *arg);

/* Runs the handlers of key with data in priority order, after every run
 * asked for before it: C handlers and pid handlers at once, M/F/A handlers
 * called through rex and awaited (up to the call timeout; a crash or
 * timeout is logged and the handler skipped) before the next handler. With
 * alter set, each C or M/F/A handler's answer becomes the data of the next.
 * Then cont(arg, ctx, data), if cont. Runs at once when no earlier run waits
 * and no handler of key is M/F/A. key NULL: only cont, after the earlier
 * runs. The data is copied. */
void hooks_run(hooks *h, ph_ctx *ctx, const char *key, ph_term data, int alter, hooks_cont_fn cont,
               hooks_drop_fn drop, void *arg);
/* An answer of an M/F/A handler ({Tag, Result}) or a call's timer: 1 if it
 * was one (the waiting run goes on), 0 if the message is not about hooks. */
int hooks_message(hooks *h, ph_ctx *ctx, ph_term msg);
/* 1 if a handler of key is M/F/A (a run of key waits for it). */
int hooks_awaits(const hooks *h, const char *key);
/* 1 while runs are queued or waiting. */
int hooks_busy(const hooks *h);
/* The hub stops: the queued runs' remaining handlers, not waited for;
 * their continuations are dropped. */
void hooks_flush_nowait(hooks *h, ph_ctx *ctx);
void hooks_set_call_timeout(hooks *h, unsigned ms);
unsigned hooks_call_timeout(const hooks *h);
/* Installs the C handlers registered with ph_hub_register_hook. */
void hooks_install_pending(hooks *h);

#endif
