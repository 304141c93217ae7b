/*
 * node_sup.c - the node's supervisor, registered as phnode_sup: it starts
 * net_kernel, the phnode service and the hub as its children and restarts
 * any of them that exits abnormally while the node is not shutting down
 * (logged at error level), as the BEAM's kernel and ProcessHub's own
 * supervisors do. Children are transient: an exit with normal, shutdown or
 * {shutdown, _} is a deliberate stop ({stop, hub_id}: ProcessHub.stop/1)
 * and is not undone.
 * One restart strategy: one_for_one, at most SUP_MAX_RESTARTS in
 * SUP_PERIOD_MS; beyond that the node shuts down (SIGTERM to itself), as a
 * BEAM node whose kernel supervisor gives up does.
 */
#include "hub/system/system_modules.h"

#include "hub/runtime/log.h"
#include "hub/runtime/timers.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUP_MAX_CHILDREN 8
#define SUP_MAX_RESTARTS 10
#define SUP_PERIOD_MS 10000
#define SUP_RETRY_MS 500

typedef struct sup_child {
    const char *module;
    const char *name;
    ph_pid pid;
    int running;
} sup_child;

static sup_child children[SUP_MAX_CHILDREN];
static int n_children;
static _Atomic int stopping;
static uint64_t restart_times[SUP_MAX_RESTARTS];
static int n_restarts;

int node_sup_add(const char *module, const char *name)
{
    if (n_children == SUP_MAX_CHILDREN)
        return -1;
    children[n_children++] = (sup_child){module, name, {0}, 0};
    return 0;
}

void node_sup_shutdown(void)
{
    atomic_store(&stopping, 1);
}

static int start_child(ph_ctx *ctx, sup_child *c, ph_buf *error)
{
    ph_buf args;
    if (ph_buf_init(&args) != 0 || ph_build(&args, "[]") != 0)
        return -1;
    ph_spawn_opts opts = {.name = c->name, .supervised = 1};
    int rc = ph_spawn(ctx, c->module, ph_buf_term(&args), &opts, &c->pid, error);
    ph_buf_free(&args);
    c->running = rc == 0;
    return rc;
}

static ph_result sup_init(ph_ctx *ctx, ph_term args, void **state)
{
    (void)args;
    ph_trap_exit(ctx, 1);
    *state = NULL;
    for (int i = 0; i < n_children; i++) {
        ph_buf error;
        if (ph_buf_init(&error) != 0)
            return PH_STOP;
        if (start_child(ctx, &children[i], &error) != 0) {
            char text[512];
            LOG_E("supervisor", "%s did not start: %s", children[i].name,
                  ph_term_format(ph_buf_term(&error), text, sizeof text));
            ph_stop_reasonf(ctx, "{shutdown, {failed_to_start_child, ~a, ~t}}", children[i].name,
                            ph_buf_term(&error));
            ph_buf_free(&error);
            return PH_STOP;
        }
        ph_buf_free(&error);
    }
    return PH_OK;
}

/* Counts a restart; 0 if within the intensity, -1 when there were too many. */
static int note_restart(void)
{
    uint64_t now = monotonic_ms();
    int recent = 0;
    for (int i = 0; i < n_restarts; i++)
        if (now - restart_times[i] < SUP_PERIOD_MS)
            restart_times[recent++] = restart_times[i];
    n_restarts = recent;
    if (n_restarts == SUP_MAX_RESTARTS)
        return -1;
    restart_times[n_restarts++] = now;
    return 0;
}

static void restart(ph_ctx *ctx, sup_child *c)
{
    if (atomic_load(&stopping))
        return;
    if (note_restart() != 0) {
        LOG_E("supervisor",
              "%s exited again: more than %d restarts in %d s; shutting the node down", c->name,
              SUP_MAX_RESTARTS, SUP_PERIOD_MS / 1000);
        atomic_store(&stopping, 1);
        kill(getpid(), SIGTERM);
        return;
    }
    ph_buf error;
    if (ph_buf_init(&error) != 0)
        return;
    if (start_child(ctx, c, &error) == 0) {
        LOG_E("supervisor", "restarted %s", c->name);
    } else {
        char text[256];
        LOG_E("supervisor", "%s did not restart: %s; trying again in %d ms", c->name,
              ph_term_format(ph_buf_term(&error), text, sizeof text), SUP_RETRY_MS);
        ph_buf msg;
        ph_ref timer;
        if (ph_buf_init(&msg) == 0 && ph_build(&msg, "{restart, ~i}", (long)(c - children)) == 0)
            ph_send_after(ctx, SUP_RETRY_MS, ph_buf_term(&msg), &timer);
        ph_buf_free(&msg);
    }
    ph_buf_free(&error);
}

static ph_result sup_info(ph_ctx *ctx, void *state, ph_term msg)
{
    (void)state;
    ph_term from, reason;
    long index;
    if (ph_match(msg, "{restart, ~i}", &index) == 1 && index >= 0 && index < n_children &&
        !children[index].running) {
        restart(ctx, &children[index]);
        return PH_OK;
    }
    ph_pid pid;
    if (ph_match(msg, "{'EXIT', ~t, ~t}", &from, &reason) != 1 || ph_decode_pid(from, &pid) != 0)
        return PH_OK;
    for (int i = 0; i < n_children; i++) {
        sup_child *c = &children[i];
        if (!c->running || !ph_pid_equal(c->pid, pid))
            continue;
        c->running = 0;
        if (atomic_load(&stopping))
            return PH_OK;
        if (ph_match(reason, "normal") == 1 || ph_match(reason, "shutdown") == 1 ||
            ph_match(reason, "{shutdown, _}") == 1) {
            LOG_I("supervisor", "%s stopped; not restarted", c->name);
            return PH_OK;
        }
        char text[256];
        LOG_E("supervisor", "%s exited: %s; restarting it", c->name,
              ph_term_format(reason, text, sizeof text));
        restart(ctx, c);
        return PH_OK;
    }
    return PH_OK;
}

static const ph_worker_module node_sup_module = {
    .name = "phnode_sup",
    .init = sup_init,
    .handle_info = sup_info,
    .system = 1,
};

int node_sup_start(void)
{
    ph_buf args;
    ph_pid pid;
    if (ph_register_module(&node_sup_module) != 0 || ph_buf_init(&args) != 0)
        return -1;
    ph_build(&args, "[]");
    ph_spawn_opts opts = {.name = "phnode_sup"};
    int rc = ph_spawn(NULL, node_sup_module.name, ph_buf_term(&args), &opts, &pid, NULL);
    ph_buf_free(&args);
    return rc;
}
