/*
 * process.h - the actor runtime's process: a pid, a mailbox of signals, the
 * worker module and its state, and the process's links and monitors.
 *
 * Ownership and threads:
 *  - Any thread may push a signal (signal_push) while holding a reference.
 *  - Only the scheduler thread currently running the process touches the
 *    private queue and the module state, so those need no lock: one process
 *    runs on at most one thread at a time.
 *  - The relations (links, monitors) and `alive` are guarded by a small
 *    spinlock, because monitors set up or removed by other processes are
 *    applied directly by the sender's thread: a MONITOR_P/DEMONITOR_P from
 *    the network then never wakes the process. A monitor added while the
 *    process lives fires when it exits; one that finds it dead is answered
 *    with noproc at once.
 *  - The process table holds one reference while the process is alive; the
 *    memory goes when the last reference is dropped, and signals that
 *    arrived after death are answered then (LINK -> EXIT noproc, MONITOR ->
 *    DOWN noproc), so none is silently lost.
 */
#ifndef PH_PROCESS_H
#define PH_PROCESS_H

#include <processhub/worker.h>
#include <stdatomic.h>
#include <stdint.h>

typedef enum sig_kind {
    SIG_MESSAGE,    /* payload: the message */
    SIG_LINK,       /* from links to us */
    SIG_UNLINK,     /* from unlinks (id) */
    SIG_UNLINK_ACK, /* from acknowledges our unlink (id) */
    SIG_EXIT,       /* link exit from `from`, payload: reason */
    SIG_EXIT2,      /* exit/2 from `from`, payload: reason */
    SIG_DOWN,       /* a monitor we hold fired: from (or name@from.node), ref, payload */
    SIG_NODEDOWN,   /* connection to node from.node lost */
    SIG_SHUTDOWN,   /* orderly node shutdown: stop with reason shutdown */
} sig_kind;

/* One signal in a mailbox. payload is an external-format term that starts
 * with the version byte 131, so it can be forwarded or decoded as is. It
 * follows the header (signal_new copies it there), or lies inside the
 * block the signal was made in (signal_from_block: a frame read from the
 * network becomes the message without a copy). */
typedef struct proc_signal {
    struct proc_signal *next;
    uint8_t kind;
    uint8_t checked;  /* SIG_MESSAGE: payload validated whole by the reader */
    uint8_t in_block; /* made by signal_from_block: freed with bigbuf_free */
    uint8_t small;    /* a SIGNAL_SMALL block: freed into the thread's cache */
    uint32_t name;    /* registered name (by-name monitor/DOWN) or ATOM_NONE */
    uint64_t id;      /* unlink id */
    ph_pid from;
    ph_ref ref;
    uint32_t len;
    char *payload;
    char inline_payload[];
} proc_signal;

/* signal.id of a SIG_EXIT that a supervised child sends its parent */
#define EXIT_FROM_SUPERVISED_CHILD 1

proc_signal *signal_new(sig_kind kind, ph_pid from, const char *payload, uint32_t len);
/* Frees the calling thread's cache of small signals now (other threads'
 * go when they exit; the main thread's key destructors do not run). */
void signal_cache_release(void);
/* The same with the payload in n pieces, copied one after the other. */
struct iovec;
proc_signal *signal_new_pieces(sig_kind kind, ph_pid from, const struct iovec *payload, int n);
/* A block of len bytes (bigbuf.h) with room for a signal's header in front
 * of it: fill it, then make it a signal with signal_from_block, or give it
 * back with signal_block_free. NULL when out of memory. */
char *signal_block_alloc(size_t len);
/* Resizes such a block (it may move). NULL when out of memory: block is
 * unchanged and still the caller's. */
char *signal_block_resize(char *block, size_t len);
void signal_block_free(char *block);
/* The block becomes a signal whose payload is the len bytes at payload,
 * inside the block: no copy. The signal owns the block from now on. */
proc_signal *signal_from_block(char *block, sig_kind kind, ph_pid from, const char *payload,
                               uint32_t len);
void signal_free(proc_signal *s);

typedef enum relation_kind {
    REL_LINK,         /* linked with pid */
    REL_MONITORED_BY, /* pid monitors us with ref */
    REL_MONITORING,   /* we monitor pid with ref */
} relation_kind;

typedef struct relation {
    uint8_t kind;
    uint32_t name; /* by-name monitor: the name the watcher used */
    ph_pid pid;
    ph_ref ref;
} relation;

typedef struct process {
    ph_pid pid;
    _Atomic uint32_t refs;
    _Atomic uint32_t scheduled;   /* 1 while in the run queue or running */
    _Atomic(proc_signal *) inbox; /* LIFO pushed by any thread */
    proc_signal *queue_head;      /* FIFO, scheduler-owned */
    proc_signal *queue_tail;
    struct process *runq_next;
    const ph_worker_module *module;
    void *state;
    relation *relations;
    uint32_t n_relations;
    uint32_t cap_relations;
    /* Hash index over relations by pid (positions + 1, 0 = empty), built
     * once a process has many: a hub supervising 100k children must not
     * scan 100k links for every exit. */
    uint32_t *relation_index;
    uint32_t relation_index_cap;
    uint32_t name; /* registered name or ATOM_NONE */
    ph_pid parent; /* ph_spawn_opts.supervised: an implicit link; node 0 when none */
    uint8_t has_parent;
    atomic_flag relations_lock;
    uint8_t trap_exit;
    uint8_t alive; /* written under relations_lock */
    /* In the middle of a HotSwap handover (handover.c), else NULL. */
    struct handover *handover;
} process;

/* --- the process table (process_table.c) ------------------------------- */

int process_table_init(uint32_t capacity);
void process_table_shutdown(void);
/* A new process with a fresh pid, one reference held by the caller; not yet
 * visible to lookups until process_publish. */
process *process_create(const ph_worker_module *module);
void process_publish(process *p);
/* Removes p from the table (lookups fail from now on); drops the table's
 * reference. */
void process_unpublish(process *p);
/* The live local process with that pid, with a reference, or NULL. */
process *process_get(ph_pid pid);
void process_ref(process *p);
void process_put(process *p);
/* Calls fn on every live process (with a reference held during the call). */
void process_for_each(void (*fn)(process *p, void *arg), void *arg);
uint32_t process_count(void);

/* --- mailbox and scheduling (scheduler.c) ------------------------------ */

/* Pushes s into p's mailbox and makes p runnable. Takes ownership of s. */
void process_push(process *p, proc_signal *s);
/* Puts p in the run queue unless it is already there or running. */
void process_schedule(process *p);
/* Between begin and end, processes this thread makes runnable are queued
 * together at end, waking as few schedulers as needed (the I/O thread does
 * this around each batch of frames it reads). */
void scheduler_defer_begin(void);
/* keep_one: a polling scheduler runs the first of these processes itself
 * (no wake-up: the fast path for a call). With 0 every process goes to
 * another scheduler and the caller goes back to reading: the pipelined
 * path for a flood of frames. */
void scheduler_defer_end(int keep_one);
/* Whether this thread is between begin and end (they do not nest). */
int scheduler_deferring(void);

/* The network side as the schedulers see it (set by the I/O layer; without
 * it idle schedulers just park). */
typedef struct scheduler_io {
    /* Waits up to timeout_ms (-1: until interrupted) for I/O and handles it:
     * frames are decoded and posted to mailboxes, nothing else. Several
     * threads may poll at once. */
    int (*poll)(int timeout_ms); /* returns the number of events handled */
    /* One cheap non-blocking check while an idle scheduler spins; > 0
     * when it handled input, < 0 when a spin is unlikely to pay (no
     * connection is hot): the scheduler sleeps in poll at once. */
    int (*spin_check)(void);
    /* Makes one poll in progress return (or the next one, if none waits). */
    void (*interrupt)(void);
} scheduler_io;
void scheduler_set_io(const scheduler_io *io);
/* Called by a poller that got input, before it reads it: gives up the poll
 * role if this thread holds it, so another idle scheduler may wait for the
 * next arrival meanwhile. */
void scheduler_poll_reading(void);
/* Called by a poller whose reading has taken long: when nobody holds the
 * poll role, wakes a parked scheduler to take it (the next arrivals are
 * then read in parallel). 1 if it woke one. */
int scheduler_poll_promote(void);
/* Polls once without waiting if nobody has for stalled_us; 1 if it did. */
int scheduler_poll_if_stalled(unsigned stalled_us);
int scheduler_start(unsigned threads, unsigned busy_poll_us, int busy_poll_latency);
void scheduler_stop(void);
/* Nonzero when the caller runs on a scheduler thread. */
int scheduler_on_thread(void);
/* For the metrics: scheduler threads running, the time scheduler i spent
 * running processes (µs), processes waiting in the run queue. */
unsigned scheduler_count(void);
uint64_t scheduler_busy_us(unsigned i);
uint32_t scheduler_runq_length(void);

/* --- running a process (process_run.c) -------------------------------- */

/* Handles up to budget signals of p; returns nonzero if work remains. */
int process_run(process *p, int budget);
/* Ends p with reason (versioned term); runs terminate, notifies links and
 * monitors, unregisters. Called on p's own scheduler thread or during
 * spawn before p is published. */
void process_exit(process *p, const char *reason, uint32_t len);

/* Relations (process_run.c); each takes the relations lock. */
int relation_add(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref, uint32_t name);
/* Removes the first relation matching kind + pid (+ ref when ref != NULL).
 * Returns 1 when one was removed. */
int relation_remove(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref);
int relation_find(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref);
/* Removes the MONITORING relation with ref; 1 and the relation in *out if
 * found. watched: the monitored pid when known (faster), else NULL. */
int relation_take_monitoring(process *p, const ph_ref *ref, const ph_pid *watched, relation *out);
void relations_free(process *p);
/* Adds a monitor held on p by watcher. 0, or -1 when p is no longer alive
 * (or out of memory): the caller answers with DOWN noproc. */
int process_add_monitor(process *p, ph_pid watcher, const ph_ref *ref, uint32_t name);

/* Answers the signals left in a dead process's mailbox (process_run.c). */
void process_answer_dead_signals(ph_pid dead, proc_signal *list);

#endif
