/*
 * processhub/worker.h - the C worker API.
 *
 * A worker module is a name (an atom) plus gen_server-like callbacks. Every
 * running worker is a process with an Erlang pid: BEAM code talks to it with
 * GenServer.call/cast, send, Process.monitor, Process.link and
 * Process.exit, exactly as it would to a BEAM process.
 *
 * Callbacks of one worker never run concurrently; they run on scheduler
 * threads, never on the I/O thread. A callback that blocks delays only its
 * own worker (and occupies one scheduler thread meanwhile).
 *
 * Terms passed to callbacks are views into the message buffer; they are
 * valid until the callback returns. Copy what must outlive it (a ph_buf and
 * ph_buf_append_term do that).
 *
 * Minimal module (see docs/worker-api.md for a complete example):
 *
 *   static ph_result echo_call(ph_ctx *ctx, void *state, ph_term req,
 *                              const ph_from *from, ph_buf *reply)
 *   {
 *       return ph_buf_append_term(reply, req) == 0 ? PH_REPLY : PH_STOP;
 *   }
 *   const ph_worker_module echo_module = { .name = "echo",
 *                                          .handle_call = echo_call };
 */
#ifndef PROCESSHUB_WORKER_H
#define PROCESSHUB_WORKER_H

#include <stdint.h>
#include <processhub/term.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A pid, local or remote. node is an interned node-name index (0 is this
 * node); creation tells incarnations of a node apart. */
typedef struct ph_pid {
    uint32_t node;
    uint32_t num;
    uint32_t serial;
    uint32_t creation;
} ph_pid;

/* A reference (monitor refs, timer refs). */
typedef struct ph_ref {
    uint32_t node;
    uint32_t creation;
    uint32_t len; /* words used in n[] */
    uint32_t n[5];
} ph_ref;

/* The running worker, handed to every callback. */
typedef struct ph_ctx ph_ctx;

/* The caller of a handle_call, for replying later (ph_from_copy keeps it). */
typedef struct ph_from ph_from;

typedef enum ph_result {
    PH_OK = 0,     /* init and non-call callbacks: carry on */
    PH_REPLY,      /* handle_call: send the reply buffer to the caller */
    PH_NOREPLY,    /* handle_call: the reply comes later via ph_reply() */
    PH_STOP,       /* stop with the reason set by ph_set_stop_reason (or normal);
                      from handle_call: the caller gets no reply */
    PH_STOP_REPLY, /* handle_call: reply, then stop */
} ph_result;

typedef struct ph_worker_module {
    const char *name; /* the module atom, e.g. "counter" */

    /* Builds the state from args. Return PH_OK, or PH_STOP with a reason
     * (the spawn then fails with {error, Reason}). */
    ph_result (*init)(ph_ctx *ctx, ph_term args, void **state);

    /* {'$gen_call', From, Request}. Write the reply term into reply. */
    ph_result (*handle_call)(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                             ph_buf *reply);
    /* {'$gen_cast', Request}. */
    ph_result (*handle_cast)(ph_ctx *ctx, void *state, ph_term request);
    /* Any other message, {'EXIT', Pid, Reason} when trapping exits, and
     * {'DOWN', Ref, process, Pid, Reason} for monitors this worker holds. */
    ph_result (*handle_info)(ph_ctx *ctx, void *state, ph_term message);
    /* Runs when the worker stops (not when killed); frees the state. */
    void (*terminate)(ph_ctx *ctx, void *state, ph_term reason);

    /* Migration with state handover: the leaving copy encodes its state,
     * the new copy adopts it. Return 0, or -1 to refuse. */
    int (*prepare_handover_state)(ph_ctx *ctx, void *state, ph_buf *out);
    int (*alter_handover_state)(ph_ctx *ctx, void **state, ph_term handover);

    /* Internal modules (net_kernel, the phnode service) set this so they are
     * not listed as spawnable worker modules. */
    int system;
} ph_worker_module;

/* A shared object given with --worker-lib exports this symbol: */
#define PH_WORKER_LIB_SYMBOL "ph_worker_modules"
/* const ph_worker_module *const ph_worker_modules[] = { &m1, &m2, NULL }; */

/* --- identity ------------------------------------------------------------ */

ph_pid ph_self(const ph_ctx *ctx);
const char *ph_module_name(const ph_ctx *ctx);
int ph_pid_equal(ph_pid a, ph_pid b);
int ph_ref_equal(const ph_ref *a, const ph_ref *b);
/* The node name of a pid ("name@host"). */
const char *ph_pid_node_name(ph_pid pid);

/* Term conversion for pids and refs (ph_build's ~p/~r take ei's types). */
int ph_encode_pid(ph_buf *b, ph_pid pid);
int ph_decode_pid(ph_term t, ph_pid *pid);
int ph_encode_ref(ph_buf *b, const ph_ref *ref);
int ph_decode_ref(ph_term t, ph_ref *ref);
ph_ref ph_make_ref(void);

/* --- messages ------------------------------------------------------------ */

/* Sends msg to pid (local or remote). Like Erlang's !, never fails for a
 * dead or unreachable target; returns -1 only on bad arguments or no
 * memory. */
int ph_send(ph_ctx *ctx, ph_pid to, ph_term msg);
/* Sends to a registered name; node NULL means this node. */
int ph_send_named(ph_ctx *ctx, const char *name, const char *node, ph_term msg);
/* Sends msg (built with ph_build) from outside any worker, e.g. from a
 * C program embedding the runtime. */
int ph_send_from_outside(ph_pid to, ph_term msg);

/* --- calls ----------------------------------------------------------------- */

/* Reply to a call whose handle_call returned PH_NOREPLY. The from handle
 * must come from ph_from_copy; ph_reply frees it. */
ph_from *ph_from_copy(const ph_from *from);
int ph_reply(ph_from *from, ph_term reply);
void ph_from_free(ph_from *from);
ph_pid ph_from_pid(const ph_from *from);

/* --- links, monitors, exits ------------------------------------------------ */

int ph_link(ph_ctx *ctx, ph_pid other);
int ph_unlink(ph_ctx *ctx, ph_pid other);
/* Monitors pid; DOWN arrives in handle_info. */
int ph_monitor(ph_ctx *ctx, ph_pid pid, ph_ref *ref);
int ph_demonitor(ph_ctx *ctx, const ph_ref *ref);
/* Sends an exit signal, as erlang:exit(Pid, Reason). */
int ph_exit(ph_ctx *ctx, ph_pid pid, ph_term reason);
/* With trap_exit on, exit signals arrive as {'EXIT', Pid, Reason}. */
void ph_trap_exit(ph_ctx *ctx, int on);
/* The reason the worker stops with when a callback returns PH_STOP or
 * PH_STOP_REPLY (default: normal). Appends a copy of reason. */
int ph_set_stop_reason(ph_ctx *ctx, ph_term reason);
/* Same, with a ph_build pattern: ph_stop_reasonf(ctx, "{bad_arg, ~i}", n). */
int ph_stop_reasonf(ph_ctx *ctx, const char *fmt, ...);

/* --- timers ---------------------------------------------------------------- */

/* Delivers msg to this worker after ms milliseconds. Returns 0 and the timer
 * reference, -1 on error. */
int ph_send_after(ph_ctx *ctx, unsigned ms, ph_term msg, ph_ref *timer);
/* Cancels a timer; returns 1 if it had not fired yet, else 0. */
int ph_cancel_timer(const ph_ref *timer);

/* --- spawning and names ---------------------------------------------------- */

typedef struct ph_spawn_opts {
    const char *name; /* register under this name (NULL: none) */
    int link;         /* link to the spawning worker (ctx must not be NULL) */
    /* Supervised by the spawning worker: like a link, but kept in the
     * child alone (the spawner tracks its children itself, as a supervisor
     * does), so a worker with 100k children holds no 100k-entry link
     * table. The spawner gets {'EXIT', Child, Reason} (it should trap
     * exits); when the spawner sends the child an exit signal, or exits,
     * the child reacts as to a linked process. */
    int supervised;
} ph_spawn_opts;

/* Starts a worker of module with args; runs init before returning. On
 * success 0 and *pid. On failure -1 and the error term appended to error
 * (if error is not NULL): {unknown_module, M}, {already_started, Pid}, or
 * the init stop reason. ctx may be NULL outside a worker. */
int ph_spawn(ph_ctx *ctx, const char *module, ph_term args, const ph_spawn_opts *opts, ph_pid *pid,
             ph_buf *error);
int ph_whereis(const char *name, ph_pid *pid);

/* Registers the modules of a worker library (compiled in or loaded). */
int ph_register_module(const ph_worker_module *module);
const ph_worker_module *ph_find_module(const char *name);

#ifdef __cplusplus
}
#endif

#endif
