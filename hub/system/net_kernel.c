/* net_kernel.c - the registered process `net_kernel`: answers
 * {is_auth, Node} with yes so that net_adm:ping / Node.ping work (the BEAM
 * sends that call with an infinite timeout). Other requests get an error
 * reply rather than silence. */
#include "hub/system/system_modules.h"

static ph_result net_kernel_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                                 ph_buf *reply)
{
    (void)ctx;
    (void)state;
    (void)from;
    if (ph_match(request, "{is_auth, _}") == 1)
        return ph_build(reply, "yes") == 0 ? PH_REPLY : PH_NOREPLY;
    return ph_build(reply, "{error, {unsupported, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

const ph_worker_module net_kernel_module = {
    .name = "net_kernel",
    .handle_call = net_kernel_call,
    .system = 1,
};
