/* sample_worker.c - a worker library loaded with --worker-lib in the
 * integration tests: module `greeter`, call {hello, Name} ->
 * {hello, Name, from_library}. */
#include <processhub/worker.h>

static ph_result greeter_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                              ph_buf *reply)
{
    (void)ctx;
    (void)state;
    (void)from;
    ph_term name;
    if (ph_match(request, "{hello, ~t}", &name) == 1)
        return ph_build(reply, "{hello, ~t, from_library}", name) == 0 ? PH_REPLY : PH_NOREPLY;
    return ph_build(reply, "{error, {unknown_call, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

static const ph_worker_module greeter = {
    .name = "greeter",
    .handle_call = greeter_call,
};

const ph_worker_module *const ph_worker_modules[] = {&greeter, NULL};
