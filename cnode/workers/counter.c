/*
 * counter - an integer.
 *   args [Initial]
 *   call get -> N          call {add, K} -> new N       cast {add, K}
 *   N is 64-bit: an add past its range answers {error, overflow} (a cast
 *   is logged and ignored) and N keeps its value
 *   call mode -> active | passive | undefined: the Mode of the last
 *     {process_hub, redundancy_signal, Mode} message received
 *   handover state: N
 */
#include "cnode/workers/workers.h"
#include "hub/runtime/log.h"

#include <stdlib.h>
#include <string.h>

typedef struct counter {
    long value;
    char mode[16]; /* "" = undefined */
} counter;

static ph_result counter_init(ph_ctx *ctx, ph_term args, void **state)
{
    long initial = 0;
    if (ph_match(args, "[~i]", &initial) != 1 && ph_match(args, "[]") != 1) {
        ph_stop_reasonf(ctx, "{bad_args, ~t}", args);
        return PH_STOP;
    }
    counter *c = calloc(1, sizeof *c);
    if (!c) {
        ph_stop_reasonf(ctx, "enomem");
        return PH_STOP;
    }
    c->value = initial;
    *state = c;
    return PH_OK;
}

static ph_result counter_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                              ph_buf *reply)
{
    (void)ctx;
    (void)from;
    counter *c = state;
    long k;
    if (ph_match(request, "get") == 1)
        return ph_build(reply, "~i", c->value) == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(request, "{add, ~i}", &k) == 1) {
        long sum;
        /* a 64-bit counter: past its range it refuses and keeps its value
         * (an Elixir counter would become a bignum) */
        if (__builtin_add_overflow(c->value, k, &sum))
            return ph_build(reply, "{error, overflow}") == 0 ? PH_REPLY : PH_NOREPLY;
        c->value = sum;
        return ph_build(reply, "~i", c->value) == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(request, "mode") == 1)
        return ph_build(reply, "~a", c->mode[0] ? c->mode : "undefined") == 0 ? PH_REPLY
                                                                              : PH_NOREPLY;
    return ph_build(reply, "{error, {unknown_call, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

static ph_result counter_cast(ph_ctx *ctx, void *state, ph_term request)
{
    (void)ctx;
    counter *c = state;
    long k;
    long sum;
    if (ph_match(request, "{add, ~i}", &k) == 1) {
        if (__builtin_add_overflow(c->value, k, &sum))
            LOG_W("counter", "cast {add, %ld} would overflow %ld; ignored", k, c->value);
        else
            c->value = sum;
    }
    return PH_OK;
}

static ph_result counter_info(ph_ctx *ctx, void *state, ph_term message)
{
    (void)ctx;
    counter *c = state;
    char mode[PH_ATOM_BUF];
    if (ph_match(message, "{process_hub, redundancy_signal, ~a}", mode) == 1 &&
        strlen(mode) < sizeof c->mode)
        strcpy(c->mode, mode);
    return PH_OK;
}

static void counter_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    (void)ctx;
    (void)reason;
    free(state);
}

static int counter_prepare_handover(ph_ctx *ctx, void *state, ph_buf *out)
{
    (void)ctx;
    return ph_build(out, "~i", ((counter *)state)->value);
}

static int counter_alter_handover(ph_ctx *ctx, void **state, ph_term handover)
{
    (void)ctx;
    long value;
    if (ph_match(handover, "~i", &value) != 1)
        return -1;
    ((counter *)*state)->value = value;
    return 0;
}

const ph_worker_module counter_module = {
    .name = "counter",
    .init = counter_init,
    .handle_call = counter_call,
    .handle_cast = counter_cast,
    .handle_info = counter_info,
    .terminate = counter_terminate,
    .prepare_handover_state = counter_prepare_handover,
    .alter_handover_state = counter_alter_handover,
};
