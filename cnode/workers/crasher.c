/*
 * crasher - for failure tests.
 *   args []            an ordinary worker: an exit signal other than normal kills it
 *   args [trap_exit]   traps exits and ignores every {'EXIT', Pid, Reason} it gets,
 *                      its supervisor's shutdown included: no exit signal but kill
 *                      ends it (a hub child is killed after its shutdown ms)
 *   other args         init fails with {bad_args, Args}
 *   call {crash, Reason} -> the worker exits with Reason before replying
 *   call {stop, Reason}  -> replies ok, then stops with Reason
 *   call {sleep, Ms}     -> sleeps Ms (blocking its scheduler thread), replies ok
 *   call ignored_exits   -> the number of {'EXIT', _, _} messages ignored so far
 */
#include "cnode/workers/workers.h"

#include <stdlib.h>
#include <time.h>

typedef struct crasher {
    long ignored_exits;
} crasher;

static ph_result crasher_init(ph_ctx *ctx, ph_term args, void **state)
{
    int trap = 0;
    if (ph_match(args, "[trap_exit]") == 1)
        trap = 1;
    else if (ph_match(args, "[]") != 1) {
        ph_stop_reasonf(ctx, "{bad_args, ~t}", args);
        return PH_STOP;
    }
    crasher *c = calloc(1, sizeof *c);
    if (!c) {
        ph_stop_reasonf(ctx, "enomem");
        return PH_STOP;
    }
    if (trap)
        ph_trap_exit(ctx, 1);
    *state = c;
    return PH_OK;
}

static ph_result crasher_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                              ph_buf *reply)
{
    (void)from;
    crasher *c = state;
    ph_term reason;
    long ms;
    if (ph_match(request, "{crash, ~t}", &reason) == 1) {
        ph_set_stop_reason(ctx, reason);
        return PH_STOP;
    }
    if (ph_match(request, "{stop, ~t}", &reason) == 1) {
        ph_set_stop_reason(ctx, reason);
        return ph_build(reply, "ok") == 0 ? PH_STOP_REPLY : PH_STOP;
    }
    if (ph_match(request, "{sleep, ~i}", &ms) == 1 && ms >= 0) {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
        return ph_build(reply, "ok") == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(request, "ignored_exits") == 1)
        return ph_build(reply, "~i", c->ignored_exits) == 0 ? PH_REPLY : PH_NOREPLY;
    return ph_build(reply, "{error, {unknown_call, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

static ph_result crasher_info(ph_ctx *ctx, void *state, ph_term message)
{
    (void)ctx;
    crasher *c = state;
    if (ph_match(message, "{'EXIT', _, _}") == 1)
        c->ignored_exits++;
    return PH_OK;
}

static void crasher_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

const ph_worker_module crasher_module = {
    .name = "crasher",
    .init = crasher_init,
    .handle_call = crasher_call,
    .handle_info = crasher_info,
    .terminate = crasher_terminate,
};
