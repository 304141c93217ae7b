/*
 * phnode_service.c - the registered process `phnode`: starts unsupervised
 * workers and lists the loaded worker modules.
 *
 *   {spawn, Module, Args, Opts} -> {ok, Pid} | {error, Reason}
 *       Opts: [{name, Atom}]
 *   modules                     -> [Module]
 *   nodes                       -> [Node]   nodes with an open connection
 *   {whereis, Name}             -> Pid | nil   a registered process here
 *   status                      -> #{version, uptime_ms, creation, schedulers,
 *                                    connections, processes, memory_bytes,
 *                                    hub_id, strategies => #{kind => text}}
 *   {is_alive, HubId}           -> true | false   (ProcessHub.is_alive?/1)
 *   {stop, HubId}               -> ok | {error, not_alive}   (ProcessHub.stop/1:
 *                                    answered once the hub has stopped)
 */
#include "hub/runtime/atoms.h"
#include "hub/runtime/runtime_metrics.h"
#include "hub/runtime/modules.h"
#include "hub/runtime/process.h"
#include "hub/runtime/remote.h"
#include "hub/system/system_modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static phnode_info info;
static struct timespec started;

void phnode_service_set_info(const phnode_info *i)
{
    info = *i;
    clock_gettime(CLOCK_MONOTONIC, &started);
}

static void count_node(uint32_t node, void *arg)
{
    (void)node;
    (*(long *)arg)++;
}

static ph_result handle_status(ph_buf *reply)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long uptime_ms = (long)(now.tv_sec - started.tv_sec) * 1000 +
                     (long)(now.tv_nsec - started.tv_nsec) / 1000000;
    long connections = 0;
    remote_for_each_node(count_node, &connections);
    int n_strategies = 0;
    while (n_strategies < 5 && info.strategies[n_strategies][0])
        n_strategies++;
    if (ei_x_encode_map_header(reply, 9) != 0 || ph_build(reply, "version") ||
        ph_build(reply, "~s", info.version ? info.version : "") || ph_build(reply, "uptime_ms") ||
        ph_build(reply, "~i", uptime_ms) || ph_build(reply, "creation") ||
        ph_build(reply, "~i", (long)info.creation) || ph_build(reply, "schedulers") ||
        ph_build(reply, "~i", (long)info.schedulers) || ph_build(reply, "connections") ||
        ph_build(reply, "~i", connections) || ph_build(reply, "processes") ||
        ph_build(reply, "~i", (long)process_count()) || ph_build(reply, "memory_bytes") ||
        ph_build(reply, "~i", process_resident_bytes()) || ph_build(reply, "hub_id") ||
        ph_build(reply, "~a", info.hub_id ? info.hub_id : "my_hub") ||
        ph_build(reply, "strategies") || ei_x_encode_map_header(reply, n_strategies) != 0)
        return PH_NOREPLY;
    for (int i = 0; i < n_strategies; i++)
        if (ph_build(reply, "~a", info.strategies[i][0]) ||
            ph_build(reply, "~s", info.strategies[i][1]))
            return PH_NOREPLY;
    return PH_REPLY;
}

typedef struct list_builder {
    ph_buf *b;
    int ok;
} list_builder;

static void add_module(const ph_worker_module *m, void *arg)
{
    list_builder *lb = arg;
    if (lb->ok && (ei_x_encode_list_header(lb->b, 1) != 0 || ei_x_encode_atom(lb->b, m->name) != 0))
        lb->ok = 0;
}

static void add_node(uint32_t node, void *arg)
{
    list_builder *lb = arg;
    if (lb->ok && (ei_x_encode_list_header(lb->b, 1) != 0 || atom_encode(lb->b, node) != 0))
        lb->ok = 0;
}

/* Reads [{name, Atom}] into opts; on a bad option writes the error reply. */
static int parse_spawn_opts(ph_term list, ph_spawn_opts *opts, char *name, ph_buf *reply)
{
    ph_iter it;
    ph_term opt;
    if (ph_iter_begin(&it, list) < 0 || ph_term_type(list, NULL) == ERL_SMALL_TUPLE_EXT ||
        ph_term_type(list, NULL) == ERL_LARGE_TUPLE_EXT) {
        ph_build(reply, "{error, {bad_options, ~t}}", list);
        return -1;
    }
    int rc;
    while ((rc = ph_iter_next(&it, &opt)) > 0) {
        if (ph_match(opt, "{name, ~a}", name) == 1) {
            opts->name = name;
            continue;
        }
        ph_build(reply, "{error, {bad_option, ~t}}", opt);
        return -1;
    }
    if (rc < 0) {
        ph_build(reply, "{error, {bad_options, ~t}}", list);
        return -1;
    }
    return 0;
}

static ph_result handle_spawn(ph_ctx *ctx, ph_term module_term, ph_term args, ph_term opts_term,
                              ph_buf *reply)
{
    char module[PH_ATOM_BUF], name[PH_ATOM_BUF];
    if (ph_match(module_term, "~a", module) != 1) {
        ph_build(reply, "{error, {bad_module, ~t}}", module_term);
        return PH_REPLY;
    }
    ph_spawn_opts opts = {0};
    if (parse_spawn_opts(opts_term, &opts, name, reply) != 0)
        return PH_REPLY;
    ph_buf error;
    if (ph_buf_init(&error) != 0)
        return PH_NOREPLY;
    ph_pid pid;
    if (ph_spawn(ctx, module, args, &opts, &pid, &error) == 0) {
        ei_x_encode_tuple_header(reply, 2);
        ei_x_encode_atom(reply, "ok");
        ph_encode_pid(reply, pid);
    } else {
        ph_build(reply, "{error, ~t}", ph_buf_term(&error));
    }
    ph_buf_free(&error);
    return PH_REPLY;
}

/* Hub stops asked for: answered when the hub's DOWN comes. */
typedef struct hub_stop {
    struct hub_stop *next;
    ph_ref mon;
    ph_from *from;
} hub_stop;

static hub_stop *stops;

static ph_result handle_hub_stop(ph_ctx *ctx, const char *hub_id, const ph_from *from,
                                 ph_buf *reply)
{
    ph_pid hub;
    if (ph_whereis(hub_id, &hub) != 0) {
        ph_build(reply, "{error, not_alive}");
        return PH_REPLY;
    }
    hub_stop *s = calloc(1, sizeof *s);
    ph_buf req;
    if (!s || ph_monitor(ctx, hub, &s->mon) != 0 || ph_buf_init(&req) != 0) {
        free(s);
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    s->from = ph_from_copy(from);
    s->next = stops;
    stops = s;
    /* the hub's own stop request; its answer to us is dropped (the DOWN
     * says it is over) */
    ei_x_encode_tuple_header(&req, 3);
    ei_x_encode_atom(&req, "$gen_call");
    ei_x_encode_tuple_header(&req, 2);
    ph_encode_pid(&req, ph_self(ctx));
    ph_encode_ref(&req, &s->mon);
    ei_x_encode_atom(&req, "stop");
    ph_send(ctx, hub, ph_buf_term(&req));
    ph_buf_free(&req);
    return PH_NOREPLY;
}

static ph_result service_info(ph_ctx *ctx, void *state, ph_term msg)
{
    ph_term rt;
    ph_ref ref;
    (void)ctx;
    (void)state;
    if (ph_match(msg, "{'DOWN', ~t, process, _, _}", &rt) != 1 || ph_decode_ref(rt, &ref) != 0)
        return PH_OK; /* the hub's ok, or anything else */
    for (hub_stop **ps = &stops; *ps; ps = &(*ps)->next) {
        hub_stop *s = *ps;
        if (!ph_ref_equal(&s->mon, &ref))
            continue;
        *ps = s->next;
        ph_buf ok = {0};
        if (ph_buf_init(&ok) == 0 && ph_build(&ok, "ok") == 0)
            ph_reply(s->from, ph_buf_term(&ok)); /* frees from */
        else
            ph_from_free(s->from);
        if (ok.buff)
            ph_buf_free(&ok);
        free(s);
        break;
    }
    return PH_OK;
}

static ph_result service_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                              ph_buf *reply)
{
    (void)state;
    ph_term module, args, opts;
    char hub_id[PH_ATOM_BUF];
    ph_pid hub;
    if (ph_match(request, "{is_alive, ~a}", hub_id) == 1)
        return ph_build(reply, ph_whereis(hub_id, &hub) == 0 ? "true" : "false") == 0 ? PH_REPLY
                                                                                      : PH_NOREPLY;
    if (ph_match(request, "{stop, ~a}", hub_id) == 1)
        return handle_hub_stop(ctx, hub_id, from, reply);
    if (ph_match(request, "{spawn, ~t, ~t, ~t}", &module, &args, &opts) == 1)
        return handle_spawn(ctx, module, args, opts, reply);
    if (ph_match(request, "modules") == 1) {
        list_builder lb = {reply, 1};
        modules_for_each(add_module, &lb);
        if (lb.ok && ei_x_encode_empty_list(reply) == 0)
            return PH_REPLY;
        return PH_NOREPLY;
    }
    if (ph_match(request, "status") == 1)
        return handle_status(reply);
    char name[PH_ATOM_BUF];
    if (ph_match(request, "{whereis, ~a}", name) == 1) {
        ph_pid pid;
        if (ph_whereis(name, &pid) != 0)
            return ph_build(reply, "nil") == 0 ? PH_REPLY : PH_NOREPLY;
        return ph_encode_pid(reply, pid) == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(request, "nodes") == 1) {
        list_builder lb = {reply, 1};
        remote_for_each_node(add_node, &lb);
        if (lb.ok && ei_x_encode_empty_list(reply) == 0)
            return PH_REPLY;
        return PH_NOREPLY;
    }
    ph_build(reply, "{error, {unknown_request, ~t}}", request);
    return PH_REPLY;
}

const ph_worker_module phnode_service_module = {
    .name = "phnode",
    .handle_call = service_call,
    .handle_info = service_info,
    .system = 1,
};

int system_processes_start(void)
{
    static const ph_worker_module *const system[] = {&net_kernel_module, &phnode_service_module};
    ph_buf none;
    if (ph_buf_init(&none) != 0 || ph_build(&none, "[]") != 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < sizeof system / sizeof system[0] && rc == 0; i++) {
        ph_spawn_opts opts = {.name = system[i]->name};
        ph_pid pid;
        if (ph_register_module(system[i]) != 0 ||
            ph_spawn(NULL, system[i]->name, ph_buf_term(&none), &opts, &pid, NULL) != 0)
            rc = -1;
    }
    ph_buf_free(&none);
    return rc;
}

int system_processes_supervise(void)
{
    static const ph_worker_module *const system[] = {&net_kernel_module, &phnode_service_module};
    for (size_t i = 0; i < sizeof system / sizeof system[0]; i++)
        if (ph_register_module(system[i]) != 0 ||
            node_sup_add(system[i]->name, system[i]->name) != 0)
            return -1;
    return 0;
}
