/* runtime.c - start-up and orderly shutdown of the actor runtime, and the
 * node identity every pid and ref carries. */
#include "hub/runtime/runtime.h"
#include "hub/runtime/runtime_metrics.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/modules.h"
#include "hub/runtime/names.h"
#include "hub/runtime/process.h"
#include "hub/runtime/timers.h"

#include <string.h>
#include <time.h>

static uint32_t self_node = ATOM_NONE;
static uint32_t creation;

static const char *const common_atoms[] = {RUNTIME_ATOMS};
#define N_COMMON (sizeof common_atoms / sizeof common_atoms[0])
static char common_bytes[N_COMMON][32];
static uint32_t common_len[N_COMMON];

uint32_t runtime_self_node(void)
{
    return self_node;
}

const char *runtime_node_name(void)
{
    return atom_text(self_node);
}

uint32_t runtime_creation(void)
{
    return creation;
}

int pid_is_local(ph_pid pid)
{
    return pid.node == self_node && pid.creation == creation;
}

int encode_versioned_atom(ph_buf *b, const char *atom)
{
    b->index = 0;
    return ei_x_encode_version(b) == 0 && atom_encode_text(b, atom) == 0 ? 0 : -1;
}

term_bytes runtime_atom_term(const char *atom)
{
    for (size_t i = 0; i < N_COMMON; i++)
        if (strcmp(common_atoms[i], atom) == 0)
            return (term_bytes){common_bytes[i], common_len[i]};
    LOG_E("runtime", "runtime_atom_term: %s is not a common atom", atom);
    return (term_bytes){common_bytes[0], common_len[0]};
}

static int encode_common_atoms(void)
{
    for (size_t i = 0; i < N_COMMON; i++) {
        int index = 0;
        if (ei_encode_version(common_bytes[i], &index) != 0 ||
            ei_encode_atom(common_bytes[i], &index, common_atoms[i]) != 0)
            return -1;
        common_len[i] = (uint32_t)index;
    }
    return 0;
}

int runtime_init(const runtime_config *config)
{
    self_node = atom_intern(config->node_name);
    creation = config->creation;
    if (self_node == ATOM_NONE || encode_common_atoms() != 0)
        return -1;
    if (process_table_init(config->max_processes) != 0) {
        LOG_E("runtime", "cannot allocate the process table");
        return -1;
    }
    if (timers_start() != 0) {
        LOG_E("runtime", "cannot start the timer thread");
        process_table_shutdown();
        return -1;
    }
    if (runtime_metrics_init() != 0 ||
        scheduler_start(config->schedulers, config->busy_poll_us, config->busy_poll_latency) != 0) {
        timers_stop();
        process_table_shutdown();
        return -1;
    }
    return 0;
}

static void send_shutdown(process *p, void *arg)
{
    (void)arg;
    proc_signal *s = signal_new(SIG_SHUTDOWN, p->pid, NULL, 0);
    if (s)
        process_push(p, s);
}

void runtime_shutdown(void)
{
    process_for_each(send_shutdown, NULL);
    /* Give terminate callbacks time to run; a worker stuck in a callback
     * does not hold the node hostage for more than this. */
    uint64_t deadline = monotonic_ms() + 5000;
    while (process_count() > 0 && monotonic_ms() < deadline) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (process_count() > 0)
        LOG_W("runtime", "%u process(es) did not stop in time", process_count());
    scheduler_stop();
    timers_stop();
}
