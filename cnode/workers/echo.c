/* echo - call X -> X. The smallest possible worker. */
#include "cnode/workers/workers.h"

static ph_result echo_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                           ph_buf *reply)
{
    (void)ctx;
    (void)state;
    (void)from;
    return ph_buf_append_term(reply, request) == 0 ? PH_REPLY : PH_NOREPLY;
}

const ph_worker_module echo_module = {
    .name = "echo",
    .handle_call = echo_call,
};

int bundled_workers_register(void)
{
    const ph_worker_module *all[] = {&echo_module, &counter_module, &kv_module, &crasher_module};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (ph_register_module(all[i]) != 0)
            return -1;
    return 0;
}
