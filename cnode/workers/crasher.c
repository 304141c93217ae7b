/*
 * crasher - for failure tests.
 *   call {crash, Reason} -> the worker exits with Reason before replying
 *   call {stop, Reason}  -> replies ok, then stops with Reason
 *   call {sleep, Ms}     -> sleeps Ms (blocking its scheduler thread), replies ok
 */
#include "cnode/workers/workers.h"

#include <time.h>

static ph_result crasher_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                              ph_buf *reply)
{
    (void)state;
    (void)from;
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
    return ph_build(reply, "{error, {unknown_call, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

const ph_worker_module crasher_module = {
    .name = "crasher",
    .handle_call = crasher_call,
};
