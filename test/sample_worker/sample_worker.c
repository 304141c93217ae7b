/* sample_worker.c - a worker library loaded with --worker-lib in the
 * integration tests: module `greeter`, call {hello, Name} ->
 * {hello, Name, from_library}; module `slow_start`, whose init with args
 * [Ms] takes Ms milliseconds (a start that keeps its hub busy), or
 * PH_SAMPLE_SLOW_START_MS milliseconds when that is set in phnode's
 * environment (one node slow, the others not).
 *
 * With PH_SAMPLE_ALTER_HOOK set in phnode's environment it also registers
 * a C child_data_alter_hook handler: a child whose id is a binary starting
 * with "alter_" starts with the args [42] instead of its own. */
#include <processhub/hub.h>
#include <processhub/worker.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static ph_result slow_start_init(ph_ctx *ctx, ph_term args, void **state)
{
    long ms;
    (void)state;
    if (ph_match(args, "[~i]", &ms) != 1 || ms < 0 || ms > 60000) {
        ph_stop_reasonf(ctx, "{bad_args, ~t}", args);
        return PH_STOP;
    }
    const char *override = getenv("PH_SAMPLE_SLOW_START_MS");
    if (override && atol(override) >= 0 && atol(override) <= 60000)
        ms = atol(override);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return PH_OK;
}

static const ph_worker_module slow_start = {
    .name = "slow_start",
    .init = slow_start_init,
};

const ph_worker_module *const ph_worker_modules[] = {&greeter, &slow_start, NULL};

static int alter_args(void *arg, const char *hook_key, ph_term data, ph_buf *altered)
{
    (void)arg;
    (void)hook_key;
    ph_term hub_id, nodes, cid, spec, meta, start, m, f;
    const char *id;
    size_t id_len;
    if (ph_map_get_atom(data, "hub_id", &hub_id) != 1 ||
        ph_map_get_atom(data, "nodes", &nodes) != 1 ||
        ph_map_get_atom(data, "child_id", &cid) != 1 ||
        ph_map_get_atom(data, "child_spec", &spec) != 1 ||
        ph_map_get_atom(data, "metadata", &meta) != 1 || ph_match(cid, "~b", &id, &id_len) != 1 ||
        id_len < 6 || memcmp(id, "alter_", 6) != 0 || ph_map_get_atom(spec, "start", &start) != 1 ||
        ph_match(start, "{~t, ~t, _}", &m, &f) != 1)
        return 0;
    return ph_build(altered,
                    "#{hub_id => ~t, nodes => ~t, child_id => ~t, "
                    "child_spec => #{id => ~t, start => {~t, ~t, [42]}}, metadata => ~t}",
                    hub_id, nodes, cid, cid, m, f, meta) == 0
               ? 1
               : 0;
}

__attribute__((constructor)) static void register_alter_hook(void)
{
    if (getenv("PH_SAMPLE_ALTER_HOOK"))
        ph_hub_register_hook("child_data_alter_hook", "sample_alter", 0, alter_args, NULL);
}
