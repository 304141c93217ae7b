/*
 * hub_internal.h - private to hub/: the hub process's state and the functions
 * its files share. Everything here runs on the hub's own thread unless it
 * says otherwise.
 */
#ifndef PH_HUB_INTERNAL_H
#define PH_HUB_INTERNAL_H

#include "hub/hub.h"
#include "ei_glue/term_trust.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/hooks.h"
#include "hub/runtime/log.h"
#include "hub/membership.h"
#include "hub/hub_metrics.h"
#include "hub/protocol.h"
#include "hub/registry.h"
#include "hub/tomb_log.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/route.h"
#include "hub/runtime/table_cap.h"
#include "strategies/distribution/consistent_hashing.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/timers.h"
#include <errno.h>
#include <processhub/strategy.h>
#include <processhub/worker.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The most replicas of one child (replication_factor is capped here). */
#define MAX_REPLICAS 255

#define DEFAULT_SHUTDOWN_MS 5000
#define SHUTDOWN_BRUTAL (-1)
#define SHUTDOWN_INFINITY (-2)

typedef enum restart_kind { RESTART_PERMANENT, RESTART_TRANSIENT, RESTART_TEMPORARY } restart_kind;

/* A child spec, parsed; the terms are views into the spec. */
typedef struct spec_info {
    ph_term id;
    char module[PH_ATOM_BUF];
    ph_term args;
    restart_kind restart;
    long shutdown_ms;
} spec_info;

/* --- growing lists of encoded terms ------------------------------------- */

typedef struct elist {
    ph_buf b;
    int n;
} elist;

/* --- proper lists, walked with ei ---------------------------------------- */

/* The hub's requests were validated as a whole when they arrived, so the
 * big ones (100k child specs) are walked with ei alone rather than with
 * the ph_* helpers, which check every term they are given again. */
typedef struct list_walk {
    const char *buf;
    int index;
    int left;
} list_walk;

/* --- the hub's state ---------------------------------------------------- */

typedef struct stop_wait {
    ph_from *from;
    int outstanding;
    elist stopped;
    elist errors;
    int formatted; /* async_wait: StopResult.format's shape */
    /* The members told to stop these children that have not confirmed it
     * yet (stop_await/stop_done); while any remain, the wait is in the
     * hub's stop_waits and counts one in outstanding. */
    struct stop_wait *next;
    ph_ref ref;
    uint32_t *awaiting;
    int n_awaiting;
    ph_buf cids;     /* the ids asked: kept for members that never confirm */
    uint64_t stamp;  /* the stop's stamp (stamp.c), kept with them */
    long timeout_ms; /* the stop's timeout option */
} stop_wait;

typedef struct child {
    ph_pid pid;
    uint8_t restart;
    uint8_t stopping;
    uint8_t mode; /* the redundancy signal it was last sent: 0 none, 1 active, 2 passive */
    long shutdown_ms;
    stop_wait *wait;
    uint32_t key_len;
    char key[];
} child;

typedef struct hub {
    hub_config cfg;
    uint32_t self_node;
    registry *reg;
    /* When the registry last changed (registry_changed_at): the change
     * count last seen after a request or message, and the wall-clock ms
     * (CLOCK_REALTIME) of the first request that saw it move; 0: never. */
    uint64_t reg_changes_seen;
    int64_t reg_changed_wall_ms;
    uint64_t clock; /* the last stamp made or seen (stamp.c) */
    hooks *hooks;
    child **children; /* open addressing by pid, NULL = empty, GONE = deleted */
    uint32_t cap, count, used;
    uint32_t stopping;  /* records with stopping set (count - stopping run on) */
    uint64_t *restarts; /* ring of restart times (ms), dsup_max_restarts long */
    uint32_t restart_next, restart_n;
    membership members; /* the other hub nodes */
    ph_buf seeds;       /* [Node] to announce ourselves to */
    /* Registry changes of this node not yet published to the members:
     * elements {Cid, Spec, Pid, Meta} and Cid. Flushed after each
     * request or message, so a batch of 100k starts is one message. */
    elist sync_registered;
    elist sync_unregistered;
    /* Bytes of the last list of this node's rows (sync_local_rows): the
     * next one is reserved at that size. */
    size_t local_rows_bytes;
    /* The distribution strategy (strategy.c) over this node and the members,
     * and the atoms of the node names it returns, by pointer. */
    const ph_distribution_ops *dist;
    void *dist_state;
    const struct dist_internal *dist_ext; /* an internal strategy's extras, or NULL */
    int dist_ticking;                     /* its tick timer runs */
    /* nodeup_redistribution: a member that joined whose start is not yet
     * heard; then, during the one reconcile that moves its share to it,
     * dist_redistributing is set and dist_redistributing_to names it. */
    uint32_t dist_joined;
    int dist_redistributing;
    uint32_t dist_redistributing_to;
    ph_buf owner_key; /* sticky owners' registry lookups */
    struct name_atom {
        const char *name;
        uint32_t atom;
    } names[64];
    int n_names;
    struct pending_start *pending; /* awaitable starts waiting for other members */
    struct stop_wait *stop_waits;  /* awaited stops waiting for members' stop_done */
    /* Ids of awaited stops that members never confirmed (they were lost,
     * or the stop timed out), with those members as the row's nodes and
     * an expiry as its spec: the stop goes to each when it is back. */
    registry *unconfirmed_stops;
    int repairing;                             /* the periodic repair timer runs */
    ph_buf key_scratch;                        /* registry keys of lookups, reused */
    ph_buf start_key, start_reason, start_pid; /* start_one's scratch, reused */
    int test_drop_syncs;                       /* PHNODE_TEST_DROP_SYNC: updates still to drop */
    /* Graceful leave: the members that have not yet confirmed that they
     * took over our children. */
    int leaving;
    uint32_t *leave_wait;
    int n_leave_wait;
    ph_ref discover_ref; /* tag of this round's questions to BEAM nodes */
    struct move *moves;  /* children sent to their owner, stopped here when it has them */
    /* Ids of the children in those moves, with the target as the row's node:
     * a child is moved once at a time, and a hand-off of a child this node
     * is moving away is refused (two nodes moving it to each other would
     * both stop their copies). */
    registry *moving;
    /* Sticky strategies: ids moved here (a hand-off answered to its sender),
     * with the sender as the row's node and the time its old copy stops by
     * as the spec: while the row still lists that copy, ours is the one
     * that stays (strategy.c), whatever our own view would place. */
    registry *moved_in;
    /* Ids stopped in the last TOMB_MS with the stop's stamp (tombs.c): a
     * hand-off sent before the stop and arriving after it is refused. */
    tomb_log *tombs;
    /* Ids of rows short of replicas at the last confirming reconcile
     * (periodic, or a confirmation pass after churn), noted at
     * short_before_ms, and at this one (reconcile.c, confirmed_short). */
    registry *short_before, *short_now;
    uint64_t short_before_ms;
    int confirm_passes; /* confirmation passes left after churn; a pass is pending when armed */
    int confirm_armed;
    uint64_t reconcile_due; /* when the earliest {'$ph_hub', reconcile} on its way comes; 0: none */
    int orphan_check_ms;    /* the next orphan check's delay; 0: none pending */
    int retry_ms;           /* re-plan delay after a move that failed; doubles */
    /* The synchronization strategy (strategies/synchronization/), set up
     * on first use by sync_strategy(). */
    const struct sync_ops *sync;
    void *sync_state;
    /* The migration strategy (strategies/migration/), and the number of
     * the next move. leave_after_moves: a graceful leave waits for the
     * moves in flight before it tells the members. */
    const struct migration_ops *migration;
    uint32_t move_seq;
    int leave_after_moves;
    /* The partition tolerance strategy (strategies/partition/, partition.c). */
    const struct partition_ops *part;
    void *part_state;
    int partitioned; /* partition mode: children stopped, starts and stops refused */
    /* coordinator_shutdown_hook ran (a graceful leave fires it before the
     * leave is announced, as ProcessHub's terminate does). */
    int shutdown_hook_fired;
    /* ProcessHub's event-queue lock (§6.4): > 0 while a join or a
     * departure is being handled (is_locked, priority_state_updated_hook). */
    int locked;
    struct subscriptions *subs; /* registry subscribers (subscription.c), NULL until the first */
} hub;

/* A batch of children sent to their new owner after a join (ColdSwap):
 * they stop here once its start_result says it runs them. */
typedef struct move {
    struct move *next;
    ph_ref id;
    uint32_t target;
    uint32_t seq; /* names it in the moving set's rows (hot_swap) */
    int n;        /* children in it */
    ph_buf cids;  /* [Cid]: what to undo there if the answer comes too late */
    /* Once answered: the old copies to stop here when the strategy is
     * done with them; under hot_swap, while they hand their state over
     * (handing_over), the worker messages still expected. */
    elist stop;
    int handing_over;
    int awaiting;
} move;

/* An awaitable start whose children were placed on other members too. */
typedef struct pending_start {
    struct pending_start *next;
    ph_ref id;
    ph_from *from;
    int rollback;
    elist started, errors;
    /* Answers still expected, per node. A count goes below zero for a
     * moment when a forwarded part answers before the forward notice. */
    struct awaited {
        uint32_t node;
        int count;
    } * waiting;
    int n_waiting, cap_waiting;
    /* Replied already (timeout) with a rollback: owners that answer late
     * have their children stopped as the answers come. */
    int answered;
    int formatted, first; /* async_wait: StartResult.format's shape (first: start_child) */
    int has_sub;          /* registry_seq given: the subscription whose number the result carries */
    ph_ref sub;
} pending_start;
/* How long a start rolled back at its timeout keeps stopping what its late
 * owners start (an owner that is still silent after this is not waited for). */
#define LATE_ROLLBACK_MS 60000

extern child hub_gone_child;
#define GONE (&hub_gone_child)

#define RECONCILE_MS 50      /* a re-plan after a hand-off or a second copy is seen */
#define ORPHAN_CHECK_MS 1000 /* an orphan its owner has not restarted by then is sent to it */
#define ROWS_RESEND_MS 1000  /* a member that lost us gets our rows again, not sooner */
#define CONFIRM_MS 1000      /* between confirmation passes after churn (reconcile.c) */
#define CONFIRM_PASSES 8     /* passes after one churn while rows stay short */

/* --- options ------------------------------------------------------------- */

typedef struct start_opts {
    int awaitable, check_existing, rollback, disable_logging;
    int forwarded;  /* placed by a member whose ring disagreed: start here, never forward again */
    int handoff;    /* a running or orphaned child sent to its owner (a move, an adoption) */
    int has_ring;   /* the placing node's ring digest came along: */
    long ring;      /* when it equals ours, nothing needs forwarding */
    int want_post;  /* post-start hooks are registered: build their data */
    int hooks_done; /* pre-start and alter hooks ran already (run_start_hooks) */
    int async_wait; /* ProcessHub's deprecated twin of awaitable: the formatted result */
    int first;      /* start_child / stop_child: async_wait gives the first entry */
    long handover_wait; /* a move under hot_swap: each new copy waits this long for its state */
    int has_sub;        /* registry_seq: the result carries this subscription's number */
    ph_ref sub;
    int omit_rows; /* registry_omit: the subscriber builds this call's rows from the result */
    int parts;     /* result_parts, honoured (a start answered at once): started goes in parts */
    ph_term parts_ref; /* the reference the parts carry (the option's value) */
    ph_pid parts_to;   /* the caller, who gets the parts */
    long timeout;
    ph_term metadata;
    ph_term all; /* the options as given */
} start_opts;

typedef struct start_result {
    elist started, errors, post, startups;
    elist started_keys;   /* registry keys of the children started, for rollback / registry_omit */
    int not_alone;        /* registry_omit: a started child's row names another node too */
    int parts_sent;       /* result_parts: messages sent, holding the first part_n entries */
    int part_n, part_off; /* of started (part_off: their bytes) */
} start_result;
/* Where stop_batch stops each child: anywhere in the cluster (the API), here
 * and in this node's registry (a member's stop), or here only (undoing or
 * completing a move must never reach the other copy). */
enum stop_scope {
    STOP_ANYWHERE,
    STOP_REMOTE,
    STOP_HERE,
    STOP_LATE /* STOP_REMOTE of a kept stop (stop_late): passed on as one */
};

enum prep_state {
    PREP_BAD_SPEC, /* does not parse */
    PREP_RUNNING,  /* runs here already: pid */
    PREP_DUP,      /* the same id earlier in this batch: dup_of */
    PREP_SPAWN,    /* to start */
    PREP_STARTED,  /* started: pid, row, rec built */
    PREP_FAILED,   /* init refused: reason */
    PREP_NOMEM,    /* started, but no memory for its row or record */
};

/* Children going to one member with the same metadata: one start message. */
typedef struct move_group {
    const member *to;
    const reg_row *meta_of; /* a row with the group's metadata */
    elist specs;
    elist ids; /* their ids, in the same order */
} move_group;

#define MOVE_GROUPS 8

typedef ph_result (*batch_handler)(hub *h, ph_ctx *ctx, ph_term list, ph_term opts,
                                   const ph_from *from, ph_buf *reply);

/* Requests and messages slower than this are logged at debug level. */
#define SLOW_HANDLING_US 20000

#pragma GCC visibility push(hidden)

/* term_lists.c */
int elist_init(elist *l);
void elist_free(elist *l);
void elist_add(elist *l, const char *fmt, ...);
int elist_to(ph_buf *out, const elist *l);
ph_term elist_term(elist *l, ph_buf *scratch);
ph_term pid_term(ph_pid pid, ph_buf *tmp);
void send_self_after(ph_ctx *ctx, unsigned ms, const char *fmt, ...);
int list_begin(list_walk *w, ph_term list);
int list_next(list_walk *w, ph_term *e);
/* For the hub's own messages, walked once: list_begin without checking
 * first that the list is proper (a bad tail ends the walk where it is);
 * returns the first segment's length from its header. list_at gives the
 * element at the walk without stepping over it, list_past moves past it
 * to end (the index just after it, found by the caller's own walk of it). */
int list_begin_trusted(list_walk *w, ph_term list);
int list_at(list_walk *w, ph_term *e);
void list_past(list_walk *w, int end);
int has_option(ph_term opts, const char *name);
void elist_extend(elist *l, ph_term list);
/* Appends from's elements to to's. 0, or -1 when out of memory. */
int elist_append(elist *to, const elist *from);
int opts_with(ph_buf *out, ph_term opts, const char *fmt, ...);

/* children.c */
void children_prefetch(const hub *h, ph_pid pid);
void children_prefetch_record(const hub *h, ph_pid pid);
int children_reserve(hub *h, uint32_t extra);
child *child_find(hub *h, ph_pid pid, uint32_t *slot);
child *child_new(ph_pid pid, const char *key, uint32_t key_len, const spec_info *s);
child *child_add(hub *h, ph_pid pid, const char *key, uint32_t key_len, const spec_info *s);
int child_insert(hub *h, child *c);
void child_remove(hub *h, child *c);

/* child_spec.c */
int atom_at(const char *buf, int *index, char *out);
int parse_spec(ph_term spec, spec_info *s);

/* hook_events.c */
void fire(hub *h, ph_ctx *ctx, const char *key, ph_term data);
void fire_insert(hub *h, ph_ctx *ctx, const reg_row *row);
void fire_remove(hub *h, ph_ctx *ctx, ph_term key, uint32_t node);
void fire_children_migrated(hub *h, ph_ctx *ctx, uint32_t target, ph_term cids);
void fire_insert_one(hub *h, ph_ctx *ctx, ph_term key, uint32_t node, ph_pid pid);
void fire_pid_update(hub *h, ph_ctx *ctx, uint32_t node, ph_pid pid);
int add_child_data(const hub *h, elist *out, uint32_t node, ph_term spec, ph_term meta);
void fire_node_hook(hub *h, ph_ctx *ctx, const char *key, uint32_t node);
void fire_redistribution_hook(hub *h, ph_ctx *ctx, const char *key, const char *event,
                              uint32_t node);
void fire_then(hub *h, ph_ctx *ctx, const char *key, ph_term data, hooks_cont_fn cont,
               hooks_drop_fn drop, void *arg);
/* ProcessHub's lock around joins and departures: priority_state_updated_hook
 * {10, ...} now; {0, #{}} once the hooks fired before it have run. */
void hub_lock(hub *h, ph_ctx *ctx);
void hub_unlock_after_hooks(hub *h, ph_ctx *ctx);
/* pre_children_redistribution_hook for node joining (up) or gone (down),
 * with the owners of the current view; a departure's before its rows go. */
void fire_children_redistribution(hub *h, ph_ctx *ctx, uint32_t node, int up);
/* 1 when a start waits for hook handlers (an M/F/A handler of
 * pre_children_start_hook or child_data_alter_hook). */
int start_hooks_wait(hub *h);
/* Called with the children's specs and metadata as the alter handlers
 * left them (two lists in step). */
typedef void (*start_hooks_done)(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, void *arg);
/* pre_children_start_hook, then child_data_alter_hook for each child, the
 * M/F/A handlers awaited; then done. drop frees arg if the hub stops first. */
void run_start_hooks(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, ph_term opts,
                     start_hooks_done done, hooks_drop_fn drop, void *arg);

/* sync.c */
void append_row_entry(elist *l, const reg_row *row, ph_pid pid);
void note_registered(hub *h, const reg_row *row, ph_pid pid);
void note_unregistered(hub *h, ph_term cid);
void send_own(ph_ctx *ctx, ph_pid to, const ph_buf *b);
void send_sync(hub *h, ph_ctx *ctx, uint32_t only, hub_msg_kind kind, const elist *l);
void flush_sync(hub *h, ph_ctx *ctx);
void unregister_local(hub *h, ph_ctx *ctx, const char *key, uint32_t key_len);
int unregister_local_row(hub *h, ph_ctx *ctx, reg_row *row);
void send_local_registry(hub *h, ph_ctx *ctx, uint32_t node, int detach);
void send_rows_to_member(hub *h, ph_ctx *ctx, uint32_t node, int detach, const elist *l);
void send_repair(hub *h, ph_ctx *ctx);
void sync_local_rows(hub *h, elist *l);
int rows_well_formed(uint32_t node, ph_term list);
void sync_message(hub *h, ph_ctx *ctx, const hub_msg *m);
void apply_repair(hub *h, ph_ctx *ctx, uint32_t node, ph_term list);
void apply_registered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list);
void apply_unregistered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list);
typedef void (*row_fn)(hub *h, ph_ctx *ctx, void *arg, reg_row *row);
void drop_node_rows(hub *h, ph_ctx *ctx, uint32_t node, int keep_orphans, row_fn each, void *arg);

/* tombs.c: ids stopped in the last TOMB_MS, with the stop's stamp. */
/* hash: the key's registry_hash; until_ms: tomb_expiry() (read once for a
 * batch of stops: the clock is not read per child) */
uint64_t tomb_expiry(void);
void tomb_add(hub *h, const char *key, uint32_t key_len, uint32_t hash, uint64_t stamp,
              uint64_t until_ms);
void tomb_clear(hub *h, const char *key, uint32_t key_len);
/* For a batch of stops: room for extra tombs at once; the index slot of
 * an id's registry_hash asked for ahead. */
void tombs_reserve(hub *h, uint32_t extra);
void tomb_prefetch(hub *h, uint32_t hash);
/* The stamp of key's tomb (1 for a tomb without one), 0 when it has none. */
uint64_t tomb_stamp(hub *h, const char *key, uint32_t key_len);
/* 1 when the row's line of copies was started before a stop of its id
 * this node holds a tomb of. */
int tomb_holds(hub *h, const reg_row *row);
void tombs_prune(hub *h);
/* stamp.c: a new stamp, above every one made or seen; and one seen. */
uint64_t hub_stamp_now(hub *h);
void hub_stamp_seen(hub *h, uint64_t stamp);
/* handoff.c */
uint32_t moving_target(hub *h, const char *key, uint32_t key_len);
int handoff_filter(hub *h, ph_term specs, ph_buf *out);
void moving_mark(hub *h, const move *mv, int on);
void moved_in_mark(hub *h, ph_term specs, uint32_t from, uint64_t until_ms);
int moved_in_holds(hub *h, const reg_row *row);
void moved_in_prune(hub *h);

/* start.c */
int parse_opts(ph_term opts, start_opts *o, ph_buf *reply);
int spawn_child(ph_ctx *ctx, const spec_info *s, ph_pid *pid, ph_buf *reason);
void result_free(start_result *r);
int result_init(start_result *r);
int row_local_pid(const hub *h, const reg_row *row, ph_pid *pid);
void note_bad_spec(hub *h, start_result *r, ph_term spec);
void note_already_started(hub *h, start_result *r, ph_term id, ph_pid running);
void note_failed(hub *h, const start_opts *o, start_result *r, ph_term id, ph_term reason);
void note_started(hub *h, ph_ctx *ctx, const start_opts *o, start_result *r, reg_row *row,
                  ph_term id, ph_pid pid);
reg_row *register_copy(hub *h, const char *key, uint32_t key_len, ph_term spec, ph_term meta,
                       ph_pid pid, reg_row *old);
void start_one(hub *h, ph_ctx *ctx, ph_term spec, const start_opts *o, start_result *r);
/* seq >= 0: the map also has registry_seq => seq (the registry_seq option);
 * omitted >= 0: registry_omitted => omitted (registry_omit). */
int encode_start_result(ph_buf *out, const elist *started, const elist *errors, int rollback,
                        long long seq, long long omitted);
/* The same result (without registry_omitted) in three pieces, for a reply
 * sent without copying the started list (100k entries, megabytes): what
 * comes before the list's elements appended to out, the elements
 * themselves (started's own bytes), and what follows them in tail. */
struct iovec;
int encode_start_result_pieces(ph_buf *out, ph_buf *tail, const elist *started, const elist *errors,
                               int rollback, long long seq, struct iovec pieces[3]);

/* start_parts.c */
/* Entries per part: the caller stores part k while the hub registers part k+1. */
#define START_PART_ENTRIES 5000
/* result_parts: sends the entries of r->started not sent yet to the caller
 * when there are at least `min` of them. */
void start_part_send(hub *h, ph_ctx *ctx, const start_opts *o, start_result *r, int min);
/* encode_start_result for a start that sent parts: started holds the
 * entries not sent, and result_parts => r->parts_sent. */
int encode_start_result_rest(ph_buf *out, const start_result *r, int rollback, long long seq,
                             long long omitted);

/* StartResult.format / StopResult.format (async_wait): {ok, Ok} |
 * {error, {Errors, Ok}} | {error, {Errors, Ok}, rollback}; with first the
 * first entry of Ok (nil if none) for ok and the first error for error. */
int encode_formatted_result(ph_buf *out, const elist *ok, const elist *errors, int rollback,
                            int first);
/* The default awaited-start timeout: below GenServer.call's 5000 ms, so the
 * caller gets node_receive_timeout rather than an exit (docs/api.md). */
#define DEFAULT_AWAIT_TIMEOUT_MS 4000

/* helper.c: a job for the helper thread (started on first use), which
 * must not touch the hub's tables while the hub's thread may. 0 and the
 * job's ticket, or -1 when there is no thread or it is busy with another
 * hub's job: the caller runs the job itself. helper_wait(ticket) returns
 * once that job is done. helper_stop ends the thread (a hub that ends;
 * the next job starts another). */
typedef void (*helper_fn)(void *arg);
int helper_submit(helper_fn fn, void *arg, unsigned long long *ticket);
void helper_wait(unsigned long long ticket);
void helper_stop(void);

/* start_batch.c */
int start_batch(hub *h, ph_ctx *ctx, ph_term list, const start_opts *o, ph_buf *result_out);

/* adopt.c: the children of a killed hub, re-adopted by the next one */
int adopt_stash(hub *h);
void adopt_run(hub *h, ph_ctx *ctx);
int adopt_pending(void);
void adopt_release(void);

/* stop.c */
void stop_wait_done(stop_wait *w);
/* Stops a child here (shutdown, then kill after its shutdown time); w: an
 * awaited stop to count it in, or NULL. */
void stop_child_here(hub *h, ph_ctx *ctx, child *c, stop_wait *w);
void send_stop(hub *h, ph_ctx *ctx, uint32_t node, ph_term cids, uint64_t stamp);
void forget_row(hub *h, ph_ctx *ctx, reg_row *row);
void stop_batch(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope);
void stop_batch_at(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope,
                   uint64_t stamp);
/* {'$ph_hub', stop_late, Node, [{Cid, Stamp}]}: stops kept for members
 * that missed them, from a member (stop_await.c). */
void stop_late(hub *h, ph_ctx *ctx, uint32_t from, ph_term list);
/* Sends node a stop_late of l's {Cid, Stamp} entries. */
void send_stop_late_to(hub *h, ph_ctx *ctx, uint32_t node, const elist *l);
/* Sends stop_await for cids to every member and makes w wait for their
 * stop_done (stop_await.c). 0, or -1 when w cannot wait. */
int stop_await_members(hub *h, ph_ctx *ctx, stop_wait *w, ph_term cids);
/* stop_await from another hub: stop here, then answer stop_done. */
void stop_awaited_here(hub *h, ph_ctx *ctx, const hub_msg *m);
/* stop_done from a member, or the member gone: the wait counts it done. */
void stop_wait_confirmed(hub *h, const ph_ref *ref, uint32_t node);
void stop_waits_node_gone(hub *h, uint32_t node);
void stop_timed_out(hub *h, const ph_ref *ref);
/* cids are remembered for node, a member that missed their stop. */
void unconfirmed_stops_add(hub *h, ph_term cids, uint32_t node, uint64_t stamp);
/* A member is back (joined again, or greets us after losing us): the
 * stops it missed go to it, before our rows. */
void unconfirmed_stops_send(hub *h, ph_ctx *ctx, uint32_t node);
/* The id was started again here: no member is told to stop it any more.
 * (A start elsewhere does not clear it: a registration cannot tell a new
 * start from a hand-off of the copy the stop missed.) */
void unconfirmed_stop_clear(hub *h, const char *key, uint32_t key_len);
void unconfirmed_stops_prune(hub *h);
/* The hub stops: every awaited stop answers with what it has. */
void stop_waits_finish(hub *h);
int forget_orphans_everywhere(hub *h, ph_ctx *ctx, const elist *ids);

/* supervisor.c */
void child_exited(hub *h, ph_ctx *ctx, child *c, ph_term reason);

/* queries.c */
ph_result reply_lookup(hub *h, ph_term cid, int with_metadata, ph_buf *reply);
ph_result reply_pids(hub *h, ph_term cid, int first_only, ph_buf *reply);
ph_result reply_process_list(hub *h, int local, ph_buf *reply);
uint32_t running_count(hub *h);
ph_result reply_dump(hub *h, ph_buf *reply);
ph_result reply_tag_query(hub *h, ph_term tag, ph_buf *reply);
void encode_which_children(hub *h, uint32_t node, ph_buf *reply);

/* cluster.c */
void send_hub_message(hub *h, ph_ctx *ctx, uint32_t node, hub_msg_kind kind);
void member_left(hub *h, ph_ctx *ctx, member *e, const char *why);
void handle_hello(hub *h, ph_ctx *ctx, ph_pid from, ph_term their_members, int reply);
void greet_seen_nodes(hub *h, ph_ctx *ctx, ph_term nodes);
void announce(hub *h, ph_ctx *ctx);

/* awaited_start.c */
void merge_result(elist *started, elist *errors, ph_term result);
void stop_started(hub *h, ph_ctx *ctx, ph_term started);
void pending_reply(hub *h, ph_ctx *ctx, pending_start *ps);
void pending_free(hub *h, pending_start *ps);
pending_start *pending_find(hub *h, const ph_ref *id);
int pending_expect(pending_start *ps, uint32_t node, int delta);
void pending_check(hub *h, ph_ctx *ctx, pending_start *ps);
void pending_node_done(hub *h, ph_ctx *ctx, pending_start *ps, uint32_t node);
void pending_fail_nodes(pending_start *ps, uint32_t only, const char *reason);
void pending_node_gone(hub *h, ph_ctx *ctx, uint32_t node);
void pending_forwarded(hub *h, ph_ctx *ctx, const ph_ref *ref, ph_term nodes);
void pending_timed_out(hub *h, ph_ctx *ctx, const ph_ref *ref, ph_term id_term);

/* placement.c */
void send_start(hub *h, ph_ctx *ctx, uint32_t node, ph_term id, ph_pid reply_to, const elist *specs,
                ph_term opts);
ph_result start_placed(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term, const start_opts *o,
                       const ph_from *from, ph_buf *reply);
void handle_remote_start(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                         ph_term opts_term);

/* migration.c */
void move_free(move *mv);
void hand_off_orphans(hub *h, ph_ctx *ctx, uint32_t gone);
void republish_moved(hub *h, ph_ctx *ctx, const move *mv);
int group_add(hub *h, ph_ctx *ctx, move_group *groups, int *n_groups, const member *m,
              const reg_row *row, int is_move);
void groups_flush(hub *h, ph_ctx *ctx, move_group *groups, int n_groups, int is_move);
move *move_take(hub *h, const ph_ref *id);
void move_done(hub *h, ph_ctx *ctx, move *mv, ph_term result);
void moves_drop_node(hub *h, ph_ctx *ctx, uint32_t node);
void move_timed_out(hub *h, ph_ctx *ctx, const ph_ref *ref);
move *move_find(hub *h, const ph_ref *id);
void move_finish(hub *h, ph_ctx *ctx, move *mv);
void moves_settled(hub *h, ph_ctx *ctx);

/* reconcile.c */
void schedule_reconcile(hub *h, ph_ctx *ctx, unsigned ms);
/* Which missing copies a reconcile starts: orphans only; also replicas
 * missing from rows that have copies (a member left); or those only when
 * they were missing at the previous periodic pass too. FILL_JOINED (a
 * member joined): orphans only here, and the first holder of a row short
 * of replicas sends them to their owners (push_replicas) - a node that
 * just joined holds only part of each row, so it starts none itself. */
enum reconcile_fill { FILL_ORPHANS, FILL_SHORT, FILL_CONFIRMED, FILL_JOINED };
void reconcile(hub *h, ph_ctx *ctx, enum reconcile_fill fill);
int reconcile_joined(hub *h, ph_ctx *ctx, uint32_t node, int detach);
void adopt_orphans(hub *h, ph_ctx *ctx);
void confirm_tick(hub *h, ph_ctx *ctx);
int move_all_away(hub *h, ph_ctx *ctx);
void failover(hub *h, ph_ctx *ctx, uint32_t gone);

/* api.c */
ph_result hub_call_inner(ph_ctx *ctx, void *state, ph_term req, const ph_from *from, ph_buf *reply);

/* strategy.c */
int strategies_init(hub *h, const hub_config *cfg, char *err, size_t err_size);
void strategies_free(hub *h);
int strategy_node_added(hub *h, uint32_t node);
int strategy_node_removed(hub *h, uint32_t node);
int hub_replication_factor(const hub *h);
/* 1 when the distribution strategy changes, on a node's removal, only the
 * owners of the ids that node was an owner of (reconcile.c, failover). */
int strategy_removal_is_local(const hub *h);
int hub_owners(hub *h, ph_term id, uint32_t *out, int max);
uint32_t hub_owner(hub *h, ph_term id);
long hub_view_digest(hub *h);
uint32_t hub_active_node(hub *h, ph_term id);
int hub_children_init(hub *h, ph_term specs, ph_term opts, ph_buf *error);
void strategy_network_up(hub *h, ph_ctx *ctx);
void strategy_message(hub *h, ph_ctx *ctx, const hub_msg *m);
int strategy_query(hub *h, ph_buf *reply);
void signal_role(hub *h, ph_ctx *ctx, const reg_row *row, ph_pid pid);
void signal_roles(hub *h, ph_ctx *ctx);
const struct sync_ops *sync_strategy(hub *h);
const struct migration_ops *migration_strategy(const hub_config *cfg);
void sync_strategy_free(hub *h);

/* partition.c */
int partition_init(hub *h, char *err, size_t err_size);
void partition_free(hub *h);
void partition_member_left(hub *h, ph_ctx *ctx, uint32_t node);
void partition_member_joined(hub *h, ph_ctx *ctx, uint32_t node);
void partition_start(hub *h, ph_ctx *ctx);
void partition_message(hub *h, ph_ctx *ctx, const hub_msg *m);
void partition_note_conflict(hub *h, ph_ctx *ctx, uint32_t owner, ph_term cid, ph_term reason);
void partition_refuse_start(hub *h, ph_ctx *ctx, const hub_msg *m);
int partition_request(hub *h, ph_ctx *ctx, ph_term req, ph_buf *reply);
/* subscription.c */
/* 1 if req is a subscription request (answered in reply, *r set), else 0. */
int subscription_request(hub *h, ph_ctx *ctx, ph_term req, ph_buf *reply, ph_result *r);
/* 1 if ref was a subscriber's monitor (it is dropped), else 0. */
int subscription_down(hub *h, const ph_ref *ref);
/* Sends the rows changed since the last flush to every subscriber. */
void subscription_flush(hub *h, ph_ctx *ctx);
/* Flushes, then the number of the last message of subscription ref; -1 if
 * this hub has no such subscription. */
long long subscription_seq(hub *h, ph_ctx *ctx, const ph_ref *ref);
/* The number of the last message sent to subscription ref (nothing
 * flushed); -1 if this hub has no such subscription. */
long long subscription_last_seq(hub *h, const ph_ref *ref);
/* subscription_seq for an awaited start with registry_omit: the rows of keys
 * (the children it started) are left out of that subscription's messages
 * and *omitted says how many (the subscriber builds them from the result)
 * when this turn changed those rows and no other, each running here alone
 * (alone: none named another node when it started); otherwise nothing is
 * left out and *omitted is -1. */
long long subscription_seq_omitting(hub *h, ph_ctx *ctx, const ph_ref *ref, const elist *keys,
                                    int alone, long long *omitted);
void subscription_free(hub *h);

/* leave.c */
int leave_init(void);
void leave_confirmed(hub *h, uint32_t node);
void begin_leave(hub *h, ph_ctx *ctx);
void leave_announce(hub *h, ph_ctx *ctx);

#pragma GCC visibility pop

#endif
