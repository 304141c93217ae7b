/*
 * main.c - phnode: start-up, waiting for SIGTERM/SIGINT, orderly shutdown.
 *
 * Start-up order matters: the runtime and the registered processes exist
 * before the node listens, so the first connection already finds them.
 * Shutdown runs it backwards: workers stop first (terminate callbacks run,
 * exit signals and DOWNs reach linked and monitoring BEAM processes), then
 * the connections are flushed and closed, then the name leaves epmd.
 */
#include "cnode/ctl.h"
#include "cnode/memory_setup.h"
#include "cnode/metrics_http.h"
#include "cnode/options.h"
#include "cnode/workers/workers.h"
#include "ei_glue/connection.h"
#include "ei_glue/dist.h"
#include "ei_glue/node.h"
#include "hub/runtime/atoms.h"
#include "hub/hub.h"
#include "hub/runtime/bigbuf.h"
#include "hub/runtime/log.h"
#include "hub/runtime/modules.h"
#include "hub/runtime/names.h"
#include "hub/runtime/process.h"
#include "hub/runtime/runtime.h"
#include "hub/system/system_modules.h"
#include "hub/runtime/thread_buf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnode/version.h"

static int fail(const char *msg)
{
    fprintf(stderr, "phnode: %s\n", msg);
    return 2;
}

static int load_modules(const options *o)
{
    if (bundled_workers_register() != 0)
        return -1;
    for (int i = 0; i < o->n_worker_libs; i++)
        if (modules_load_library(o->worker_libs[i]) != 0)
            return -1;
    return 0;
}

int main(int argc, char **argv)
{
    /* `phnode ctl ...`: the control command, a short-lived client. */
    if (argc > 1 && strcmp(argv[1], "ctl") == 0)
        return ctl_main(argc - 1, argv + 1);
    options opts;
    char err[512];
    memory_setup_tune_malloc();
    if (options_parse(&opts, argc, argv, err, sizeof err) != 0) {
        options_usage_hint(argv[0], err);
        options_free(&opts);
        return 2;
    }
    if (opts.help || opts.version) {
        if (opts.help)
            options_usage(argv[0]);
        else
            printf("phnode %s\n", PHNODE_VERSION);
        options_free(&opts);
        return 0;
    }
    if (opts.log_level) {
        log_level level;
        if (log_level_parse(opts.log_level, &level) != 0) {
            options_free(&opts);
            return fail("--log-level must be one of error, warning, info, debug");
        }
        log_set_level(level);
    }
    if (opts.log_format) {
        log_format format;
        if (log_format_parse(opts.log_format, &format) == 0)
            log_set_format(format);
    }
    log_set_node(opts.name);

    /* Signals are taken by sigwait in this thread only. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (ei_init() != 0) {
        options_free(&opts);
        return fail("ei_init failed");
    }
    static node_identity node;
    if (node_init(&node, opts.name, opts.cookie, err, sizeof err) != 0) {
        options_free(&opts);
        return fail(err);
    }
    runtime_config rc = {
        .node_name = node.name,
        .creation = node.creation,
        .schedulers = opts.schedulers,
        .max_processes = opts.max_processes,
        .busy_poll_us = opts.busy_poll_us,
        .busy_poll_latency = opts.busy_poll_mode && strcmp(opts.busy_poll_mode, "latency") == 0,
    };
    if (runtime_init(&rc) != 0) {
        options_free(&opts);
        return fail("cannot start the runtime");
    }
    /* The runtime reaches other nodes through the distribution; what is
     * sent before it listens (the static children's hooks) waits in the
     * connection queues. */
    remote_set_ops(&dist_remote_ops);
    int status = 0;
    if (load_modules(&opts) != 0 || system_processes_supervise() != 0) {
        status = fail("cannot load the worker modules (see the log above)");
        goto stop_runtime;
    }
    /* The hub announces itself to the --join nodes (and keeps doing so). */
    ph_buf_reset(&opts.hub.seeds);
    int seeds_ok = 1;
    for (int i = 0; i < opts.n_join && seeds_ok; i++)
        seeds_ok = ei_x_encode_list_header(&opts.hub.seeds, 1) == 0 &&
                   atom_encode_text(&opts.hub.seeds, opts.join[i]) == 0;
    if (!seeds_ok || ei_x_encode_empty_list(&opts.hub.seeds) != 0) {
        status = fail("out of memory for the --join nodes");
        goto stop_runtime;
    }
    /* net_kernel, the phnode service and the hub run under phnode_sup,
     * which restarts whichever of them exits (docs/operations.md). */
    if (hub_prepare(&opts.hub) != 0 || node_sup_add(hub_module_name(), opts.hub.hub_id) != 0 ||
        node_sup_start() != 0) {
        status = fail("the hub did not start (see the log above)");
        goto stop_runtime;
    }
    static char dist_text[64], sync_text[64], redundancy_text[96];
    static const char *const signal_names[] = {"none", "active", "passive", "all"};
    snprintf(dist_text, sizeof dist_text, "%s", opts.hub.distribution_type);
    if (opts.hub.replication_factor == 1)
        snprintf(redundancy_text, sizeof redundancy_text, "singularity");
    else if (opts.hub.replication_factor == 0)
        snprintf(redundancy_text, sizeof redundancy_text,
                 "replication (cluster_size, %s, signal %s)",
                 opts.hub.active_passive ? "active_passive" : "active_active",
                 signal_names[opts.hub.redundancy_signal & 3]);
    else
        snprintf(redundancy_text, sizeof redundancy_text, "replication (%d, %s, signal %s)",
                 opts.hub.replication_factor,
                 opts.hub.active_passive ? "active_passive" : "active_active",
                 signal_names[opts.hub.redundancy_signal & 3]);
    snprintf(sync_text, sizeof sync_text, "pubsub (sync_interval %u ms)", opts.hub.sync_interval);
    phnode_info info = {
        .version = PHNODE_VERSION,
        .hub_id = opts.hub.hub_id,
        .schedulers = opts.schedulers,
        .creation = node.creation,
        .strategies = {{"distribution", dist_text},
                       {"redundancy", redundancy_text},
                       {"migration", "cold_swap"},
                       {"synchronization", sync_text},
                       {"partition_tolerance", opts.hub.partition_type}},
    };
    phnode_service_set_info(&info);
    if (opts.metrics_port &&
        metrics_http_start(opts.metrics_bind, opts.metrics_port, err, sizeof err) != 0) {
        status = fail(err);
        goto stop_runtime;
    }
    dist_config dc = {.net_ticktime = opts.net_ticktime,
                      .connect_timeout_ms = 5000,
                      .max_frame_bytes = opts.max_frame_bytes,
                      .handshake_timeout_ms = opts.handshake_timeout_ms,
                      .max_pending_handshakes = opts.max_pending_handshakes,
                      .transport = opts.tls ? &tls_transport : &tcp_transport};
    if (opts.tls && transport_tls_init(&opts.tls_opt, err, sizeof err) != 0) {
        status = fail(err);
        goto stop_node;
    }
    if (connections_init(&node.ec, &dc) != 0 ||
        node_listen_and_publish(&node, opts.port, err, sizeof err) != 0) {
        status = fail(err);
        goto stop_node;
    }
    if (connections_start(node.listen_fd) != 0) {
        status = fail("cannot start the I/O threads");
        goto stop_node;
    }
    hub_network_ready(&opts.hub);
    LOG_I("phnode", "ready: node=%s port=%d creation=%u schedulers=%u net_ticktime=%u%s", node.name,
          node.listen_port, node.creation, opts.schedulers, opts.net_ticktime,
          opts.tls ? " distribution=tls" : "");

    int sig = 0;
    sigwait(&signals, &sig);
    LOG_I("phnode", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    node_sup_shutdown();
    if (hub_leave(&opts.hub) != 0)
        LOG_W("phnode", "the hub members did not all confirm our leave in %u ms",
              opts.hub.migr_base_timeout);

    metrics_http_stop();
    runtime_shutdown();
    connections_stop();
    node_close(&node);
    transport_tls_shutdown();
    goto release;

stop_node:
    node_close(&node);
stop_runtime:
    node_sup_shutdown();
    metrics_http_stop();
    runtime_shutdown();
release:
    names_shutdown();
    if (process_count() == 0)
        process_table_shutdown();
    modules_shutdown();
    atoms_shutdown();
    options_free(&opts);
    thread_bufs_release();
    signal_cache_release();
    bigbuf_release_kept();
    LOG_I("phnode", "stopped");
    return status;
}
