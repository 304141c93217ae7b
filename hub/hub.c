/*
 * hub.c - the hub process: ProcessHub's API on this node (docs/api.md).
 *
 * One process, registered as hub_id, does everything for the node: it
 * answers the API, owns the registry and the hook handlers, and is the
 * supervisor of the children started here (they are linked to it and it
 * traps exits). Doing it in one process keeps the registry, the supervisor
 * and the hooks consistent without locks; starting a child is cheap enough
 * (the worker's init runs inline) that this is also the fast way.
 */
#include "hub/hub.h"

#include "ei_glue/term_trust.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/hooks.h"
#include "hub/runtime/log.h"
#include "hub/membership.h"
#include "hub/registry.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/route.h"
#include "hub/runtime/table_cap.h"
#include "strategies/distribution/consistent_hashing.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/timers.h"

#include <errno.h>
#include <processhub/worker.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int elist_init(elist *l)
{
    l->n = 0;
    return ph_buf_init(&l->b);
}

static void elist_free(elist *l)
{
    ph_buf_free(&l->b);
}

static void elist_add(elist *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (ph_vbuild(&l->b, fmt, ap) == 0)
        l->n++;
    va_end(ap);
}

static int elist_to(ph_buf *out, const elist *l)
{
    if (l->n && (ei_x_encode_list_header(out, l->n) != 0 ||
                 ei_x_append_buf(out, l->b.buff, l->b.index) != 0))
        return -1;
    return ei_x_encode_empty_list(out) == 0 ? 0 : -1;
}

static ph_term elist_term(elist *l, ph_buf *scratch)
{
    ph_buf_reset(scratch);
    elist_to(scratch, l);
    return ph_buf_term(scratch);
}

/* A pid as a term, in a small buffer the caller provides. */
static ph_term pid_term(ph_pid pid, ph_buf *tmp)
{
    ph_buf_reset(tmp);
    ph_encode_pid(tmp, pid);
    return ph_buf_term(tmp);
}

/* Sends the hub itself the term of fmt (ph_build) after ms: its timers. */
static void send_self_after(ph_ctx *ctx, unsigned ms, const char *fmt, ...)
{
    ph_buf b;
    ph_ref timer;
    va_list ap;
    if (ph_buf_init(&b) != 0)
        return;
    va_start(ap, fmt);
    int rc = ph_vbuild(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        ph_send_after(ctx, ms, ph_buf_term(&b), &timer);
    ph_buf_free(&b);
}

/* --- proper lists, walked with ei ---------------------------------------- */

/* The hub's requests were validated as a whole when they arrived, so the
 * big ones (100k child specs) are walked with ei alone rather than with
 * the ph_* helpers, which check every term they are given again. */
typedef struct list_walk {
    const char *buf;
    int index;
    int left;
} list_walk;

/* Element count of a proper list (0 for []), or -1 for anything else. */
static int list_begin(list_walk *w, ph_term list)
{
    int type, size, index = list.index;
    w->buf = list.buf;
    w->left = 0;
    if (!list.buf || ei_get_type(list.buf, &index, &type, &size) != 0)
        return -1;
    if (type == ERL_NIL_EXT) {
        w->index = index + 1;
        return 0;
    }
    if (type != ERL_LIST_EXT || ei_decode_list_header(list.buf, &index, &size) != 0)
        return -1;
    w->index = index;
    w->left = size;
    return size;
}

static int list_next(list_walk *w, ph_term *e)
{
    if (w->left <= 0) {
        /* [A | [B | []]] is a proper list too: follow a tail that is a list. */
        int type, size, index = w->index;
        if (!w->buf || ei_get_type(w->buf, &index, &type, &size) != 0 || type != ERL_LIST_EXT ||
            ei_decode_list_header(w->buf, &index, &size) != 0 || size <= 0)
            return 0;
        w->index = index;
        w->left = size;
    }
    *e = (ph_term){w->buf, w->index};
    if (term_skip_valid(w->buf, &w->index) != 0)
        return -1;
    w->left--;
    return 1;
}

/* --- the hub's state ---------------------------------------------------- */

typedef struct stop_wait {
    ph_from *from;
    int outstanding;
    elist stopped;
    elist errors;
} stop_wait;

typedef struct child {
    ph_pid pid;
    uint8_t restart;
    uint8_t stopping;
    long shutdown_ms;
    stop_wait *wait;
    uint16_t key_len;
    char key[];
} child;

typedef struct hub {
    hub_config cfg;
    uint32_t self_node;
    registry *reg;
    hooks *hooks;
    child **children; /* open addressing by pid, NULL = empty, GONE = deleted */
    uint32_t cap, count, used;
    uint64_t *restarts; /* ring of restart times (ms), dsup_max_restarts long */
    uint32_t restart_next, restart_n;
    membership members; /* the other hub nodes */
    ph_buf seeds;       /* [Node] to announce ourselves to */
    /* Registry changes of this node not yet published to the members:
     * elements {Cid, Spec, Pid, Meta} and Cid. Flushed after each
     * request or message, so a batch of 100k starts is one message. */
    elist sync_registered;
    elist sync_unregistered;
    ring *ring;                    /* ConsistentHashing over this node and the members */
    struct pending_start *pending; /* awaitable starts waiting for other members */
    int repairing;                 /* the periodic repair timer runs */
    ph_buf key_scratch;            /* registry keys of lookups, reused */
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
    /* Ids stopped in the last TOMB_MS, with the time as their spec: a
     * hand-off sent before the stop and arriving after it is refused. */
    registry *tombs;
    uint64_t reconcile_due; /* when the earliest {'$ph_hub', reconcile} on its way comes; 0: none */
    int orphan_check_ms;    /* the next orphan check's delay; 0: none pending */
    int retry_ms;           /* re-plan delay after a move that failed; doubles */
} hub;

/* A batch of children sent to their new owner after a join (ColdSwap):
 * they stop here once its start_result says it runs them. */
typedef struct move {
    struct move *next;
    ph_ref id;
    uint32_t target;
    int n;       /* children in it */
    ph_buf cids; /* [Cid]: what to undo there if the answer comes too late */
} move;

static void move_free(move *mv)
{
    if (!mv)
        return;
    ph_buf_free(&mv->cids);
    free(mv);
}

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
} pending_start;

static void pending_node_gone(hub *h, ph_ctx *ctx, uint32_t node);

static child gone_child;
#define GONE (&gone_child)

static const hub_config *start_config;

/* --- children by pid ---------------------------------------------------- */

static uint32_t pid_hash(ph_pid pid)
{
    return (pid.num * 2654435761u) ^ (pid.serial * 40503u);
}

static int children_rehash(hub *h, uint32_t cap);

/* A hint to load the slot where pid's record will be inserted or found
 * (see registry_prefetch). */
static void children_prefetch(const hub *h, ph_pid pid)
{
    if (h->cap)
        __builtin_prefetch(&h->children[pid_hash(pid) & (h->cap - 1)]);
}

/* Room for extra more children at once: one rehash for a big batch. */
static int children_reserve(hub *h, uint32_t extra)
{
    uint32_t cap;
    if (h->cap && !table_needs_rehash(h->used, extra, h->cap))
        return 0;
    if (table_cap_for(h->cap, (uint64_t)h->count + extra, &cap) != 0)
        return -1;
    return children_rehash(h, cap);
}

static int children_rehash(hub *h, uint32_t cap)
{
    child **n = calloc(cap, sizeof *n);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (!c || c == GONE)
            continue;
        uint32_t j = pid_hash(c->pid) & (cap - 1);
        while (n[j])
            j = (j + 1) & (cap - 1);
        n[j] = c;
    }
    free(h->children);
    h->children = n;
    h->cap = cap;
    h->used = h->count;
    return 0;
}

static child *child_find(hub *h, ph_pid pid, uint32_t *slot)
{
    if (!h->cap)
        return NULL;
    for (uint32_t i = pid_hash(pid) & (h->cap - 1), n = 0; n < h->cap;
         i = (i + 1) & (h->cap - 1), n++) {
        child *c = h->children[i];
        if (!c)
            return NULL;
        if (c != GONE && ph_pid_equal(c->pid, pid)) {
            if (slot)
                *slot = i;
            return c;
        }
    }
    return NULL;
}

/* A supervision record, not yet in the table (any thread may build one). */
static child *child_new(ph_pid pid, const char *key, uint16_t key_len, const spec_info *s)
{
    child *c = calloc(1, sizeof *c + key_len);
    if (!c)
        return NULL;
    c->pid = pid;
    c->restart = (uint8_t)s->restart;
    c->shutdown_ms = s->shutdown_ms;
    c->key_len = key_len;
    memcpy(c->key, key, key_len);
    return c;
}

static int child_insert(hub *h, child *c);

static child *child_add(hub *h, ph_pid pid, const char *key, uint16_t key_len, const spec_info *s)
{
    child *c = child_new(pid, key, key_len, s);
    if (c && child_insert(h, c) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static int child_insert(hub *h, child *c)
{
    if (children_reserve(h, 1) != 0)
        return -1;
    uint32_t i = pid_hash(c->pid) & (h->cap - 1);
    while (h->children[i] && h->children[i] != GONE)
        i = (i + 1) & (h->cap - 1);
    if (!h->children[i])
        h->used++;
    h->children[i] = c;
    h->count++;
    return 0;
}

static void child_remove(hub *h, child *c)
{
    uint32_t slot;
    if (child_find(h, c->pid, &slot) == c) {
        h->children[slot] = GONE;
        h->count--;
    }
    free(c);
}

/* --- child specs -------------------------------------------------------- */

static int atom_at(const char *buf, int *index, char *out)
{
    int type, size;
    if (ei_get_type(buf, index, &type, &size) != 0 ||
        (type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT && type != ERL_ATOM_UTF8_EXT &&
         type != ERL_SMALL_ATOM_UTF8_EXT))
        return -1;
    return ei_decode_atom(buf, index, out);
}

/* The bytes of the atom at buf[index], in any of its four encodings; for
 * comparing with ASCII names, whose bytes are the same in Latin-1 and
 * UTF-8. 0, or -1 when the term there is not an atom. */
static int atom_bytes(const char *buf, int index, const char **text, int *len)
{
    const unsigned char *p = (const unsigned char *)buf + index;
    switch (p[0]) {
    case ERL_SMALL_ATOM_EXT:
    case ERL_SMALL_ATOM_UTF8_EXT:
        *len = p[1];
        *text = buf + index + 2;
        return 0;
    case ERL_ATOM_EXT:
    case ERL_ATOM_UTF8_EXT:
        *len = p[1] << 8 | p[2];
        *text = buf + index + 3;
        return 0;
    }
    return -1;
}

static int atom_is(const char *text, int len, const char *name)
{
    return (size_t)len == strlen(name) && memcmp(text, name, (size_t)len) == 0;
}

/* The atom at buf[index] is name. */
static int atom_at_is(const char *buf, int index, const char *name)
{
    const char *text;
    int len;
    return atom_bytes(buf, index, &text, &len) == 0 && atom_is(text, len, name);
}

/* One pass over the spec map (the message was validated when it arrived;
 * this is the hot path of a 100k-child start): keys and atoms are compared
 * in place, only the module name is decoded. */
static int parse_spec(ph_term spec, spec_info *s)
{
    const char *buf = spec.buf;
    int index = spec.index, arity, size;
    char fun[PH_ATOM_BUF];
    int have_id = 0, have_start = 0;
    memset(s, 0, sizeof *s);
    s->restart = RESTART_PERMANENT;
    s->shutdown_ms = DEFAULT_SHUTDOWN_MS;
    if (!buf || ei_decode_map_header(buf, &index, &arity) != 0)
        return -1;
    for (int i = 0; i < arity; i++) {
        const char *key;
        int key_len;
        int is_atom = atom_bytes(buf, index, &key, &key_len) == 0;
        if (term_skip_valid(buf, &index) != 0)
            return -1;
        int value = index;
        if (!is_atom) {
            /* not one of ours: skip the value below */
        } else if (atom_is(key, key_len, "id")) {
            const char *text;
            int len;
            if ((unsigned char)buf[value] != ERL_BINARY_EXT &&
                atom_bytes(buf, value, &text, &len) != 0)
                return -1;
            s->id = (ph_term){buf, value};
            have_id = 1;
        } else if (atom_is(key, key_len, "start")) {
            int t = value;
            if (ei_decode_tuple_header(buf, &t, &size) != 0 || size != 3 ||
                atom_at(buf, &t, s->module) != 0 || atom_at(buf, &t, fun) != 0)
                return -1;
            s->args = (ph_term){buf, t};
            have_start = 1;
        } else if (atom_is(key, key_len, "restart")) {
            if (atom_at_is(buf, value, "permanent"))
                s->restart = RESTART_PERMANENT;
            else if (atom_at_is(buf, value, "transient"))
                s->restart = RESTART_TRANSIENT;
            else if (atom_at_is(buf, value, "temporary"))
                s->restart = RESTART_TEMPORARY;
            else
                return -1;
        } else if (atom_is(key, key_len, "shutdown")) {
            int t = value;
            long ms;
            if (atom_at_is(buf, value, "brutal_kill"))
                s->shutdown_ms = SHUTDOWN_BRUTAL;
            else if (atom_at_is(buf, value, "infinity"))
                s->shutdown_ms = SHUTDOWN_INFINITY;
            else if (ei_decode_long(buf, &t, &ms) == 0 && ms >= 0)
                s->shutdown_ms = ms;
            else
                return -1;
        }
        if (term_skip_valid(buf, &index) != 0)
            return -1;
    }
    return have_id && have_start ? 0 : -1;
}

/* --- hooks -------------------------------------------------------------- */

static void fire(hub *h, ph_ctx *ctx, const char *key, ph_term data)
{
    hooks_dispatch(h->hooks, ctx, key, &data, NULL);
}

static void fire_insert(hub *h, ph_ctx *ctx, const reg_row *row)
{
    if (!hooks_has(h->hooks, "registry_pid_insert_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && ph_buf_append_term(&b, reg_row_key(row)) == 0 &&
        registry_encode_nodes(&b, row) == 0)
        fire(h, ctx, "registry_pid_insert_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

static void fire_remove(hub *h, ph_ctx *ctx, ph_term key, uint32_t node)
{
    if (!hooks_has(h->hooks, "registry_pid_remove_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~t, [~a]}", key, atom_text(node)) == 0)
        fire(h, ctx, "registry_pid_remove_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* --- publishing registry changes to the other members ---------------- */

/* Appends {Cid, Spec, Pid, Meta} of row to l. */
static void append_row_entry(elist *l, const reg_row *row, ph_pid pid)
{
    /* The row's terms were checked when it was stored: copied as bytes. */
    ph_buf *b = &l->b;
    if (ph_buf_reserve(b, 128u + row->key_len + row->spec_len + row->meta_len) == 0 &&
        ei_x_encode_tuple_header(b, 4) == 0 &&
        ei_x_append_buf(b, row->data, (int)(row->key_len + row->spec_len)) == 0 &&
        ph_encode_pid(b, pid) == 0 &&
        ei_x_append_buf(b, row->data + row->key_len + row->spec_len, (int)row->meta_len) == 0)
        l->n++;
}

static void note_registered(hub *h, const reg_row *row, ph_pid pid)
{
    if (h->members.n > 0)
        append_row_entry(&h->sync_registered, row, pid);
}

static void note_unregistered(hub *h, ph_term cid)
{
    if (h->members.n == 0)
        return;
    if (ph_buf_append_term(&h->sync_unregistered.b, cid) == 0)
        h->sync_unregistered.n++;
}

/* Sends a message the hub encoded itself into the versioned buffer b:
 * well-formed by construction, so ph_send finds its end with the quick
 * walk instead of validating it (sync and start messages are megabytes). */
static void send_own(ph_ctx *ctx, ph_pid to, const ph_buf *b)
{
    struct term_trust saved = term_trust_push(b->buff, b->index);
    ph_send(ctx, to, ph_buf_term(b));
    term_trust_pop(saved);
}

/* {'$ph_hub', Kind, Node, List} to one member, or to all (node 0). */
static void send_sync(hub *h, ph_ctx *ctx, uint32_t only, const char *kind, const elist *l)
{
    ph_buf b;
    if (ph_buf_init_versioned(&b) != 0 || ph_buf_reserve(&b, (size_t)l->b.index + 512) != 0)
        return;
    ei_x_encode_tuple_header(&b, 4);
    ei_x_encode_atom(&b, "$ph_hub");
    ei_x_encode_atom(&b, kind);
    ei_x_encode_atom(&b, atom_text(h->self_node));
    elist_to(&b, l);
    for (int i = 0; i < h->members.n; i++)
        if (!only || h->members.members[i].node == only)
            send_own(ctx, h->members.members[i].hub, &b);
    ph_buf_free(&b);
}

static void flush_sync(hub *h, ph_ctx *ctx)
{
    if (h->test_drop_syncs > 0 && (h->sync_registered.n || h->sync_unregistered.n)) {
        /* test-only: lose this update, for the periodic repair to fix */
        h->test_drop_syncs--;
        LOG_W("hub", "%s: PHNODE_TEST_DROP_SYNC: dropped a registry update", h->cfg.hub_id);
        ph_buf_reset(&h->sync_registered.b);
        ph_buf_reset(&h->sync_unregistered.b);
        h->sync_registered.n = h->sync_unregistered.n = 0;
        return;
    }
    if (h->sync_registered.n)
        send_sync(h, ctx, 0, "registered", &h->sync_registered);
    if (h->sync_unregistered.n)
        send_sync(h, ctx, 0, "unregistered", &h->sync_unregistered);
    ph_buf_reset(&h->sync_registered.b);
    ph_buf_reset(&h->sync_unregistered.b);
    h->sync_registered.n = h->sync_unregistered.n = 0;
}

/* Removes this node from the child's registry row (remove hook). */
static void unregister_local(hub *h, ph_ctx *ctx, const char *key, uint16_t key_len)
{
    reg_row *row = registry_get(h->reg, key, key_len);
    if (!row)
        return;
    ph_buf k;
    if (ph_buf_init(&k) != 0)
        return;
    ph_buf_append_term(&k, reg_row_key(row));
    note_unregistered(h, ph_buf_term(&k));
    registry_remove_node(h->reg, row, h->self_node);
    fire_remove(h, ctx, ph_buf_term(&k), h->self_node);
    ph_buf_free(&k);
}

/* --- stopped ids and moving ids ----------------------------------------- */

/* How long a stopped id refuses hand-offs. A hand-off races a stop only
 * while both are in flight; 30 s covers any move (migr_base_timeout) and
 * any orphan check. */
#define TOMB_MS 30000

static void tomb_add(hub *h, const char *key, uint32_t key_len)
{
    ph_buf t;
    if (ph_buf_init(&t) != 0)
        return;
    if (ei_x_encode_longlong(&t, (long long)(monotonic_ms() + TOMB_MS)) == 0 &&
        !registry_put(h->tombs, key, key_len, ph_buf_term(&t), ph_buf_term(&t), NULL, 0))
        LOG_W("hub", "%s: out of memory remembering a stopped id", h->cfg.hub_id);
    ph_buf_free(&t);
}

static void tomb_clear(hub *h, const char *key, uint32_t key_len)
{
    reg_row *t = registry_count(h->tombs) ? registry_get(h->tombs, key, key_len) : NULL;
    if (t)
        registry_delete(h->tombs, t);
}

static int tomb_has(hub *h, const char *key, uint32_t key_len)
{
    return registry_count(h->tombs) && registry_get(h->tombs, key, key_len) != NULL;
}

static void tombs_prune(hub *h)
{
    uint32_t i = 0;
    reg_row *t;
    uint64_t now = monotonic_ms();
    while ((t = registry_next(h->tombs, &i)) != NULL) {
        int index = 0;
        long long until = 0;
        if (ei_decode_longlong(reg_row_spec(t).buf, &index, &until) != 0 || (uint64_t)until <= now)
            registry_delete(h->tombs, t); /* iteration goes on past a deleted slot */
    }
}

/* The member a local child is being moved to, or ATOM_NONE. */
static uint32_t moving_target(hub *h, const char *key, uint32_t key_len)
{
    reg_row *m = registry_count(h->moving) ? registry_get(h->moving, key, key_len) : NULL;
    return m && m->n_nodes ? m->nodes[0].node : ATOM_NONE;
}

#define RECONCILE_MS 50      /* a re-plan after a hand-off or a second copy is seen */
#define ORPHAN_CHECK_MS 1000 /* an orphan its owner has not restarted by then is sent to it */

static void schedule_reconcile(hub *h, ph_ctx *ctx, unsigned ms);

/* --- options ------------------------------------------------------------- */

typedef struct start_opts {
    int awaitable, check_existing, rollback, disable_logging;
    int forwarded; /* placed by a member whose ring disagreed: start here, never forward again */
    int handoff;   /* a running or orphaned child sent to its owner (a move, an adoption) */
    int has_ring;  /* the placing node's ring digest came along: */
    long ring;     /* when it equals ours, nothing needs forwarding */
    int want_post; /* post-start hooks are registered: build their data */
    long timeout;
    ph_term metadata;
    ph_term all; /* the options as given */
} start_opts;

static const char empty_map_bytes[] = {'t', 0, 0, 0, 0};

/* Reads the keyword list; on a bad option writes {error, ...} to reply. */
static int parse_opts(ph_term opts, start_opts *o, ph_buf *reply)
{
    ph_iter it;
    ph_term opt, v;
    char key[PH_ATOM_BUF];
    memset(o, 0, sizeof *o);
    o->check_existing = 1;
    o->timeout = 10000;
    o->metadata = (ph_term){empty_map_bytes, 0};
    o->all = opts;
    if (ph_term_type(opts, NULL) == ERL_SMALL_TUPLE_EXT || ph_iter_begin(&it, opts) < 0) {
        ph_build(reply, "{error, {bad_options, ~t}}", opts);
        return -1;
    }
    while (ph_iter_next(&it, &opt) > 0) {
        int ok = ph_match(opt, "{~a, ~t}", key, &v) == 1;
        if (ok && strcmp(key, "awaitable") == 0)
            ok = ph_match(v, "~B", &o->awaitable) == 1;
        else if (ok && strcmp(key, "check_existing") == 0)
            ok = ph_match(v, "~B", &o->check_existing) == 1;
        else if (ok && strcmp(key, "disable_logging") == 0)
            ok = ph_match(v, "~B", &o->disable_logging) == 1;
        else if (ok && strcmp(key, "forwarded") == 0)
            ok = ph_match(v, "~B", &o->forwarded) == 1;
        else if (ok && strcmp(key, "handoff") == 0)
            ok = ph_match(v, "~B", &o->handoff) == 1;
        else if (ok && strcmp(key, "ring") == 0)
            ok = o->has_ring = ph_match(v, "~i", &o->ring) == 1;
        else if (ok && strcmp(key, "timeout") == 0)
            ok = ph_match(v, "~i", &o->timeout) == 1 && o->timeout >= 0;
        else if (ok && strcmp(key, "await_timeout") == 0)
            ok = ph_match(v, "~i", &(long){0}) == 1;
        else if (ok && strcmp(key, "on_failure") == 0) {
            o->rollback = ph_match(v, "rollback") == 1;
            ok = o->rollback || ph_match(v, "continue") == 1;
        } else if (ok && strcmp(key, "metadata") == 0) {
            ok = ph_term_type(v, NULL) == ERL_MAP_EXT;
            if (ok)
                o->metadata = v;
        } else if (ok && strcmp(key, "child_mapping") == 0) {
            ph_iter m;
            ph_term k, nodes;
            ok = ph_term_type(v, NULL) == ERL_MAP_EXT && ph_iter_begin(&m, v) >= 0;
            while (ok && ph_iter_next(&m, &k) > 0 && ph_iter_next(&m, &nodes) > 0)
                ok = ph_term_type(nodes, NULL) == ERL_LIST_EXT ||
                     ph_term_type(nodes, NULL) == ERL_NIL_EXT;
        }
        if (!ok) {
            ph_build(reply, "{error, {bad_option, ~t}}", opt);
            return -1;
        }
    }
    return 0;
}

/* --- starting children --------------------------------------------------- */

/* Spawns the child of s, linked to the hub. 0 and *pid, or -1 and the
 * reason appended to reason. */
static int spawn_child(ph_ctx *ctx, const spec_info *s, ph_pid *pid, ph_buf *reason)
{
    ph_spawn_opts so = {.name = NULL, .supervised = 1};
    return ph_spawn(ctx, s->module, s->args, &so, pid, reason);
}

typedef struct start_result {
    elist started, errors, post, startups;
    elist started_keys; /* registry keys of the children started, for rollback */
} start_result;

static void result_free(start_result *r)
{
    elist_free(&r->started);
    elist_free(&r->errors);
    elist_free(&r->post);
    elist_free(&r->startups);
    elist_free(&r->started_keys);
}

static int result_init(start_result *r)
{
    return elist_init(&r->started) | elist_init(&r->errors) | elist_init(&r->post) |
           elist_init(&r->startups) | elist_init(&r->started_keys);
}

static int row_local_pid(const hub *h, const reg_row *row, ph_pid *pid)
{
    for (uint16_t i = 0; i < row->n_nodes; i++)
        if (row->nodes[i].node == h->self_node) {
            *pid = row->nodes[i].pid;
            return 1;
        }
    return 0;
}

/* Appends the child_data of hooks for spec: #{hub_id, nodes => [Node],
 * child_id, child_spec, metadata}. 0, or -1 if spec does not parse. */
static int add_child_data(const hub *h, elist *out, uint32_t node, ph_term spec, ph_term meta)
{
    spec_info s;
    if (parse_spec(spec, &s) != 0)
        return -1;
    elist_add(out,
              "#{hub_id => ~a, nodes => [~a], child_id => ~t, child_spec => ~t, metadata => ~t}",
              h->cfg.hub_id, atom_text(node), s.id, spec, meta);
    return 0;
}

/* The result entries of one child of a batch, in the shapes of the
 * awaited result and the post-start hooks. */
static void note_bad_spec(hub *h, start_result *r, ph_term spec)
{
    const char *node = atom_text(h->self_node);
    ph_term cid;
    if (ph_term_type(spec, NULL) == ERL_MAP_EXT && ph_map_get_atom(spec, "id", &cid) == 1)
        elist_add(&r->errors, "{~t, ~a, {bad_spec, ~t}}", cid, node, spec);
    else
        elist_add(&r->errors, "{undefined, ~a, {bad_spec, ~t}}", node, spec);
}

static void note_already_started(hub *h, start_result *r, ph_term id, ph_pid running)
{
    const char *node = atom_text(h->self_node);
    ph_buf *pidb = &h->start_pid;
    ph_term pt = pid_term(running, pidb);
    elist_add(&r->errors, "{~t, ~a, {already_started, ~t}}", id, node, pt);
    elist_add(&r->post, "{~t, {error, {already_started, ~t}}, ~t, [~a]}", id, pt, pt, node);
}

static void note_failed(hub *h, const start_opts *o, start_result *r, ph_term id, ph_term reason)
{
    const char *node = atom_text(h->self_node);
    if (!o->disable_logging) {
        char id_text[1100], reason_text[512];
        LOG_W("hub", "child %s failed to start: %s", ph_term_format(id, id_text, sizeof id_text),
              ph_term_format(reason, reason_text, sizeof reason_text));
    }
    elist_add(&r->errors, "{~t, ~a, ~t}", id, node, reason);
    elist_add(&r->post, "{~t, {error, ~t}, nil, [~a]}", id, reason, node);
}

/* A child started and its row is in the registry: hooks, sync, result. */
static void note_started(hub *h, ph_ctx *ctx, const start_opts *o, start_result *r, reg_row *row,
                         ph_term id, ph_pid pid)
{
    const char *node = atom_text(h->self_node);
    if (!o->handoff)
        tomb_clear(h, row->data, row->key_len); /* started again since its stop */
    fire_insert(h, ctx, row);
    note_registered(h, row, pid);
    /* {Cid, [{Node, Pid}]}, encoded directly: this runs per child */
    ph_buf *st = &r->started.b;
    if (ph_buf_reserve(st, 64u + row->key_len) == 0 && ei_x_encode_tuple_header(st, 2) == 0 &&
        ei_x_append_buf(st, row->data, row->key_len) == 0 && ei_x_encode_list_header(st, 1) == 0 &&
        ei_x_encode_tuple_header(st, 2) == 0 && ei_x_encode_atom(st, node) == 0 &&
        ph_encode_pid(st, pid) == 0 && ei_x_encode_empty_list(st) == 0)
        r->started.n++;
    if (o->want_post) {
        ph_term pt = pid_term(pid, &h->start_pid);
        elist_add(&r->post, "{~t, {ok, ~t}, ~t, [~a]}", id, pt, pt, node);
        elist_add(&r->startups, "#{cid => ~t, pid => ~t}", id, pt);
    }
    if (o->rollback)
        elist_add(&r->started_keys, "~t", reg_row_key(row));
}

static void start_one(hub *h, ph_ctx *ctx, ph_term spec, const start_opts *o, start_result *r)
{
    spec_info s;
    ph_buf *key = &h->start_key, *reason = &h->start_reason;
    ph_pid pid;
    key->index = reason->index = 0;
    if (parse_spec(spec, &s) != 0 || registry_key(s.id, key) != 0) {
        note_bad_spec(h, r, spec);
        return;
    }
    reg_row *row = registry_get(h->reg, key->buff, (uint32_t)key->index);
    if (row && row_local_pid(h, row, &pid)) {
        /* Running here already: started earlier in this call, or a running
         * child with check_existing off. (A row of another node is a child
         * moving here, or one whose node left.) */
        note_already_started(h, r, s.id, pid);
        return;
    }
    if (spawn_child(ctx, &s, &pid, reason) != 0) {
        note_failed(h, o, r, s.id, ph_buf_term(reason));
        return;
    }
    reg_node_pid np = {h->self_node, pid};
    row = registry_put(h->reg, key->buff, (uint32_t)key->index, spec, o->metadata, &np, 1);
    if (!row || !child_add(h, pid, key->buff, (uint16_t)key->index, &s)) {
        LOG_E("hub", "out of memory registering a child");
        ph_exit(ctx, pid, (ph_term){"\x77\x04kill", 0});
        elist_add(&r->errors, "{~t, ~a, enomem}", s.id, atom_text(h->self_node));
        return;
    }
    note_started(h, ctx, o, r, row, s.id, pid);
}

static void begin_stop(hub *h, ph_ctx *ctx, child *c, stop_wait *w);
/* Where stop_batch stops each child: anywhere in the cluster (the API), here
 * and in this node's registry (a member's stop), or here only (undoing or
 * completing a move must never reach the other copy). */
enum stop_scope { STOP_ANYWHERE, STOP_REMOTE, STOP_HERE };
static void stop_batch(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope);

/* Starts a batch; writes the reply (awaitable result, or nothing when the
 * caller replied already). Returns -1 when the whole call is refused
 * (reply holds the error). */
/* {ok, #{status => ok | error, started => [...], errors => [...], rollback => B}},
 * the lists copied straight from the elists (they can hold 100k entries). */
static int encode_start_result(ph_buf *out, const elist *started, const elist *errors, int rollback)
{
    if (ph_buf_reserve(out, (size_t)started->b.index + (size_t)errors->b.index + 128u) != 0 ||
        ei_x_encode_tuple_header(out, 2) != 0 || ei_x_encode_atom(out, "ok") != 0 ||
        ei_x_encode_map_header(out, 4) != 0 || ei_x_encode_atom(out, "status") != 0 ||
        ei_x_encode_atom(out, errors->n ? "error" : "ok") != 0 ||
        ei_x_encode_atom(out, "started") != 0 || elist_to(out, started) != 0 ||
        ei_x_encode_atom(out, "errors") != 0 || elist_to(out, errors) != 0 ||
        ei_x_encode_atom(out, "rollback") != 0 ||
        ei_x_encode_atom(out, rollback ? "true" : "false") != 0)
        return -1;
    return 0;
}

/* --- big batches on two threads --------------------------------------------
 *
 * Spawning a child and building its registry row and supervision record
 * touch nothing of the hub's: for a big batch they run on the hub's thread
 * and a helper thread at once (the second core is otherwise idle while the
 * caller waits). What touches the hub's tables, fires hooks or builds the
 * result stays on the hub's thread, in the batch's order. */

#define PARALLEL_MIN 4096
/* How many rows ahead the insertion loop asks for registry slots. */
#define PREFETCH_AHEAD 8

enum prep_state {
    PREP_BAD_SPEC, /* does not parse */
    PREP_RUNNING,  /* runs here already: pid */
    PREP_DUP,      /* the same id earlier in this batch: dup_of */
    PREP_SPAWN,    /* to start */
    PREP_STARTED,  /* started: pid, row, rec built */
    PREP_FAILED,   /* init refused: reason */
    PREP_NOMEM,    /* started, but no memory for its row or record */
};

typedef struct prep {
    ph_term spec;
    uint32_t key_off, key_len; /* its registry key, in the batch's key buffer */
    uint32_t dup_of;
    uint8_t state;
    ph_pid pid;
    reg_row *row;
    child *rec;
    ph_buf *reason;
} prep;

typedef struct prep_job {
    prep *items;
    uint32_t from, to;
    const char *keys;
    ph_ctx *ctx; /* the hub's: spawned children are supervised by it */
    ph_term metadata;
    uint32_t self_node;
    struct term_trust trust;
} prep_job;

/* Starts the PREP_SPAWN items of [from, to) and builds their rows and
 * records. Runs on either thread. */
static void prepare_range(const prep_job *j)
{
    struct term_trust saved = term_trust_push(j->trust.buf, j->trust.len);
    ph_buf reason;
    if (ph_buf_init(&reason) != 0) {
        term_trust_pop(saved);
        return; /* the items stay PREP_SPAWN: the hub starts them itself */
    }
    for (uint32_t i = j->from; i < j->to; i++) {
        prep *it = &j->items[i];
        spec_info s;
        if (it->state != PREP_SPAWN || parse_spec(it->spec, &s) != 0)
            continue;
        reason.index = 0;
        if (spawn_child(j->ctx, &s, &it->pid, &reason) != 0) {
            it->reason = malloc(sizeof *it->reason);
            if (it->reason && ph_buf_init(it->reason) == 0)
                ph_buf_append_term(it->reason, ph_buf_term(&reason));
            it->state = PREP_FAILED;
            continue;
        }
        const char *key = j->keys + it->key_off;
        reg_node_pid np = {j->self_node, it->pid};
        it->row = registry_row_new(key, it->key_len, it->spec, j->metadata, &np, 1);
        it->rec = child_new(it->pid, key, (uint16_t)it->key_len, &s);
        it->state = it->row && it->rec ? PREP_STARTED : PREP_NOMEM;
    }
    ph_buf_free(&reason);
    term_trust_pop(saved);
}

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running, busy, stop;
    prep_job job;
    pthread_t thread;
} helper = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&helper.lock);
    for (;;) {
        while (!helper.busy && !helper.stop)
            pthread_cond_wait(&helper.cond, &helper.lock);
        if (helper.stop)
            break;
        prep_job job = helper.job;
        pthread_mutex_unlock(&helper.lock);
        prepare_range(&job);
        pthread_mutex_lock(&helper.lock);
        helper.busy = 0;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return NULL;
}

/* Hands job to the helper thread (started on first use). 0, or -1 when
 * there is none: the caller does the job itself. */
static int helper_submit(const prep_job *job)
{
    pthread_mutex_lock(&helper.lock);
    if (!helper.running && !helper.stop &&
        pthread_create(&helper.thread, NULL, helper_main, NULL) == 0)
        helper.running = 1;
    int ok = helper.running;
    if (ok) {
        helper.job = *job;
        helper.busy = 1;
        pthread_cond_broadcast(&helper.cond);
    }
    pthread_mutex_unlock(&helper.lock);
    return ok ? 0 : -1;
}

static void helper_wait(void)
{
    pthread_mutex_lock(&helper.lock);
    while (helper.busy)
        pthread_cond_wait(&helper.cond, &helper.lock);
    pthread_mutex_unlock(&helper.lock);
}

static void helper_stop(void)
{
    pthread_mutex_lock(&helper.lock);
    int running = helper.running;
    helper.stop = 1;
    pthread_cond_broadcast(&helper.cond);
    pthread_mutex_unlock(&helper.lock);
    if (running)
        pthread_join(helper.thread, NULL);
}

/* Index of the batch's first item with the key of item i, via an open
 * addressing table of item indexes + 1 (cap a power of two). */
static uint32_t batch_first_with_key(uint32_t *table, uint32_t cap, const prep *items,
                                     const char *keys, uint32_t i)
{
    const prep *it = &items[i];
    uint32_t hash = 2166136261u;
    for (uint32_t k = 0; k < it->key_len; k++)
        hash = (hash ^ (unsigned char)keys[it->key_off + k]) * 16777619u;
    for (uint32_t slot = hash & (cap - 1);; slot = (slot + 1) & (cap - 1)) {
        if (!table[slot]) {
            table[slot] = i + 1;
            return i;
        }
        const prep *o = &items[table[slot] - 1];
        if (o->key_len == it->key_len &&
            memcmp(keys + o->key_off, keys + it->key_off, it->key_len) == 0)
            return table[slot] - 1;
    }
}

typedef struct batch {
    prep *items;
    uint32_t m;
    ph_buf keys;
} batch;

static void batch_free(batch *b)
{
    for (uint32_t i = 0; i < b->m; i++)
        if (b->items[i].reason) {
            ph_buf_free(b->items[i].reason);
            free(b->items[i].reason);
        }
    free(b->items);
    ph_buf_free(&b->keys);
}

/* Step 1 of a big batch, on the hub's thread: parse, and find what must not
 * start. With check, the ids already registered (on any node) go to
 * existing. -1 when out of memory (nothing done). */
static int batch_prepare(hub *h, ph_term list, uint32_t n, int check, elist *existing, batch *b)
{
    uint32_t cap = 1;
    while (cap < 2 * n)
        cap <<= 1;
    memset(b, 0, sizeof *b);
    b->items = calloc(n, sizeof *b->items);
    uint32_t *table = calloc(cap, sizeof *table);
    if (!b->items || !table || ph_buf_init(&b->keys) != 0 ||
        ph_buf_reserve(&b->keys, (size_t)n * 16u)) {
        free(table);
        batch_free(b);
        return -1;
    }
    prep *items = b->items;
    ph_buf *keys = &b->keys;
    list_walk w;
    ph_term spec;
    uint32_t m = 0;
    list_begin(&w, list);
    while (m < n && list_next(&w, &spec) > 0) {
        prep *it = &items[m];
        spec_info s;
        it->spec = spec;
        it->key_off = (uint32_t)keys->index;
        if (parse_spec(spec, &s) != 0 || registry_key(s.id, keys) != 0) {
            keys->index = (int)it->key_off;
            it->state = PREP_BAD_SPEC;
        } else {
            it->key_len = (uint32_t)keys->index - it->key_off;
            const char *key = keys->buff + it->key_off;
            /* the registry's slot loads while the batch's own table is probed */
            uint32_t hash = registry_hash(key, it->key_len);
            registry_prefetch(h->reg, hash);
            uint32_t first = batch_first_with_key(table, cap, items, keys->buff, m);
            reg_row *row = registry_get_hashed(h->reg, key, it->key_len, hash);
            if (row && check)
                elist_add(existing, "~t", s.id);
            if (row && row_local_pid(h, row, &it->pid))
                it->state = PREP_RUNNING;
            else if (first != m) {
                it->state = PREP_DUP;
                it->dup_of = first;
            } else {
                it->state = PREP_SPAWN;
            }
        }
        m++;
    }
    b->m = m;
    free(table);
    return 0;
}

/* Steps 2 and 3 of a big batch: the same results in the same order as
 * start_one for each child. */
static void batch_run(hub *h, ph_ctx *ctx, batch *b, const start_opts *o, start_result *r)
{
    prep *items = b->items;
    uint32_t m = b->m;
    /* 2. On both threads: start them, build rows and records. */
    prep_job mine = {items, 0,           m / 2,        b->keys.buff,
                     ctx,   o->metadata, h->self_node, term_trust_current()};
    prep_job theirs = mine;
    theirs.from = m / 2;
    theirs.to = m;
    int helped = helper_submit(&theirs) == 0;
    prepare_range(&mine);
    if (helped)
        helper_wait();
    else
        prepare_range(&theirs);
    /* 3. On the hub's thread, in order: tables, hooks, sync, result. */
    for (uint32_t i = 0; i < m; i++) {
        prep *it = &items[i];
        if (i + PREFETCH_AHEAD < m && items[i + PREFETCH_AHEAD].state == PREP_STARTED) {
            registry_prefetch(h->reg, items[i + PREFETCH_AHEAD].row->hash);
            children_prefetch(h, items[i + PREFETCH_AHEAD].pid);
        }
        spec_info s;
        ph_term id =
            it->state == PREP_BAD_SPEC || parse_spec(it->spec, &s) != 0 ? (ph_term){NULL, 0} : s.id;
        switch (it->state) {
        case PREP_BAD_SPEC:
            note_bad_spec(h, r, it->spec);
            break;
        case PREP_RUNNING:
            note_already_started(h, r, id, it->pid);
            break;
        case PREP_DUP: {
            /* as if started one after the other: the first one's fate */
            const prep *first = &items[it->dup_of];
            if (first->state == PREP_STARTED || first->state == PREP_RUNNING)
                note_already_started(h, r, id, first->pid);
            else if (first->state == PREP_FAILED && first->reason)
                note_failed(h, o, r, id, ph_buf_term(first->reason));
            else
                elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            break;
        }
        case PREP_FAILED:
            if (it->reason)
                note_failed(h, o, r, id, ph_buf_term(it->reason));
            else
                elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            break;
        case PREP_SPAWN: /* the helper could not even start: do it here */
            start_one(h, ctx, it->spec, o, r);
            break;
        case PREP_STARTED:
            if (registry_insert_row(h->reg, it->row) && child_insert(h, it->rec) == 0) {
                it->rec = NULL;
                note_started(h, ctx, o, r, it->row, id, it->pid);
                it->row = NULL;
                break;
            }
            /* no room in the tables */
            /* fall through */
        case PREP_NOMEM:
            LOG_E("hub", "out of memory registering a child");
            ph_exit(ctx, it->pid, (ph_term){"\x77\x04kill", 0});
            elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            if (it->row && registry_get(h->reg, it->row->data, it->row->key_len) == it->row)
                registry_delete(h->reg, it->row); /* inserted: take it out again */
            else
                registry_row_free(it->row);
            free(it->rec);
            break;
        }
    }
}

static int start_batch(hub *h, ph_ctx *ctx, ph_term list, const start_opts *o, ph_buf *result_out)
{
    list_walk it;
    ph_term spec;
    ph_buf scratch, key;
    start_result r;
    int n = list_begin(&it, list);
    if (n < 0) {
        ph_build(result_out, "{error, {bad_children, ~t}}", list);
        return -1;
    }
    if (n == 0) {
        ph_build(result_out, "{error, no_children}");
        return -1;
    }
    if (ph_buf_init(&scratch) != 0 || ph_buf_init(&key) != 0)
        return -1;
    /* Big batches start on two threads (see batch_run); C alter hooks must
     * see each child first, one at a time. */
    batch big;
    int parallel = n >= PARALLEL_MIN && !hooks_has(h->hooks, "child_data_alter_hook");
    if (parallel) {
        elist existing;
        elist_init(&existing);
        parallel = batch_prepare(h, list, (uint32_t)n, o->check_existing, &existing, &big) == 0;
        if (parallel && existing.n > 0) {
            ph_build(result_out, "{error, {already_started, ~t}}", elist_term(&existing, &scratch));
            elist_free(&existing);
            batch_free(&big);
            ph_buf_free(&scratch);
            ph_buf_free(&key);
            return -1;
        }
        elist_free(&existing);
    }
    if (o->check_existing && !parallel) {
        elist existing;
        elist_init(&existing);
        while (list_next(&it, &spec) > 0) {
            spec_info s;
            ph_buf_reset(&key);
            if (parse_spec(spec, &s) == 0 && registry_key(s.id, &key) == 0 &&
                registry_get(h->reg, key.buff, (uint32_t)key.index))
                elist_add(&existing, "~t", s.id);
        }
        if (existing.n > 0) {
            ph_build(result_out, "{error, {already_started, ~t}}", elist_term(&existing, &scratch));
            elist_free(&existing);
            ph_buf_free(&scratch);
            ph_buf_free(&key);
            return -1;
        }
        elist_free(&existing);
        list_begin(&it, list);
    }
    result_init(&r);
    /* One rehash and one buffer for the whole batch, not one per doubling. */
    if (registry_reserve(h->reg, (uint32_t)n) != 0 || children_reserve(h, (uint32_t)n) != 0 ||
        ph_buf_reserve(&r.started.b, (size_t)n * 48u) != 0)
        LOG_W("hub", "%s: out of memory sizing for %d children", h->cfg.hub_id, n);
    ((start_opts *)o)->want_post = hooks_has(h->hooks, "post_children_start_hook") ||
                                   hooks_has(h->hooks, "process_startups_hook");
    if (hooks_has(h->hooks, "pre_children_start_hook")) {
        elist data;
        elist_init(&data);
        while (list_next(&it, &spec) > 0)
            add_child_data(h, &data, h->self_node, spec, o->metadata);
        ph_buf d;
        ph_buf_init(&d);
        ph_build(&d, "#{children => ~t, start_opts => ~t}", elist_term(&data, &scratch), o->all);
        fire(h, ctx, "pre_children_start_hook", ph_buf_term(&d));
        ph_buf_free(&d);
        elist_free(&data);
        list_begin(&it, list);
    }
    if (parallel) {
        batch_run(h, ctx, &big, o, &r);
        batch_free(&big);
        goto started;
    }
    while (list_next(&it, &spec) > 0) {
        ph_term effective = spec;
        ph_buf altered;
        int have_altered = 0;
        if (hooks_has(h->hooks, "child_data_alter_hook")) {
            /* C handlers may rewrite the child data before it starts. */
            elist d;
            if (elist_init(&d) == 0 &&
                add_child_data(h, &d, h->self_node, spec, o->metadata) == 0 &&
                ph_buf_init(&altered) == 0) {
                have_altered = 1;
                ph_term data = {d.b.buff, 0};
                hooks_dispatch(h->hooks, ctx, "child_data_alter_hook", &data, &altered);
                ph_term new_spec;
                if (data.buf == altered.buff && ph_map_get_atom(data, "child_spec", &new_spec) == 1)
                    effective = new_spec;
            }
            elist_free(&d);
        }
        start_one(h, ctx, effective, o, &r);
        if (have_altered)
            ph_buf_free(&altered);
    }
started:
    if (o->want_post) {
        fire(h, ctx, "post_children_start_hook", elist_term(&r.post, &scratch));
        if (r.startups.n)
            fire(h, ctx, "process_startups_hook", elist_term(&r.startups, &scratch));
    }
    int rollback = o->rollback && r.errors.n > 0;
    if (rollback) {
        /* Stop every child of this call that started (the keys are ids). */
        ph_buf keys;
        ph_buf_init(&keys);
        elist_to(&keys, &r.started_keys);
        stop_batch(h, ctx, ph_buf_term(&keys), NULL, STOP_ANYWHERE);
        ph_buf_free(&keys);
    }
    encode_start_result(result_out, &r.started, &r.errors, rollback);
    result_free(&r);
    ph_buf_free(&scratch);
    ph_buf_free(&key);
    return r.errors.n ? 1 : 0;
}

/* --- stopping children -------------------------------------------------- */

static void stop_wait_done(stop_wait *w)
{
    if (w->outstanding > 0 || !w->from)
        return;
    ph_buf b, s, e;
    ph_buf_init(&b);
    ph_buf_init(&s);
    ph_buf_init(&e);
    elist_to(&s, &w->stopped);
    elist_to(&e, &w->errors);
    ph_build(&b, "{ok, #{status => ~a, stopped => ~t, errors => ~t}}", w->errors.n ? "error" : "ok",
             ph_buf_term(&s), ph_buf_term(&e));
    ph_reply(w->from, ph_buf_term(&b));
    ph_buf_free(&b);
    ph_buf_free(&s);
    ph_buf_free(&e);
    elist_free(&w->stopped);
    elist_free(&w->errors);
    free(w);
}

static void begin_stop(hub *h, ph_ctx *ctx, child *c, stop_wait *w)
{
    (void)h;
    c->stopping = 1;
    c->wait = w;
    if (w)
        w->outstanding++;
    ph_buf reason, tmo;
    ph_buf_init(&reason);
    ph_build(&reason, c->shutdown_ms == SHUTDOWN_BRUTAL ? "kill" : "shutdown");
    ph_exit(ctx, c->pid, ph_buf_term(&reason));
    ph_buf_free(&reason);
    if (c->shutdown_ms >= 0) {
        /* Killed if it has not stopped by then (OTP's shutdown timeout). */
        if (ph_buf_init(&tmo) == 0) {
            send_self_after(ctx, (unsigned)c->shutdown_ms, "{'$hub_shutdown_timeout', ~t}",
                            pid_term(c->pid, &tmo));
            ph_buf_free(&tmo);
        }
    }
}

/* {'$ph_hub', stop, Node, [Cid]} to a member's hub. */
static void send_stop(hub *h, ph_ctx *ctx, uint32_t node, ph_term cids)
{
    member *m = membership_find(&h->members, node);
    ph_buf msg;
    if (!m || ph_buf_init(&msg) != 0)
        return;
    if (ph_build(&msg, "{'$ph_hub', stop, ~a, ~t}", atom_text(h->self_node), cids) == 0)
        ph_send(ctx, m->hub, ph_buf_term(&msg));
    ph_buf_free(&msg);
}

/* Drops a row this node does not run: the nodes that run its copies were
 * told to stop them. */
static void forget_row(hub *h, ph_ctx *ctx, reg_row *row)
{
    ph_buf key;
    if (ph_buf_init(&key) != 0)
        return;
    ph_buf_append_term(&key, reg_row_key(row));
    for (uint16_t i = 0; i < row->n_nodes; i++)
        fire_remove(h, ctx, ph_buf_term(&key), row->nodes[i].node);
    registry_delete(h->reg, row);
    ph_buf_free(&key);
}

/* STOP_ANYWHERE (stop_children): a copy here stops here; an id that has
 * copies elsewhere, or none (an orphan waiting for its owner), is also sent
 * to every member (STOP_REMOTE), which stops its copy or forgets the row.
 * Telling every member, not only the nodes the row names, ends duplicates
 * this node does not know of, and leaves no orphan to restart when a node
 * dies before it stops its copy. Every scope but STOP_HERE remembers the
 * id (a hand-off of it still in flight is refused) and passes the stop on
 * to where this node is moving the child. */
static void stop_batch(hub *h, ph_ctx *ctx, ph_term list, stop_wait *w, enum stop_scope scope)
{
    ph_iter it;
    ph_term cid;
    ph_buf key, one;
    elist tell;
    const char *node = atom_text(h->self_node);
    if (ph_buf_init(&key) != 0)
        return;
    if (ph_buf_init(&one) != 0 || elist_init(&tell) != 0) {
        ph_buf_free(&key);
        ph_buf_free(&one);
        return;
    }
    ph_iter_begin(&it, list);
    while (ph_iter_next(&it, &cid) > 0) {
        ph_buf_reset(&key);
        if (registry_key(cid, &key) != 0) {
            if (w)
                elist_add(&w->errors, "{~t, ~a, not_found}", cid, node);
            continue;
        }
        uint32_t key_len = (uint32_t)key.index;
        reg_row *row = registry_get(h->reg, key.buff, key_len);
        child *c = NULL;
        for (uint16_t i = 0; row && i < row->n_nodes && !c; i++)
            if (row->nodes[i].node == h->self_node)
                c = child_find(h, row->nodes[i].pid, NULL);
        if (scope != STOP_HERE) {
            tomb_add(h, key.buff, key_len);
            uint32_t target = moving_target(h, key.buff, key_len);
            if (target != ATOM_NONE) {
                /* sent after the move's start: it reaches the new copy */
                ph_buf_reset(&one);
                if (ph_build(&one, "[~t]", cid) == 0)
                    send_stop(h, ctx, target, ph_buf_term(&one));
            }
        }
        int elsewhere = row && (row->n_nodes == 0 || row->n_nodes > (c ? 1 : 0));
        if (scope == STOP_ANYWHERE && elsewhere) {
            elist_add(&tell, "~t", cid);
            if (w && row->n_nodes == 0)
                elist_add(&w->stopped, "{~t, []}", cid);
            for (uint16_t i = 0; w && i < row->n_nodes; i++)
                if (row->nodes[i].node != h->self_node)
                    elist_add(&w->stopped, "{~t, [~a]}", cid, atom_text(row->nodes[i].node));
        }
        if (c) {
            if (w)
                elist_add(&w->stopped, "{~t, [~a]}", cid, node);
            unregister_local(h, ctx, key.buff, (uint16_t)key_len);
            if (!c->stopping)
                begin_stop(h, ctx, c, w);
        } else if (!row || scope == STOP_HERE) {
            if (w)
                elist_add(&w->errors, "{~t, ~a, not_found}", cid, node);
            continue;
        }
        if (scope != STOP_HERE && (row = registry_get(h->reg, key.buff, key_len)) != NULL)
            forget_row(h, ctx, row);
    }
    if (tell.n) {
        ph_buf l;
        if (ph_buf_init(&l) == 0) {
            if (elist_to(&l, &tell) == 0)
                for (int i = 0; i < h->members.n; i++)
                    send_stop(h, ctx, h->members.members[i].node, ph_buf_term(&l));
            ph_buf_free(&l);
        }
    }
    elist_free(&tell);
    ph_buf_free(&one);
    ph_buf_free(&key);
}

/* --- exits of children (supervision) ----------------------------------- */

static int is_shutdown_reason(ph_term reason)
{
    return ph_match(reason, "normal") == 1 || ph_match(reason, "shutdown") == 1 ||
           ph_match(reason, "{shutdown, _}") == 1;
}

/* Restart intensity: 0 if another restart is allowed now. */
static int intensity_exceeded(hub *h)
{
    if (h->cfg.dsup_max_restarts == 0)
        return 1;
    uint64_t now = monotonic_ms();
    uint64_t window = (uint64_t)h->cfg.dsup_max_seconds * 1000u;
    uint32_t max = h->cfg.dsup_max_restarts;
    if (h->restart_n == max && now - h->restarts[h->restart_next] <= window)
        return 1;
    h->restarts[h->restart_next] = now;
    h->restart_next = (h->restart_next + 1) % max;
    if (h->restart_n < max)
        h->restart_n++;
    return 0;
}

static void child_exited(hub *h, ph_ctx *ctx, child *c, ph_term reason)
{
    if (c->stopping) {
        if (c->wait) {
            c->wait->outstanding--;
            stop_wait_done(c->wait);
        }
        child_remove(h, c);
        return;
    }
    reg_row *row = registry_get(h->reg, c->key, c->key_len);
    int restart = row && (c->restart == RESTART_PERMANENT ||
                          (c->restart == RESTART_TRANSIENT && !is_shutdown_reason(reason)));
    char text[200];
    if (restart && intensity_exceeded(h)) {
        LOG_E("hub", "%s: restart intensity exceeded (%u restarts in %u s): %s not restarted",
              h->cfg.hub_id, h->cfg.dsup_max_restarts, h->cfg.dsup_max_seconds,
              ph_term_format(reg_row_key(row), text, sizeof text));
        restart = 0;
    }
    if (restart) {
        spec_info s;
        ph_buf why;
        ph_pid pid;
        ph_buf_init(&why);
        if (parse_spec(reg_row_spec(row), &s) == 0 && spawn_child(ctx, &s, &pid, &why) == 0) {
            child *nc = child_add(h, pid, c->key, c->key_len, &s);
            registry_set_node(h->reg, row, h->self_node, pid);
            child_remove(h, c);
            if (nc) {
                fire_insert(h, ctx, row);
                note_registered(h, row, pid);
                if (hooks_has(h->hooks, "child_process_pid_update_hook")) {
                    ph_buf d;
                    ph_buf_init(&d);
                    ph_build(&d, "{~a, ~t}", atom_text(h->self_node), reg_row_key(row));
                    fire(h, ctx, "child_process_pid_update_hook", ph_buf_term(&d));
                    ph_buf_free(&d);
                }
            }
            ph_buf_free(&why);
            return;
        }
        LOG_E("hub", "%s: restart of %s failed: %s", h->cfg.hub_id,
              ph_term_format(reg_row_key(row), text, 100),
              ph_term_format(ph_buf_term(&why), text + 100, 100));
        ph_buf_free(&why);
    }
    unregister_local(h, ctx, c->key, c->key_len);
    child_remove(h, c);
}

/* --- queries ------------------------------------------------------------- */

/* The queries answer for running children only: an orphan (its copies
 * ran on members that left, its owner is restarting it) is not listed
 * until it runs again. */

/* The registry row of a running child id, or NULL. */
static reg_row *row_of(hub *h, ph_term cid)
{
    ph_buf *key = &h->key_scratch;
    key->index = 0;
    if (registry_key(cid, key) != 0)
        return NULL;
    reg_row *row = registry_get(h->reg, key->buff, (uint32_t)key->index);
    return row && row->n_nodes ? row : NULL;
}

static ph_result reply_lookup(hub *h, ph_term cid, int with_metadata, ph_buf *reply)
{
    reg_row *row = row_of(h, cid);
    if (!row)
        return ph_build(reply, "nil") == 0 ? PH_REPLY : PH_NOREPLY;
    ei_x_encode_tuple_header(reply, with_metadata ? 3 : 2);
    ph_buf_append_term(reply, reg_row_spec(row));
    registry_encode_nodes(reply, row);
    if (with_metadata)
        ph_buf_append_term(reply, reg_row_meta(row));
    return PH_REPLY;
}

static ph_result reply_pids(hub *h, ph_term cid, int first_only, ph_buf *reply)
{
    reg_row *row = row_of(h, cid);
    if (first_only) {
        if (!row || !row->n_nodes)
            ph_build(reply, "nil");
        else
            ph_encode_pid(reply, row->nodes[0].pid);
        return PH_REPLY;
    }
    for (uint16_t i = 0; row && i < row->n_nodes; i++) {
        ei_x_encode_list_header(reply, 1);
        ph_encode_pid(reply, row->nodes[i].pid);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

/* Appends one list cell [{Cid, PidOrNodePids} | ...] for row. */
static void append_cid_cell(ph_buf *reply, const reg_row *row, const ph_pid *local_pid)
{
    ph_buf_reserve(reply, 128);
    ei_x_encode_list_header(reply, 1);
    ei_x_encode_tuple_header(reply, 2);
    ph_buf_append_term(reply, reg_row_key(row));
    if (local_pid)
        ph_encode_pid(reply, *local_pid);
    else
        registry_encode_nodes(reply, row);
}

static ph_result reply_process_list(hub *h, int local, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (local ? !row_local_pid(h, row, &pid) : !row->n_nodes)
            continue;
        append_cid_cell(reply, row, local ? &pid : NULL);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

/* Rows that name a running copy (orphans aside). */
static uint32_t running_count(hub *h)
{
    uint32_t i = 0, running = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &i)) != NULL)
        running += row->n_nodes != 0;
    return running;
}

static ph_result reply_dump(hub *h, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ei_x_encode_map_header(reply, running_count(h));
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (!row->n_nodes)
            continue;
        ph_buf_reserve(reply, 128);
        ph_buf_append_term(reply, reg_row_key(row));
        ei_x_encode_tuple_header(reply, 3);
        ph_buf_append_term(reply, reg_row_spec(row));
        registry_encode_nodes(reply, row);
        ph_buf_append_term(reply, reg_row_meta(row));
    }
    return PH_REPLY;
}

static ph_result reply_tag_query(hub *h, ph_term tag, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_term v;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (!row->n_nodes || ph_map_get_atom(reg_row_meta(row), "tag", &v) != 1 ||
            !ph_term_equal(v, tag))
            continue;
        append_cid_cell(reply, row, NULL);
    }
    ei_x_encode_empty_list(reply);
    return PH_REPLY;
}

static void encode_which_children(hub *h, ph_buf *reply)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    ei_x_encode_tuple_header(reply, 2);
    ei_x_encode_atom(reply, atom_text(h->self_node));
    while ((row = registry_next(h->reg, &i)) != NULL) {
        spec_info s;
        if (!row_local_pid(h, row, &pid) || parse_spec(reg_row_spec(row), &s) != 0)
            continue;
        ei_x_encode_list_header(reply, 1);
        ei_x_encode_tuple_header(reply, 4);
        ph_buf_append_term(reply, reg_row_key(row));
        ph_encode_pid(reply, pid);
        ei_x_encode_atom(reply, "worker");
        ph_build(reply, "[~a]", s.module);
    }
    ei_x_encode_empty_list(reply);
}

static int has_option(ph_term opts, const char *name)
{
    ph_iter it;
    ph_term e;
    if (ph_iter_begin(&it, opts) < 0)
        return 0;
    char a[PH_ATOM_BUF];
    while (ph_iter_next(&it, &e) > 0)
        if (ph_match(e, "~a", a) == 1 && strcmp(a, name) == 0)
            return 1;
    return 0;
}

/* --- membership (docs/protocol.md, "Between hub nodes") ---------------- */

/* {'$ph_hub', Kind, HubPid, [MemberNode]} to the hub on node. */
static void send_hub_message(hub *h, ph_ctx *ctx, uint32_t node, const char *kind)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    ph_buf_reserve(&b, 64u + 64u * (uint32_t)h->members.n);
    ei_x_encode_tuple_header(&b, 4);
    ei_x_encode_atom(&b, "$ph_hub");
    ei_x_encode_atom(&b, kind);
    ph_encode_pid(&b, ph_self(ctx));
    for (int i = 0; i < h->members.n; i++) {
        ei_x_encode_list_header(&b, 1);
        ei_x_encode_atom(&b, atom_text(h->members.members[i].node));
    }
    ei_x_encode_empty_list(&b);
    ph_send_named(ctx, h->cfg.hub_id, atom_text(node), ph_buf_term(&b));
    ph_buf_free(&b);
}

static void fire_node_hook(hub *h, ph_ctx *ctx, const char *key, uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "~a", atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

/* {Cid, Spec, Pid, Meta} of every child this node runs. */
static void collect_local_rows(hub *h, elist *l)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    while ((row = registry_next(h->reg, &i)) != NULL)
        if (row_local_pid(h, row, &pid))
            append_row_entry(l, row, pid);
}

/* The rows this node runs, to a member that just joined (it learns the
 * whole registry from all members this way). */
static void send_local_registry(hub *h, ph_ctx *ctx, uint32_t node)
{
    elist l;
    if (elist_init(&l) != 0)
        return;
    collect_local_rows(h, &l);
    if (l.n)
        send_sync(h, ctx, node, "registered", &l);
    elist_free(&l);
}

/* Periodic repair (PubSub sync_interval): every node sends the rows it
 * runs to every member; a receiver adds what it missed ("append") and
 * drops what it believes the sender runs but the sender no longer does
 * ("detach"). */
static void send_repair(hub *h, ph_ctx *ctx)
{
    elist l;
    if (h->members.n > 0 && elist_init(&l) == 0) {
        collect_local_rows(h, &l);
        send_sync(h, ctx, 0, "repair", &l);
        elist_free(&l);
    }
    send_self_after(ctx, h->cfg.sync_interval, "{'$ph_hub', repair_tick}");
}

static void apply_registered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list);
static void apply_unregistered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list);

/* Every element is {Cid, Spec, Pid, Meta} with a valid id and a pid of node. */
static int rows_well_formed(uint32_t node, ph_term list)
{
    list_walk w;
    ph_term e, cid, p;
    ph_pid pid;
    int type;
    if (list_begin(&w, list) < 0)
        return 0;
    while (list_next(&w, &e) > 0) {
        if (ph_match(e, "{~t, _, ~t, _}", &cid, &p) != 1 || ph_decode_pid(p, &pid) != 0 ||
            pid.node != node)
            return 0;
        type = ph_term_type(cid, NULL);
        if (type != ERL_BINARY_EXT && type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT &&
            type != ERL_ATOM_UTF8_EXT && type != ERL_SMALL_ATOM_UTF8_EXT)
            return 0;
    }
    return 1;
}

static void apply_repair(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    /* A repair detaches every row it does not name: only a whole, sound
     * list may do that. */
    if (!rows_well_formed(node, list)) {
        LOG_W("hub", "%s: ignored a malformed repair message for %s", h->cfg.hub_id,
              atom_text(node));
        return;
    }
    apply_registered(h, ctx, node, list); /* append */
    /* detach: rows on node that the list does not name */
    registry *seen = registry_new();
    list_walk w;
    ph_term e, cid;
    ph_buf key;
    if (!seen || ph_buf_init(&key) != 0) {
        registry_free(seen);
        return;
    }
    list_begin(&w, list);
    while (list_next(&w, &e) > 0) {
        ph_buf_reset(&key);
        if (ph_match(e, "{~t, _, _, _}", &cid) == 1 && registry_key(cid, &key) == 0)
            registry_put(seen, key.buff, (uint32_t)key.index, cid, cid, NULL, 0);
    }
    elist stale;
    elist_init(&stale);
    uint32_t it = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &it)) != NULL) {
        int on_node = 0;
        for (uint16_t j = 0; j < row->n_nodes; j++)
            on_node |= row->nodes[j].node == node;
        if (on_node && !registry_get(seen, row->data, row->key_len))
            elist_add(&stale, "~t", reg_row_key(row));
    }
    if (stale.n) {
        ph_buf l;
        ph_buf_init(&l);
        elist_to(&l, &stale);
        LOG_I("hub", "%s: repair with %s detached %d stale row(s)", h->cfg.hub_id, atom_text(node),
              stale.n);
        apply_unregistered(h, ctx, node, ph_buf_term(&l));
        ph_buf_free(&l);
    }
    elist_free(&stale);
    ph_buf_free(&key);
    registry_free(seen);
}

/* One row of a member's registered message, {Cid, Spec, Pid, Meta}, with
 * its registry key and hash. */
typedef struct published_row {
    ph_term spec, meta;
    ph_pid pid;
    ph_buf key;
    uint32_t hash;
} published_row;

/* The next well-formed row of node's list in x; 0 at the end. */
static int next_published(list_walk *w, uint32_t node, published_row *x)
{
    ph_term e;
    while (list_next(w, &e) > 0) {
        int index = e.index, arity;
        if (ei_decode_tuple_header(e.buf, &index, &arity) != 0 || arity != 4)
            continue;
        ph_term cid = {e.buf, index};
        if (term_skip_valid(e.buf, &index) != 0)
            continue;
        x->spec = (ph_term){e.buf, index};
        if (term_skip_valid(e.buf, &index) != 0)
            continue;
        ph_term p = {e.buf, index};
        if (term_skip_valid(e.buf, &index) != 0)
            continue;
        x->meta = (ph_term){e.buf, index};
        x->key.index = 0;
        if (ph_decode_pid(p, &x->pid) != 0 || x->pid.node != node ||
            registry_key(cid, &x->key) != 0)
            continue;
        x->hash = registry_hash(x->key.buff, (uint32_t)x->key.index);
        return 1;
    }
    return 0;
}

static void apply_published(hub *h, ph_ctx *ctx, uint32_t node, const published_row *x)
{
    reg_row *row = registry_get_hashed(h->reg, x->key.buff, (uint32_t)x->key.index, x->hash);
    ph_pid mine;
    if (row && row_local_pid(h, row, &mine))
        schedule_reconcile(h, ctx, RECONCILE_MS);       /* a second copy: one of them goes */
    tomb_clear(h, x->key.buff, (uint32_t)x->key.index); /* started again since its stop */
    if (row)
        registry_set_node(h->reg, row, node, x->pid);
    else {
        reg_node_pid np = {node, x->pid};
        row = registry_put(h->reg, x->key.buff, (uint32_t)x->key.index, x->spec, x->meta, &np, 1);
    }
    if (row)
        fire_insert(h, ctx, row);
}

/* A member's rows as it published them. Each row is read one ahead of the
 * one applied, so that its registry slot loads meanwhile. */
static void apply_registered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    list_walk w;
    published_row rows[2];
    int n = list_begin(&w, list);
    if (node == h->self_node || n < 0)
        return;
    if (ph_buf_init(&rows[0].key) != 0)
        return;
    if (ph_buf_init(&rows[1].key) != 0) {
        ph_buf_free(&rows[0].key);
        return;
    }
    if (registry_reserve(h->reg, (uint32_t)n) != 0)
        LOG_W("hub", "%s: out of memory sizing the registry for %d rows", h->cfg.hub_id, n);
    int cur = 0, have = next_published(&w, node, &rows[cur]);
    if (have)
        registry_prefetch(h->reg, rows[cur].hash);
    while (have) {
        int next = cur ^ 1;
        int have_next = next_published(&w, node, &rows[next]);
        if (have_next)
            registry_prefetch(h->reg, rows[next].hash);
        apply_published(h, ctx, node, &rows[cur]);
        cur = next;
        have = have_next;
    }
    ph_buf_free(&rows[0].key);
    ph_buf_free(&rows[1].key);
}

static void apply_unregistered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    list_walk w;
    ph_term cid;
    ph_buf key;
    if (node == h->self_node || list_begin(&w, list) < 0 || ph_buf_init(&key) != 0)
        return;
    while (list_next(&w, &cid) > 0) {
        ph_buf_reset(&key);
        reg_row *row = registry_key(cid, &key) == 0
                           ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                           : NULL;
        if (!row)
            continue;
        registry_remove_node(h->reg, row, node);
        fire_remove(h, ctx, cid, node);
    }
    ph_buf_free(&key);
}

/* A member left: its children leave every row (they ran there). With
 * keep_orphans a row left without a node stays, as an orphan for its new
 * owner to restart; without, it goes. */
static void drop_node_rows(hub *h, ph_ctx *ctx, uint32_t node, int keep_orphans)
{
    uint32_t i = 0;
    reg_row *row;
    ph_buf key;
    if (ph_buf_init(&key) != 0)
        return;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        int hosted = 0;
        for (uint16_t j = 0; j < row->n_nodes; j++)
            hosted |= row->nodes[j].node == node;
        if (!hosted)
            continue;
        ph_buf_reset(&key);
        ph_buf_append_term(&key, reg_row_key(row));
        if (keep_orphans)
            registry_orphan_node(h->reg, row, node);
        else
            registry_remove_node(h->reg, row, node); /* may free row; iteration goes on */
        fire_remove(h, ctx, ph_buf_term(&key), node);
    }
    ph_buf_free(&key);
}

static void failover(hub *h, ph_ctx *ctx, uint32_t gone);
static void hand_off_orphans(hub *h, ph_ctx *ctx, uint32_t gone);
static void moves_drop_node(hub *h, uint32_t node);
static void reconcile(hub *h, ph_ctx *ctx);

/* pre/post_nodes_redistribution_hook: {nodeup | nodedown, Node} */
static void fire_redistribution_hook(hub *h, ph_ctx *ctx, const char *key, const char *event,
                                     uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~a, ~a}", event, atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

static void leave_confirmed(hub *h, uint32_t node);

static void member_left(hub *h, ph_ctx *ctx, member *e, const char *why)
{
    uint32_t node = e->node;
    ph_demonitor(ctx, &e->monitor);
    if (h->leaving) {
        /* We are on our way out: nothing of its comes to us. */
        LOG_I("hub", "%s: %s left the hub cluster (%s)", h->cfg.hub_id, atom_text(node), why);
        membership_remove(&h->members, e);
        ring_remove_node(h->ring, atom_text(node));
        pending_node_gone(h, ctx, node);
        hand_off_orphans(h, ctx, node);
        leave_confirmed(h, node);
        return;
    }
    LOG_I("hub", "%s: %s left the hub cluster (%s)", h->cfg.hub_id, atom_text(node), why);
    fire_node_hook(h, ctx, "pre_cluster_leave_hook", node);
    membership_remove(&h->members, e);
    ring_remove_node(h->ring, atom_text(node));
    pending_node_gone(h, ctx, node);
    moves_drop_node(h, node);
    fire_redistribution_hook(h, ctx, "pre_nodes_redistribution_hook", "nodedown", node);
    failover(h, ctx, node);
    fire_redistribution_hook(h, ctx, "post_nodes_redistribution_hook", "nodedown", node);
    fire_node_hook(h, ctx, "post_cluster_leave_hook", node);
}

static void greet_seen_nodes(hub *h, ph_ctx *ctx, ph_term nodes);

/* hello / welcome from another hub: it joins (or is known already), and
 * the members it knows are greeted in turn. */
static void handle_hello(hub *h, ph_ctx *ctx, ph_pid from, ph_term their_members, int reply)
{
    if (from.node == h->self_node)
        return;
    member *e = membership_find(&h->members, from.node);
    if (e && !ph_pid_equal(e->hub, from)) {
        member_left(h, ctx, e, "its hub restarted"); /* a new incarnation */
        e = NULL;
    }
    int joined = 0;
    if (!e) {
        ph_ref mon;
        if (ph_monitor(ctx, from, &mon) != 0 ||
            membership_add(&h->members, from.node, from, &mon) != 0) {
            LOG_E("hub", "%s: out of memory adding a member", h->cfg.hub_id);
            return;
        }
        LOG_I("hub", "%s: %s joined the hub cluster", h->cfg.hub_id, atom_text(from.node));
        fire_node_hook(h, ctx, "pre_cluster_join_hook", from.node);
        ring_add_node(h->ring, atom_text(from.node));
        joined = 1;
    }
    /* welcome first: the newcomer accepts our rows only from a member */
    if (reply)
        send_hub_message(h, ctx, from.node, "welcome");
    if (joined) {
        send_local_registry(h, ctx, from.node);
        fire_redistribution_hook(h, ctx, "pre_nodes_redistribution_hook", "nodeup", from.node);
        reconcile(h, ctx);
        fire_redistribution_hook(h, ctx, "post_nodes_redistribution_hook", "nodeup", from.node);
        fire_node_hook(h, ctx, "post_cluster_join_hook", from.node);
    }
    greet_seen_nodes(h, ctx, their_members); /* the members it knows that we do not */
}

typedef struct node_set {
    uint32_t *nodes;
    int n, cap;
} node_set;

static void add_connected(uint32_t node, void *arg)
{
    node_set *s = arg;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        uint32_t *n = realloc(s->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return;
        s->nodes = n;
        s->cap = cap;
    }
    s->nodes[s->n++] = node;
}

/* Asks every connected node that is not a member which hidden nodes it
 * sees (rex: erlang:nodes(hidden)): BEAM nodes that talk to several
 * phnodes introduce them to each other. The answers come as
 * {discover_ref, [Node]}; phnodes and other non-BEAM nodes ignore it. */
static void ask_connected_nodes(hub *h, ph_ctx *ctx)
{
    node_set s = {0};
    ph_buf q;
    remote_for_each_node(add_connected, &s);
    h->discover_ref = ph_make_ref();
    if (ph_buf_init(&q) == 0) {
        int ok = ei_x_encode_tuple_header(&q, 3) == 0 && ei_x_encode_atom(&q, "$gen_call") == 0 &&
                 ei_x_encode_tuple_header(&q, 2) == 0 && ph_encode_pid(&q, ph_self(ctx)) == 0 &&
                 ph_encode_ref(&q, &h->discover_ref) == 0 &&
                 ph_build(&q, "{call, erlang, nodes, [hidden], user}") == 0;
        for (int i = 0; ok && i < s.n; i++)
            if (s.nodes[i] != h->self_node && !membership_find(&h->members, s.nodes[i]))
                ph_send_named(ctx, "rex", atom_text(s.nodes[i]), ph_buf_term(&q));
        ph_buf_free(&q);
    }
    free(s.nodes);
}

/* Greets the nodes of a list that are not members yet: the member list of
 * a hub that greeted us, or the hidden nodes a BEAM node sees (those that
 * run no hub of ours drop the hello). */
static void greet_seen_nodes(hub *h, ph_ctx *ctx, ph_term nodes)
{
    list_walk w;
    ph_term t;
    char name[PH_ATOM_BUF];
    if (list_begin(&w, nodes) < 0)
        return;
    while (list_next(&w, &t) > 0) {
        uint32_t node;
        if (ph_match(t, "~a", name) == 1 && (node = atom_intern(name)) != ATOM_NONE &&
            node != h->self_node && !membership_find(&h->members, node))
            send_hub_message(h, ctx, node, "hello");
    }
}

/* Announces this hub to the seeds and the members (heals a split). */
static void announce(hub *h, ph_ctx *ctx)
{
    list_walk w;
    ph_term t;
    char name[PH_ATOM_BUF];
    list_begin(&w, ph_buf_term(&h->seeds));
    while (list_next(&w, &t) > 0) {
        uint32_t node;
        if (ph_match(t, "~a", name) == 1 && (node = atom_intern(name)) != ATOM_NONE &&
            node != h->self_node)
            send_hub_message(h, ctx, node, "hello");
    }
    for (int i = 0; i < h->members.n; i++)
        send_hub_message(h, ctx, h->members.members[i].node, "hello");
    if (h->cfg.beam_discovery)
        ask_connected_nodes(h, ctx);
    send_self_after(ctx, h->cfg.hubs_discover_interval, "{'$ph_hub', announce}");
}

/* --- placement: starts across the cluster ------------------------------ */

/* Appends the elements of list (a term) to l. */
static void elist_extend(elist *l, ph_term list)
{
    list_walk w;
    ph_term e;
    int index = list.index, n, i = 0;
    /* A proper list as ei writes it (one LIST_EXT, elements, NIL): its
     * elements are one run of bytes, appended at once. (Lists reach here
     * from validated messages or the hub's own encoders.) */
    if (ei_decode_list_header(list.buf, &index, &n) == 0 && n > 0) {
        int first = index;
        while (i < n && term_skip_valid(list.buf, &index) == 0)
            i++;
        if (i == n && (unsigned char)list.buf[index] == ERL_NIL_EXT) {
            if (ei_x_append_buf(&l->b, list.buf + first, index - first) == 0)
                l->n += n;
            return;
        }
    }
    if (list_begin(&w, list) < 0)
        return;
    while (list_next(&w, &e) > 0)
        if (ph_buf_append_term(&l->b, e) == 0)
            l->n++;
}

/* Merges a start result {ok, #{started, errors, ...}} into started/errors. */
static void merge_result(elist *started, elist *errors, ph_term result)
{
    ph_term map, v;
    if (ph_match(result, "{ok, ~t}", &map) != 1)
        return;
    if (ph_map_get_atom(map, "started", &v) == 1)
        elist_extend(started, v);
    if (ph_map_get_atom(map, "errors", &v) == 1)
        elist_extend(errors, v);
}

/* Stops the children of a started list [{Cid, [{Node, Pid}]}] wherever
 * they run (stop_batch forwards to members). */
static void stop_started(hub *h, ph_ctx *ctx, ph_term started)
{
    elist cids;
    list_walk w;
    ph_term e, cid;
    ph_buf l;
    if (elist_init(&cids) != 0)
        return;
    ph_buf_init(&l);
    list_begin(&w, started);
    while (list_next(&w, &e) > 0)
        if (ph_match(e, "{~t, _}", &cid) == 1)
            elist_add(&cids, "~t", cid);
    if (cids.n) {
        elist_to(&l, &cids);
        stop_batch(h, ctx, ph_buf_term(&l), NULL, STOP_ANYWHERE);
    }
    elist_free(&cids);
    ph_buf_free(&l);
}

static void pending_reply(hub *h, ph_ctx *ctx, pending_start *ps)
{
    int rollback = ps->rollback && ps->errors.n > 0;
    if (rollback) {
        ph_buf b;
        ph_buf_init(&b);
        elist_to(&b, &ps->started);
        stop_started(h, ctx, ph_buf_term(&b));
        ph_buf_free(&b);
    }
    /* Built in the reply frame itself: the result can be megabytes. */
    ph_buf out;
    if (ph_buf_init(&out) == 0) {
        if (ps->from && gen_reply_begin(&out, ps->from) == 0 &&
            encode_start_result(&out, &ps->started, &ps->errors, rollback) == 0)
            gen_reply_send(ps->from, out.buff, (uint32_t)out.index);
        ph_buf_free(&out);
    }
    ph_from_free(ps->from);
    ps->from = NULL;
}

static void pending_free(hub *h, pending_start *ps)
{
    for (pending_start **pp = &h->pending; *pp; pp = &(*pp)->next)
        if (*pp == ps) {
            *pp = ps->next;
            break;
        }
    ph_from_free(ps->from);
    elist_free(&ps->started);
    elist_free(&ps->errors);
    free(ps->waiting);
    free(ps);
}

static pending_start *pending_find(hub *h, const ph_ref *id)
{
    for (pending_start *ps = h->pending; ps; ps = ps->next)
        if (ph_ref_equal(&ps->id, id))
            return ps;
    return NULL;
}

/* How long a start rolled back at its timeout keeps stopping what its late
 * owners start (an owner that is still silent after this is not waited for). */
#define LATE_ROLLBACK_MS 60000

/* delta more (or, negative, fewer) answers expected from node. */
static int pending_expect(pending_start *ps, uint32_t node, int delta)
{
    for (int i = 0; i < ps->n_waiting; i++)
        if (ps->waiting[i].node == node) {
            ps->waiting[i].count += delta;
            if (ps->waiting[i].count == 0)
                ps->waiting[i] = ps->waiting[--ps->n_waiting];
            return 0;
        }
    if (ps->n_waiting == ps->cap_waiting) {
        int cap = ps->cap_waiting ? 2 * ps->cap_waiting : 4;
        struct awaited *w = realloc(ps->waiting, (size_t)cap * sizeof *w);
        if (!w)
            return -1;
        ps->waiting = w;
        ps->cap_waiting = cap;
    }
    ps->waiting[ps->n_waiting++] = (struct awaited){node, delta};
    return 0;
}

/* Replies (unless done already) and frees ps once no answer is outstanding. */
static void pending_check(hub *h, ph_ctx *ctx, pending_start *ps)
{
    if (ps->n_waiting == 0) {
        if (!ps->answered)
            pending_reply(h, ctx, ps);
        pending_free(h, ps);
    }
}

/* node answered for ps; replies when all did. */
static void pending_node_done(hub *h, ph_ctx *ctx, pending_start *ps, uint32_t node)
{
    if (pending_expect(ps, node, -1) != 0)
        LOG_E("hub", "%s: out of memory counting start results", h->cfg.hub_id);
    pending_check(h, ctx, ps);
}

/* Every answer still expected fails with reason (node_down, node_receive_timeout). */
static void pending_fail_nodes(pending_start *ps, uint32_t only, const char *reason)
{
    for (int i = 0; i < ps->n_waiting;) {
        struct awaited *a = &ps->waiting[i];
        if (only != ATOM_NONE && a->node != only) {
            i++;
            continue;
        }
        if (a->count > 0)
            elist_add(&ps->errors, "{undefined, ~a, ~a}", atom_text(a->node), reason);
        *a = ps->waiting[--ps->n_waiting];
    }
}

/* A member left while starts waited for it: its part fails now. */
static void pending_node_gone(hub *h, ph_ctx *ctx, uint32_t node)
{
    pending_start *ps = h->pending;
    while (ps) {
        pending_start *next = ps->next; /* ps may be freed below */
        int before = ps->n_waiting;
        pending_fail_nodes(ps, node, "node_down");
        if (ps->n_waiting != before)
            pending_check(h, ctx, ps);
        ps = next;
    }
}

/* A list of child specs split by ring owner: the local part, and one
 * list per remote member that owns some of them. */
typedef struct owner_split {
    elist local;
    elist *remote; /* remote[i] goes to nodes[i] */
    uint32_t *nodes;
    int n;
    elist existing; /* with check: ids already in the registry */
} owner_split;

static void owner_split_free(owner_split *sp)
{
    elist_free(&sp->local);
    elist_free(&sp->existing);
    for (int i = 0; i < sp->n; i++)
        elist_free(&sp->remote[i]);
    free(sp->remote);
    free(sp->nodes);
}

/* The ring names owners by strings; the atoms of the few it returns are
 * remembered by pointer (valid until the ring changes, i.e. this call). */
typedef struct owner_cache {
    const char *name[8];
    uint32_t atom[8];
    int n;
} owner_cache;

static uint32_t owner_atom(owner_cache *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (c->name[i] == name)
            return c->atom[i];
    uint32_t atom = atom_intern(name);
    if (c->n < 8) {
        c->name[c->n] = name;
        c->atom[c->n++] = atom;
    }
    return atom;
}

/* Splits a list of child specs by ring owner in one pass. Children whose
 * owner is not a member (or that do not parse) stay local: the start
 * reports their errors. With check, the ids already registered are
 * collected in existing. 0, or -1 when out of memory. */
static int owner_split_run(hub *h, ph_term list, int check, owner_split *sp)
{
    list_walk w;
    ph_term spec;
    owner_cache cache = {.n = 0};
    ph_buf *key = &h->key_scratch;
    memset(sp, 0, sizeof *sp);
    size_t most = (size_t)h->members.n + 1;
    sp->remote = calloc(most, sizeof *sp->remote);
    sp->nodes = calloc(most, sizeof *sp->nodes);
    if (elist_init(&sp->local) != 0 || elist_init(&sp->existing) != 0 || !sp->remote || !sp->nodes)
        return -1;
    /* Each part gets about its share up front (child specs are some 60
     * bytes): no regrowth, and no walk of the whole list to measure it. */
    int n = list_begin(&w, list);
    size_t share = n > 0 ? (size_t)n * 64u / most * 5 / 4 : 0;
    if (ph_buf_reserve(&sp->local.b, share) != 0)
        return -1;
    while (list_next(&w, &spec) > 0) {
        spec_info s;
        const char *owner = NULL;
        uint32_t node = h->self_node;
        if (parse_spec(spec, &s) == 0) {
            /* the registry's slot loads while the ring hashes the id */
            key->index = 0;
            int keyed = check && registry_key(s.id, key) == 0;
            uint32_t hash = keyed ? registry_hash(key->buff, (uint32_t)key->index) : 0;
            if (keyed)
                registry_prefetch(h->reg, hash);
            if (ring_key_nodes(h->ring, s.id, 1, &owner, 1) == 1)
                node = owner_atom(&cache, owner);
            if (keyed && registry_get_hashed(h->reg, key->buff, (uint32_t)key->index, hash))
                elist_add(&sp->existing, "~t", s.id);
        }
        elist *target = &sp->local;
        if (node != h->self_node && membership_find(&h->members, node)) {
            int i = 0;
            while (i < sp->n && sp->nodes[i] != node)
                i++;
            if (i == sp->n) {
                if (elist_init(&sp->remote[i]) != 0 || ph_buf_reserve(&sp->remote[i].b, share))
                    return -1;
                sp->nodes[sp->n++] = node;
            }
            target = &sp->remote[i];
        }
        if (ph_buf_append_term(&target->b, spec) != 0)
            return -1;
        target->n++;
    }
    return 0;
}

/* {'$ph_hub', start, Id, ReplyTo, Specs, Opts} to the owner's hub, the
 * specs copied once, straight from the split. */
static void send_start(hub *h, ph_ctx *ctx, uint32_t node, ph_term id, ph_pid reply_to,
                       const elist *specs, ph_term opts)
{
    member *m = membership_find(&h->members, node);
    ph_buf msg;
    if (!m || ph_buf_init_versioned(&msg) != 0)
        return;
    if (ph_buf_reserve(&msg, (size_t)specs->b.index + 256u) == 0 &&
        ei_x_encode_tuple_header(&msg, 6) == 0 && ei_x_encode_atom(&msg, "$ph_hub") == 0 &&
        ei_x_encode_atom(&msg, "start") == 0 && ph_buf_append_term(&msg, id) == 0 &&
        ph_encode_pid(&msg, reply_to) == 0 &&
        (specs->n == 0 || ei_x_encode_list_header(&msg, specs->n) == 0) &&
        ei_x_append_buf(&msg, specs->b.buff, specs->b.index) == 0 &&
        ei_x_encode_empty_list(&msg) == 0 && ph_buf_append_term(&msg, opts) == 0)
        send_own(ctx, m->hub, &msg);
    ph_buf_free(&msg);
}

static long ring_option(const ring *r);
static int opts_with(ph_buf *out, ph_term opts, const char *fmt, ...);

/* A start with members: children go to their ring owners. */
static ph_result start_placed(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                              const start_opts *o, const ph_from *from, ph_buf *reply)
{
    owner_split sp;
    pending_start *ps = NULL;
    ph_buf idb;
    if (owner_split_run(h, list, o->check_existing, &sp) != 0 || ph_buf_init(&idb) != 0) {
        ph_build(reply, "{error, enomem}");
        owner_split_free(&sp);
        return PH_REPLY;
    }
    if (sp.existing.n) {
        /* the whole call is refused if any id exists anywhere in the cluster */
        ph_buf l;
        ph_buf_init(&l);
        elist_to(&l, &sp.existing);
        ph_build(reply, "{error, {already_started, ~t}}", ph_buf_term(&l));
        ph_buf_free(&l);
        ph_buf_free(&idb);
        owner_split_free(&sp);
        return PH_REPLY;
    }
    if (o->awaitable) {
        ps = calloc(1, sizeof *ps);
        if (!ps || elist_init(&ps->started) != 0 || elist_init(&ps->errors) != 0) {
            free(ps);
            ph_buf_free(&idb);
            owner_split_free(&sp);
            ph_build(reply, "{error, enomem}");
            return PH_REPLY;
        }
        ps->id = ph_make_ref();
        ps->from = ph_from_copy(from);
        ps->rollback = o->rollback;
        ps->next = h->pending;
        h->pending = ps;
    }
    if (ps)
        ph_encode_ref(&idb, &ps->id);
    else
        ph_build(&idb, "undefined");
    /* Our ring's digest goes along: an owner with the same ring trusts
     * the placement instead of hashing every child again. */
    ph_buf ropts;
    ph_term owner_opts = opts_term;
    if (ph_buf_init(&ropts) == 0 &&
        opts_with(&ropts, opts_term, "{ring, ~i}", ring_option(h->ring)) == 0)
        owner_opts = ph_buf_term(&ropts);
    for (int i = 0; i < sp.n; i++) {
        send_start(h, ctx, sp.nodes[i], ph_buf_term(&idb), ph_self(ctx), &sp.remote[i], owner_opts);
        if (ps)
            pending_expect(ps, sp.nodes[i], 1);
    }
    ph_buf_free(&idb);
    ph_buf_free(&ropts);
    if (sp.local.n) {
        ph_buf result, l;
        ph_buf_init(&result);
        ph_buf_init(&l);
        elist_to(&l, &sp.local);
        start_opts lo = *o;
        lo.check_existing = 0; /* checked above for the whole call */
        lo.rollback = 0;       /* decided when every part has answered */
        start_batch(h, ctx, ph_buf_term(&l), &lo, &result);
        if (ps) {
            /* our own encoding: trusted like a delivered message */
            struct term_trust saved = term_trust_push(result.buff, result.index);
            merge_result(&ps->started, &ps->errors, ph_buf_term(&result));
            term_trust_pop(saved);
        }
        ph_buf_free(&result);
        ph_buf_free(&l);
    }
    if (!ps) {
        ph_build(reply, "{ok, start_initiated}");
    } else if (ps->n_waiting == 0) {
        pending_reply(h, ctx, ps);
        pending_free(h, ps);
    } else {
        ph_buf t;
        if (ph_buf_init(&t) == 0 && ph_encode_ref(&t, &ps->id) == 0)
            send_self_after(ctx, (unsigned)o->timeout, "{'$ph_hub', start_timeout, ~t}",
                            ph_buf_term(&t));
        ph_buf_free(&t);
    }
    owner_split_free(&sp);
    return ps ? PH_NOREPLY : PH_REPLY; /* ps: answered by pending_reply, now or later */
}

/* The ring digest as an option value (a non-negative long). */
static long ring_option(const ring *r)
{
    return (long)(ring_digest(r) >> 1);
}

/* [Opt | Opts], Opt given as a ph_build format and its arguments. */
static int opts_with(ph_buf *out, ph_term opts, const char *fmt, ...)
{
    ph_iter it;
    ph_term opt;
    va_list ap;
    int n = ph_iter_begin(&it, opts);
    if (n < 0 || ei_x_encode_list_header(out, n + 1) != 0)
        return -1;
    va_start(ap, fmt);
    int rc = ph_vbuild(out, fmt, ap);
    va_end(ap);
    if (rc != 0)
        return -1;
    while (ph_iter_next(&it, &opt) > 0)
        if (ph_buf_append_term(out, opt) != 0)
            return -1;
    return ei_x_encode_empty_list(out);
}

/* The children of a start placed here that this node's ring gives to other
 * members (the sender's ring disagreed: membership changed meanwhile) go on
 * to those owners, who answer reply_to themselves; reply_to first learns
 * which nodes will answer too. Returns the specs to start here in out. */
static void forward_misplaced(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                              ph_term opts, ph_term meta, ph_buf *out)
{
    owner_split sp;
    ph_buf fopts, note, data, scratch;
    if (owner_split_run(h, specs, 0, &sp) != 0 || sp.n == 0 || ph_buf_init(&fopts) != 0) {
        ph_buf_append_term(out, specs); /* keep them all: a start reports errors */
        owner_split_free(&sp);
        return;
    }
    ph_buf_init(&note);
    ph_buf_init(&data);
    ph_buf_init(&scratch);
    elist nodes, hook;
    elist_init(&nodes);
    elist_init(&hook);
    opts_with(&fopts, opts, "{forwarded, true}");
    for (int i = 0; i < sp.n; i++)
        elist_add(&nodes, "~a", atom_text(sp.nodes[i]));
    if (ph_match(id, "undefined") != 1) {
        ph_build(&note, "{'$ph_hub', start_forwarded, ~t, ~a, ~t}", id, atom_text(h->self_node),
                 elist_term(&nodes, &scratch));
        ph_send(ctx, reply_to, ph_buf_term(&note));
    }
    int want_hook = hooks_has(h->hooks, "forwarded_migration_hook");
    for (int i = 0; i < sp.n; i++) {
        send_start(h, ctx, sp.nodes[i], id, reply_to, &sp.remote[i], ph_buf_term(&fopts));
        if (!want_hook)
            continue;
        /* {Node, [child_data]} */
        elist children;
        list_walk w;
        ph_term spec;
        elist_init(&children);
        ph_buf_reset(&scratch);
        elist_to(&scratch, &sp.remote[i]);
        list_begin(&w, ph_buf_term(&scratch));
        while (list_next(&w, &spec) > 0)
            add_child_data(h, &children, sp.nodes[i], spec, meta);
        ph_buf_reset(&data);
        elist_add(&hook, "{~a, ~t}", atom_text(sp.nodes[i]), elist_term(&children, &data));
        elist_free(&children);
    }
    LOG_I("hub", "%s: %d member(s) own some children placed here; forwarded", h->cfg.hub_id, sp.n);
    if (want_hook)
        fire(h, ctx, "forwarded_migration_hook", elist_term(&hook, &data));
    elist_to(out, &sp.local);
    elist_free(&nodes);
    elist_free(&hook);
    ph_buf_free(&fopts);
    ph_buf_free(&note);
    ph_buf_free(&data);
    ph_buf_free(&scratch);
    owner_split_free(&sp);
}

/* The specs of a hand-off this node accepts, in out: not a child stopped
 * since the sender decided (the stop overtook the hand-off), nor one this
 * node is itself moving away (both copies would stop). The sender keeps
 * what is refused. Returns the number refused. */
static int handoff_filter(hub *h, ph_term specs, ph_buf *out)
{
    list_walk w;
    ph_term spec;
    elist keep;
    int refused = 0;
    ph_buf *key = &h->key_scratch;
    if (list_begin(&w, specs) < 0 || elist_init(&keep) != 0) {
        ph_buf_append_term(out, specs);
        return 0;
    }
    while (list_next(&w, &spec) > 0) {
        spec_info s;
        key->index = 0;
        if (parse_spec(spec, &s) == 0 && registry_key(s.id, key) == 0 &&
            (tomb_has(h, key->buff, (uint32_t)key->index) ||
             moving_target(h, key->buff, (uint32_t)key->index) != ATOM_NONE)) {
            refused++;
            continue;
        }
        if (ph_buf_append_term(&keep.b, spec) == 0)
            keep.n++;
    }
    elist_to(out, &keep);
    elist_free(&keep);
    return refused;
}

/* {'$ph_hub', start, Id, ReplyTo, Specs, Opts}: children placed here. */
static void handle_remote_start(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                                ph_term opts_term)
{
    start_opts o;
    ph_buf result, msg, mine;
    ph_buf_init(&result);
    ph_buf_init(&msg);
    ph_buf_init(&mine);
    if (parse_opts(opts_term, &o, &result) == 0) {
        o.check_existing = 0; /* the caller checked; a duplicate still fails here */
        o.rollback = 0;
        ph_term here = specs;
        if (o.handoff) {
            int refused = handoff_filter(h, specs, &mine);
            if (refused)
                LOG_I("hub",
                      "%s: %d child(ren) handed over by %s refused: stopped meanwhile, "
                      "or moving away from here",
                      h->cfg.hub_id, refused, atom_text(reply_to.node));
            here = ph_buf_term(&mine);
            /* Placed by the sender's view: what this node does not own
             * goes on to its owner. */
            schedule_reconcile(h, ctx, RECONCILE_MS);
        } else if (!o.forwarded && h->members.n > 0 &&
                   !(o.has_ring && o.ring == ring_option(h->ring))) {
            forward_misplaced(h, ctx, id, reply_to, specs, opts_term, o.metadata, &mine);
            here = ph_buf_term(&mine);
        }
        if (ph_match(here, "[]") == 1)
            ph_build(&result,
                     "{ok, #{status => ok, started => [], errors => [], rollback => false}}");
        else
            start_batch(h, ctx, here, &o, &result);
    }
    /* The rows first: the caller may act on them (rollback) when the result comes. */
    flush_sync(h, ctx);
    if (ph_match(id, "undefined") != 1) {
        /* Versioned and built around the result's bytes: sent without a copy. */
        ph_buf_free(&msg);
        if (ph_buf_init_versioned(&msg) == 0 &&
            ph_buf_reserve(&msg, (size_t)result.index + 256u) == 0 &&
            ei_x_encode_tuple_header(&msg, 5) == 0 && ei_x_encode_atom(&msg, "$ph_hub") == 0 &&
            ei_x_encode_atom(&msg, "start_result") == 0 && ph_buf_append_term(&msg, id) == 0 &&
            ei_x_encode_atom(&msg, atom_text(h->self_node)) == 0 &&
            ph_buf_append_term(&msg, ph_buf_term(&result)) == 0)
            ph_send(ctx, reply_to, ph_buf_term(&msg));
    }
    ph_buf_free(&result);
    ph_buf_free(&msg);
    ph_buf_free(&mine);
}

/* --- reconciliation: every child once, on its owner (ColdSwap) ---------- *
 *
 * One rule, applied by every node to the registry it holds whenever its view
 * of the members changes (docs/cluster.md, "Invariants"):
 *  - an orphan (a row whose every copy ran on members that left) that this
 *    node owns is started here; one owned by another member waits for it,
 *    and is handed to it (adopted) if it is still an orphan a moment later;
 *  - a child running here that another member owns is moved there: started
 *    there, stopped here once the owner says it runs it. That also ends a
 *    second copy: the owner answers that it runs one already.
 * Decisions use the view at hand; a later view re-plans. Orphans are kept
 * (not dropped with their node), so two members leaving at once lose
 * nothing: what the first departure assigned to the second is restarted
 * when the second one goes. */

static void schedule_reconcile(hub *h, ph_ctx *ctx, unsigned ms)
{
    uint64_t due = monotonic_ms() + ms;
    if (h->leaving || (h->reconcile_due && h->reconcile_due <= due))
        return;
    /* an earlier one than the one on its way: both come, the later one
     * finds little to do */
    h->reconcile_due = due;
    send_self_after(ctx, ms, "{'$ph_hub', reconcile, ~u}", (unsigned long long)due);
}

static void schedule_orphan_check(hub *h, ph_ctx *ctx, int ms)
{
    if (h->orphan_check_ms || h->leaving)
        return;
    h->orphan_check_ms = ms;
    send_self_after(ctx, (unsigned)ms, "{'$ph_hub', orphan_check}");
}

/* Asks member m to start the child of row (with its metadata, no
 * duplicate check: m may run it already). forwarded: m starts it even if
 * its own ring names another owner. */
static void send_move(ph_ctx *ctx, const member *m, const reg_row *row, int forwarded)
{
    ph_buf msg, pidb;
    if (ph_buf_init(&msg) != 0)
        return;
    if (ph_buf_init(&pidb) == 0) {
        if (ph_build(&msg,
                     "{'$ph_hub', start, undefined, ~t, [~t], [{metadata, ~t}, {check_existing, "
                     "false}, {forwarded, ~B}, {handoff, true}]}",
                     pid_term(ph_self(ctx), &pidb), reg_row_spec(row), reg_row_meta(row),
                     forwarded) == 0)
            ph_send(ctx, m->hub, ph_buf_term(&msg));
        ph_buf_free(&pidb);
    }
    ph_buf_free(&msg);
}

/* While this node leaves, another member left too (or died): the children
 * that ran only there go to their owners among the remaining members, as
 * our ring (without us) names them. An owner whose ring still counted on
 * us would otherwise leave them to us, and we do not start anything now.
 * A child its owner started already is not started twice. */
static void hand_off_orphans(hub *h, ph_ctx *ctx, uint32_t gone)
{
    uint32_t i = 0;
    int n = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        const char *owner = NULL;
        member *m;
        int orphan = row->n_nodes == 0 || (row->n_nodes == 1 && row->nodes[0].node == gone);
        if (!orphan || ring_key_nodes(h->ring, reg_row_key(row), 1, &owner, 1) != 1 ||
            !(m = membership_find(&h->members, atom_intern(owner))))
            continue;
        send_move(ctx, m, row, 1);
        n++;
    }
    if (n)
        LOG_I("hub", "%s: %d child(ren) of %s handed to their owners", h->cfg.hub_id, n,
              atom_text(gone));
    drop_node_rows(h, ctx, gone, 0);
}

/* Children going to one member with the same metadata: one start message. */
typedef struct move_group {
    const member *to;
    const reg_row *meta_of; /* a row with the group's metadata */
    elist specs;
    elist ids; /* their ids, in the same order */
} move_group;

static void move_group_free(move_group *g)
{
    elist_free(&g->specs);
    elist_free(&g->ids);
}

#define MOVE_GROUPS 8

/* Puts the ids of a move into the moving set (on), or takes them out. */
static void moving_mark(hub *h, const move *mv, int on)
{
    list_walk w;
    ph_term cid;
    ph_buf key;
    if (ph_buf_init(&key) != 0)
        return;
    struct term_trust saved = term_trust_push(mv->cids.buff, mv->cids.index);
    if (list_begin(&w, ph_buf_term(&mv->cids)) >= 0)
        while (list_next(&w, &cid) > 0) {
            key.index = 0;
            if (registry_key(cid, &key) != 0)
                continue;
            reg_row *r = registry_get(h->moving, key.buff, (uint32_t)key.index);
            reg_node_pid np = {mv->target, {0}};
            if (on && !registry_put(h->moving, key.buff, (uint32_t)key.index, cid, cid, &np, 1))
                LOG_W("hub", "%s: out of memory marking a moving child", h->cfg.hub_id);
            else if (!on && r && r->nodes[0].node == mv->target)
                registry_delete(h->moving, r);
        }
    term_trust_pop(saved);
    ph_buf_free(&key);
}

/* After an undo_move: the target's late start replaced the rows of these
 * children with its own copies, and its undo deleted them; our rows (sent
 * after the undo, so applied after it) put them back. */
static void republish_moved(hub *h, ph_ctx *ctx, const move *mv)
{
    elist rows;
    list_walk w;
    ph_term cid;
    ph_buf key;
    ph_pid pid;
    if (elist_init(&rows) != 0)
        return;
    if (ph_buf_init(&key) == 0) {
        struct term_trust saved = term_trust_push(mv->cids.buff, mv->cids.index);
        if (list_begin(&w, ph_buf_term(&mv->cids)) >= 0)
            while (list_next(&w, &cid) > 0) {
                key.index = 0;
                reg_row *row = registry_key(cid, &key) == 0
                                   ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                                   : NULL;
                if (row && row_local_pid(h, row, &pid))
                    append_row_entry(&rows, row, pid);
            }
        term_trust_pop(saved);
        ph_buf_free(&key);
    }
    if (rows.n)
        send_sync(h, ctx, mv->target, "registered", &rows);
    elist_free(&rows);
}

/* children_migrated_hook: {Node, [{Spec, Meta}]} for a group that moves. */
static void fire_migrated(hub *h, ph_ctx *ctx, const move_group *g)
{
    ph_buf d, l;
    list_walk w;
    ph_term spec;
    elist migrated;
    if (!hooks_has(h->hooks, "children_migrated_hook") || elist_init(&migrated) != 0)
        return;
    ph_buf_init(&d);
    ph_buf_init(&l);
    elist_to(&l, &g->specs);
    list_begin(&w, ph_buf_term(&l));
    while (list_next(&w, &spec) > 0)
        elist_add(&migrated, "{~t, ~t}", spec, reg_row_meta(g->meta_of));
    ph_buf_reset(&l);
    elist_to(&l, &migrated);
    if (ph_build(&d, "{~a, ~t}", atom_text(g->to->node), ph_buf_term(&l)) == 0)
        fire(h, ctx, "children_migrated_hook", ph_buf_term(&d));
    ph_buf_free(&d);
    ph_buf_free(&l);
    elist_free(&migrated);
}

/* Sends a group as one hand-off. A move (children running here) is
 * remembered until its result, and its children stop here then; an
 * adoption (orphans) is not answered. */
static void group_send(hub *h, ph_ctx *ctx, move_group *g, int is_move)
{
    move *mv = NULL;
    ph_buf opts, id;
    if (ph_buf_init(&opts) != 0 || ph_buf_init(&id) != 0) {
        ph_buf_free(&opts);
        LOG_E("hub", "%s: out of memory handing children over; they stay here", h->cfg.hub_id);
        return;
    }
    if (is_move) {
        mv = calloc(1, sizeof *mv);
        if (!mv || ph_buf_init(&mv->cids) != 0 || elist_to(&mv->cids, &g->ids) != 0) {
            ph_buf_free(&opts);
            ph_buf_free(&id);
            move_free(mv);
            LOG_E("hub", "%s: out of memory moving children; they stay here", h->cfg.hub_id);
            return;
        }
        mv->id = ph_make_ref();
        mv->target = g->to->node;
        mv->n = g->ids.n;
        mv->next = h->moves;
        h->moves = mv;
        moving_mark(h, mv, 1);
        ph_encode_ref(&id, &mv->id);
        fire_migrated(h, ctx, g);
    } else {
        ph_build(&id, "undefined");
    }
    /* forwarded: it starts them even if its ring has changed again
     * meanwhile; it re-plans from its own view afterwards. The ring digest
     * names the view this placement was made under. */
    ph_build(&opts,
             "[{metadata, ~t}, {check_existing, false}, {forwarded, true}, {handoff, true}, "
             "{ring, ~i}]",
             reg_row_meta(g->meta_of), ring_option(h->ring));
    send_start(h, ctx, g->to->node, ph_buf_term(&id), ph_self(ctx), &g->specs, ph_buf_term(&opts));
    if (mv)
        send_self_after(ctx, h->cfg.migr_base_timeout, "{'$ph_hub', move_timeout, ~t}",
                        ph_buf_term(&id));
    ph_buf_free(&opts);
    ph_buf_free(&id);
}

/* Adds row to the group of its target and metadata, sending the oldest
 * group first when all are taken. 0, or -1 when out of memory (the child
 * stays where it is). */
static int group_add(hub *h, ph_ctx *ctx, move_group *groups, int *n_groups, const member *m,
                     const reg_row *row, int is_move)
{
    int g = 0;
    while (g < *n_groups && !(groups[g].to == m && groups[g].meta_of->meta_len == row->meta_len &&
                              memcmp(reg_row_meta(groups[g].meta_of).buf, reg_row_meta(row).buf,
                                     row->meta_len) == 0))
        g++;
    if (g == *n_groups) {
        if (*n_groups == MOVE_GROUPS) { /* full: send the oldest group now */
            group_send(h, ctx, &groups[0], is_move);
            move_group_free(&groups[0]);
            groups[0] = groups[--*n_groups];
        }
        g = (*n_groups)++;
        groups[g] = (move_group){.to = m, .meta_of = row};
        if (elist_init(&groups[g].specs) != 0 || elist_init(&groups[g].ids) != 0) {
            move_group_free(&groups[g]);
            (*n_groups)--;
            return -1;
        }
    }
    int specs_end = groups[g].specs.b.index, ids_end = groups[g].ids.b.index;
    if (ph_buf_append_term(&groups[g].specs.b, reg_row_spec(row)) != 0 ||
        ph_buf_append_term(&groups[g].ids.b, reg_row_key(row)) != 0) {
        groups[g].specs.b.index = specs_end;
        groups[g].ids.b.index = ids_end;
        return -1;
    }
    groups[g].specs.n++;
    groups[g].ids.n++;
    return 0;
}

static void groups_flush(hub *h, ph_ctx *ctx, move_group *groups, int n_groups, int is_move)
{
    for (int g = 0; g < n_groups; g++) {
        group_send(h, ctx, &groups[g], is_move);
        move_group_free(&groups[g]);
    }
}

static move *move_take(hub *h, const ph_ref *id)
{
    for (move **pm = &h->moves; *pm; pm = &(*pm)->next)
        if (ph_ref_equal(&(*pm)->id, id)) {
            move *mv = *pm;
            *pm = mv->next;
            return mv;
        }
    return NULL;
}

/* The new owner answered a move: what it runs now (started, or running
 * already) stops here; what it could not start, or refused, keeps running
 * here and is planned again later. */
static void move_done(hub *h, ph_ctx *ctx, move *mv, ph_term result)
{
    ph_term map, list, e, cid, reason;
    list_walk w;
    elist stop;
    int failed = 0;
    moving_mark(h, mv, 0);
    if (elist_init(&stop) != 0) {
        move_free(mv);
        return;
    }
    if (ph_match(result, "{ok, ~t}", &map) == 1) {
        if (ph_map_get_atom(map, "started", &list) == 1 && list_begin(&w, list) >= 0)
            while (list_next(&w, &e) > 0)
                if (ph_match(e, "{~t, _}", &cid) == 1)
                    elist_add(&stop, "~t", cid);
        if (ph_map_get_atom(map, "errors", &list) == 1 && list_begin(&w, list) >= 0)
            while (list_next(&w, &e) > 0) {
                if (ph_match(e, "{~t, _, ~t}", &cid, &reason) != 1)
                    continue;
                if (ph_match(reason, "{already_started, _}") == 1)
                    elist_add(&stop, "~t", cid);
                else
                    failed++;
            }
    }
    int refused = mv->n - stop.n - failed;
    if (failed) {
        /* e.g. a worker module the owner lacks: tried again, less and
         * less often while it keeps failing */
        LOG_W("hub", "%s: %d child(ren) could not start on %s and keep running here", h->cfg.hub_id,
              failed, atom_text(mv->target));
        h->retry_ms = h->retry_ms ? h->retry_ms * 2 : RECONCILE_MS * 4;
        if (h->retry_ms > (int)h->cfg.sync_interval)
            h->retry_ms = (int)h->cfg.sync_interval;
        schedule_reconcile(h, ctx, (unsigned)h->retry_ms);
    } else {
        h->retry_ms = 0;
    }
    if (refused > 0) /* moving the other way, or stopped: views settle soon */
        schedule_reconcile(h, ctx, RECONCILE_MS * 4);
    if (stop.n) {
        ph_buf l;
        ph_buf_init(&l);
        elist_to(&l, &stop);
        stop_batch(h, ctx, ph_buf_term(&l), NULL, STOP_HERE);
        ph_buf_free(&l);
    }
    elist_free(&stop);
    move_free(mv);
}

/* A member left: moves to it will not be answered; the children stay and
 * are planned again. */
static void moves_drop_node(hub *h, uint32_t node)
{
    for (move **pm = &h->moves; *pm;) {
        move *mv = *pm;
        if (mv->target == node) {
            *pm = mv->next;
            moving_mark(h, mv, 0);
            move_free(mv);
        } else {
            pm = &mv->next;
        }
    }
}

/* Starts here the orphans this node owns (specs and metas in step). One
 * that cannot start leaves the registry everywhere, as a child whose
 * restart fails does. */
static void restart_orphans(hub *h, ph_ctx *ctx, elist *specs, elist *metas)
{
    ph_buf sl, ml, gone;
    list_walk ws, wm;
    ph_term spec, meta;
    start_result r;
    elist failed;
    if (ph_buf_init(&sl) != 0 || ph_buf_init(&ml) != 0 || ph_buf_init(&gone) != 0 ||
        elist_init(&failed) != 0 || result_init(&r) != 0) {
        LOG_E("hub", "%s: out of memory restarting orphaned children", h->cfg.hub_id);
        return;
    }
    elist_to(&sl, specs);
    elist_to(&ml, metas);
    list_begin(&ws, ph_buf_term(&sl));
    list_begin(&wm, ph_buf_term(&ml));
    while (list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0) {
        start_opts o;
        spec_info si;
        memset(&o, 0, sizeof o);
        o.metadata = meta;
        o.timeout = 10000;
        o.handoff = 1; /* a restart, not a new start: a stop since still holds */
        int errors = r.errors.n;
        start_one(h, ctx, spec, &o, &r);
        if (r.errors.n != errors && parse_spec(spec, &si) == 0)
            elist_add(&failed, "~t", si.id);
    }
    LOG_I("hub", "%s: %d orphaned child(ren) restarted here, %d failed", h->cfg.hub_id, r.started.n,
          r.errors.n);
    if (failed.n && elist_to(&gone, &failed) == 0) {
        list_walk w;
        ph_term cid;
        ph_buf key;
        ph_buf_init(&key);
        list_begin(&w, ph_buf_term(&gone));
        while (list_next(&w, &cid) > 0) {
            key.index = 0;
            reg_row *row = registry_key(cid, &key) == 0
                               ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                               : NULL;
            if (row && row->n_nodes == 0)
                forget_row(h, ctx, row);
        }
        ph_buf_free(&key);
        for (int i = 0; i < h->members.n; i++)
            send_stop(h, ctx, h->members.members[i].node, ph_buf_term(&gone));
    }
    result_free(&r);
    elist_free(&failed);
    ph_buf_free(&sl);
    ph_buf_free(&ml);
    ph_buf_free(&gone);
}

/* The rule above, applied to the whole registry once. */
static void reconcile(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    elist specs, metas;
    move_group groups[MOVE_GROUPS];
    owner_cache cache = {.n = 0};
    int n_groups = 0, moving = 0, orphans_elsewhere = 0;
    if (h->leaving)
        return;
    if (elist_init(&specs) != 0 || elist_init(&metas) != 0) {
        elist_free(&specs);
        LOG_E("hub", "%s: out of memory reconciling the registry", h->cfg.hub_id);
        return;
    }
    while ((row = registry_next(h->reg, &i)) != NULL) {
        const char *name = NULL;
        if (ring_key_nodes(h->ring, reg_row_key(row), 1, &name, 1) != 1)
            continue;
        uint32_t owner = owner_atom(&cache, name);
        if (row->n_nodes == 0) {
            if (owner != h->self_node) {
                orphans_elsewhere++;
            } else if (ph_buf_append_term(&specs.b, reg_row_spec(row)) == 0 &&
                       ph_buf_append_term(&metas.b, reg_row_meta(row)) == 0) {
                specs.n++;
                metas.n++;
            }
            continue;
        }
        if (owner == h->self_node || !row_local_pid(h, row, &pid))
            continue;
        member *m = membership_find(&h->members, owner);
        child *c = m ? child_find(h, pid, NULL) : NULL;
        if (!c || c->stopping || moving_target(h, row->data, row->key_len) != ATOM_NONE)
            continue;
        if (group_add(h, ctx, groups, &n_groups, m, row, 1) != 0) {
            LOG_E("hub", "%s: out of memory moving children; they stay here", h->cfg.hub_id);
            continue;
        }
        moving++;
    }
    groups_flush(h, ctx, groups, n_groups, 1);
    if (moving)
        LOG_I("hub", "%s: %d child(ren) move to their owners", h->cfg.hub_id, moving);
    if (specs.n)
        restart_orphans(h, ctx, &specs, &metas);
    elist_free(&specs);
    elist_free(&metas);
    if (orphans_elsewhere)
        schedule_orphan_check(h, ctx, ORPHAN_CHECK_MS);
}

/* Orphans still waiting for another member a moment after they became
 * orphans: that owner may never have had their rows (it joined since, or
 * the dying node's last update did not reach it). They are handed to it;
 * an owner that runs one already answers so, and one stopped meanwhile is
 * refused there. Checked again, less and less often, while any remain. */
static void adopt_orphans(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0;
    reg_row *row;
    move_group groups[MOVE_GROUPS];
    owner_cache cache = {.n = 0};
    int n_groups = 0, sent = 0, waiting = 0, mine = 0;
    int delay = h->orphan_check_ms;
    h->orphan_check_ms = 0;
    if (h->leaving)
        return;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        const char *name = NULL;
        if (row->n_nodes != 0 || ring_key_nodes(h->ring, reg_row_key(row), 1, &name, 1) != 1)
            continue;
        uint32_t owner = owner_atom(&cache, name);
        member *m = owner != h->self_node ? membership_find(&h->members, owner) : NULL;
        if (owner == h->self_node)
            mine++;
        else if (!m || group_add(h, ctx, groups, &n_groups, m, row, 0) != 0)
            waiting++;
        else
            sent++;
    }
    groups_flush(h, ctx, groups, n_groups, 0);
    if (sent)
        LOG_I("hub", "%s: %d orphaned child(ren) handed to their owners", h->cfg.hub_id, sent);
    if (mine)
        reconcile(h, ctx);
    if (sent || waiting) {
        int next = delay * 2;
        if (next > (int)h->cfg.sync_interval)
            next = (int)h->cfg.sync_interval;
        schedule_orphan_check(h, ctx, next > ORPHAN_CHECK_MS ? next : ORPHAN_CHECK_MS);
    }
}

/* A member left: its children that ran only there are orphans now; each
 * is restarted by its owner in the view without it (reconcile). */
static void failover(hub *h, ph_ctx *ctx, uint32_t gone)
{
    drop_node_rows(h, ctx, gone, 1);
    reconcile(h, ctx);
}

/* --- the API ------------------------------------------------------------ */

static ph_result handle_start(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                              const ph_from *from, ph_buf *reply)
{
    start_opts o;
    if (parse_opts(opts_term, &o, reply) != 0)
        return PH_REPLY;
    list_walk lw;
    if (h->members.n > 0 && list_begin(&lw, list) > 0)
        return start_placed(h, ctx, list, opts_term, &o, from, reply);
    if (!o.awaitable) {
        /* Only a refusal of the whole call is reported; per-child errors are not. */
        ph_buf result;
        if (ph_buf_init(&result) != 0)
            return PH_NOREPLY;
        if (start_batch(h, ctx, list, &o, &result) < 0)
            ph_buf_append_term(reply, ph_buf_term(&result));
        else
            ph_build(reply, "{ok, start_initiated}");
        ph_buf_free(&result);
        return PH_REPLY;
    }
    start_batch(h, ctx, list, &o, reply);
    return PH_REPLY;
}

static ph_result handle_stop(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                             const ph_from *from, ph_buf *reply)
{
    start_opts o;
    ph_iter it;
    if (parse_opts(opts_term, &o, reply) != 0)
        return PH_REPLY;
    if (ph_term_type(list, NULL) == ERL_SMALL_TUPLE_EXT ||
        ph_term_type(list, NULL) == ERL_MAP_EXT || ph_iter_begin(&it, list) < 0) {
        ph_build(reply, "{error, {bad_child_ids, ~t}}", list);
        return PH_REPLY;
    }
    if (!o.awaitable) {
        stop_batch(h, ctx, list, NULL, STOP_ANYWHERE);
        ph_build(reply, "{ok, stop_initiated}");
        return PH_REPLY;
    }
    stop_wait *w = calloc(1, sizeof *w);
    if (!w || elist_init(&w->stopped) != 0 || elist_init(&w->errors) != 0) {
        free(w);
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    w->from = ph_from_copy(from);
    w->outstanding = 1; /* held until the batch is set up */
    stop_batch(h, ctx, list, w, STOP_ANYWHERE);
    w->outstanding--;
    stop_wait_done(w);
    return PH_NOREPLY;
}

typedef ph_result (*batch_handler)(hub *h, ph_ctx *ctx, ph_term list, ph_term opts,
                                   const ph_from *from, ph_buf *reply);

/* start_child / stop_child: the batch form with a list of one. */
static ph_result for_one(batch_handler handle, hub *h, ph_ctx *ctx, ph_term item, ph_term opts,
                         const ph_from *from, ph_buf *reply)
{
    ph_buf one;
    if (ph_buf_init(&one) != 0 || ph_build(&one, "[~t]", item) != 0) {
        ph_buf_free(&one);
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    ph_result r = handle(h, ctx, ph_buf_term(&one), opts, from, reply);
    ph_buf_free(&one);
    return r;
}

static ph_result hub_call_inner(ph_ctx *ctx, void *state, ph_term req, const ph_from *from,
                                ph_buf *reply)
{
    hub *h = state;
    ph_term a, b;
    char key[PH_ATOM_BUF];
    /* The requests that carry many children are recognised with ei alone
     * (see list_walk); the small ones with ph_match. */
    char tag[PH_ATOM_BUF];
    int index = req.index, arity;
    if (ei_decode_tuple_header(req.buf, &index, &arity) == 0 && arity == 3 &&
        atom_at(req.buf, &index, tag) == 0 && strcmp(tag, "start_children") == 0) {
        a = (ph_term){req.buf, index};
        if (term_skip_valid(req.buf, &index) == 0) {
            b = (ph_term){req.buf, index};
            return handle_start(h, ctx, a, b, from, reply);
        }
    }
    /* The lookup that callers make most, first and without ph_match. */
    index = req.index;
    if (ei_decode_tuple_header(req.buf, &index, &arity) == 0 && arity == 2 &&
        atom_at(req.buf, &index, tag) == 0 && strcmp(tag, "get_pid") == 0)
        return reply_pids(h, (ph_term){req.buf, index}, 1, reply);
    if (ph_match(req, "{start_child, ~t, ~t}", &a, &b) == 1)
        return for_one(handle_start, h, ctx, a, b, from, reply);
    if (ph_match(req, "{stop_children, ~t, ~t}", &a, &b) == 1)
        return handle_stop(h, ctx, a, b, from, reply);
    if (ph_match(req, "{stop_child, ~t, ~t}", &a, &b) == 1)
        return for_one(handle_stop, h, ctx, a, b, from, reply);
    if (ph_match(req, "{get_pids, ~t}", &a) == 1)
        return reply_pids(h, a, 0, reply);
    if (ph_match(req, "{child_lookup, ~t}", &a) == 1)
        return reply_lookup(h, a, 0, reply);
    if (ph_match(req, "{child_lookup, ~t, ~t}", &a, &b) == 1) {
        int with = 0;
        ph_iter it;
        ph_term e;
        if (ph_iter_begin(&it, b) >= 0)
            while (ph_iter_next(&it, &e) > 0)
                if (ph_match(e, "{with_metadata, true}") == 1)
                    with = 1;
        return reply_lookup(h, a, with, reply);
    }
    if (ph_match(req, "{process_list, global}") == 1)
        return reply_process_list(h, 0, reply);
    if (ph_match(req, "{process_list, local}") == 1)
        return reply_process_list(h, 1, reply);
    if (ph_match(req, "registry_dump") == 1)
        return reply_dump(h, reply);
    if (ph_match(req, "registry_count") == 1)
        return ph_build(reply, "~i", (long)running_count(h)) == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(req, "{tag_query, ~t}", &a) == 1)
        return reply_tag_query(h, a, reply);
    if (ph_match(req, "{which_children, ~t}", &a) == 1) {
        int global = has_option(a, "global");
        if (global)
            ei_x_encode_list_header(reply, 1);
        encode_which_children(h, reply);
        if (global)
            ei_x_encode_empty_list(reply);
        return PH_REPLY;
    }
    if (ph_match(req, "{nodes, ~t}", &a) == 1) {
        if (has_option(a, "include_local")) {
            ei_x_encode_list_header(reply, 1);
            ei_x_encode_atom(reply, atom_text(h->self_node));
        }
        for (int i = 0; i < h->members.n; i++) {
            ei_x_encode_list_header(reply, 1);
            ei_x_encode_atom(reply, atom_text(h->members.members[i].node));
        }
        ei_x_encode_empty_list(reply);
        return PH_REPLY;
    }
    if (ph_match(req, "is_alive") == 1)
        return ph_build(reply, "true") == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(req, "is_locked") == 1 || ph_match(req, "is_partitioned") == 1)
        return ph_build(reply, "false") == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(req, "{register_hook_handlers, ~a, ~t}", key, &a) == 1) {
        int rc = hooks_register_terms(h->hooks, key, a, ph_from_pid(from).node);
        if (rc == 0)
            ph_build(reply, "ok");
        else if (rc == -1)
            ph_build(reply, "{error, failed_to_register_some_handlers}");
        else
            ph_build(reply, "{error, {bad_handlers, ~t}}", a);
        return PH_REPLY;
    }
    if (ph_match(req, "{cancel_hook_handlers, ~a, ~t}", key, &a) == 1) {
        list_walk w;
        if (list_begin(&w, a) < 0) {
            ph_build(reply, "{error, {bad_handler_ids, ~t}}", a);
            return PH_REPLY;
        }
        hooks_cancel_terms(h->hooks, key, a);
        return ph_build(reply, "ok") == 0 ? PH_REPLY : PH_NOREPLY;
    }
    ph_build(reply, "{error, {unknown_request, ~t}}", req);
    return PH_REPLY;
}

/* --- graceful leave ------------------------------------------------------- */

/* Posted by the hub when every member has taken over our children (or
 * there are none); hub_leave() waits for it. */
static sem_t leave_sem;

static void leave_confirmed(hub *h, uint32_t node)
{
    for (int i = 0; i < h->n_leave_wait; i++)
        if (h->leave_wait[i] == node) {
            h->leave_wait[i] = h->leave_wait[--h->n_leave_wait];
            if (h->n_leave_wait == 0)
                sem_post(&leave_sem);
            return;
        }
}

/* SIGTERM: tell every member we leave; each restarts the children it now
 * owns and confirms. Our ring loses this node, so starts still arriving are
 * forwarded to their new owners. Our children run until the node stops. */
static void begin_leave(hub *h, ph_ctx *ctx)
{
    if (h->leaving)
        return;
    h->leaving = 1;
    ring_remove_node(h->ring, atom_text(h->self_node));
    if (h->members.n > 0)
        h->leave_wait = calloc((size_t)h->members.n, sizeof *h->leave_wait);
    if (!h->leave_wait) {
        sem_post(&leave_sem);
        return;
    }
    LOG_I("hub", "%s: leaving the hub cluster; %d member(s) take over our children", h->cfg.hub_id,
          h->members.n);
    for (int i = 0; i < h->members.n; i++) {
        h->leave_wait[h->n_leave_wait++] = h->members.members[i].node;
        send_hub_message(h, ctx, h->members.members[i].node, "leave");
    }
}

int hub_leave(const hub_config *c)
{
    ph_buf b;
    struct timespec deadline;
    if (ph_buf_init(&b) != 0)
        return -1;
    int rc = ph_build(&b, "{'$ph_hub', graceful_leave}") == 0 &&
                     ph_send_named(NULL, c->hub_id, NULL, ph_buf_term(&b)) == 0
                 ? 0
                 : -1;
    ph_buf_free(&b);
    if (rc != 0)
        return -1; /* no hub */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += c->migr_base_timeout / 1000;
    deadline.tv_nsec += (long)(c->migr_base_timeout % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while ((rc = sem_timedwait(&leave_sem, &deadline)) != 0 && errno == EINTR)
        ;
    return rc == 0 ? 0 : -1;
}

static ph_result hub_info_inner(ph_ctx *ctx, void *state, ph_term msg)
{
    hub *h = state;
    ph_term p, reason;
    ph_pid pid;
    if (ph_match(msg, "{'EXIT', ~t, ~t}", &p, &reason) == 1 && ph_decode_pid(p, &pid) == 0) {
        child *c = child_find(h, pid, NULL);
        if (c)
            child_exited(h, ctx, c, reason);
        return PH_OK;
    }
    if (ph_match(msg, "{'$hub_shutdown_timeout', ~t}", &p) == 1 && ph_decode_pid(p, &pid) == 0) {
        child *c = child_find(h, pid, NULL);
        if (c && c->stopping) {
            ph_buf k;
            ph_buf_init(&k);
            ph_build(&k, "kill");
            ph_exit(ctx, pid, ph_buf_term(&k));
            ph_buf_free(&k);
        }
        return PH_OK;
    }
    if (ph_match(msg, "{rex, _}") == 1)
        return PH_OK; /* results of M/F/A hook handlers */
    ph_term tag, seen;
    ph_ref tag_ref;
    if (ph_match(msg, "{~t, ~t}", &tag, &seen) == 1 && ph_decode_ref(tag, &tag_ref) == 0) {
        if (ph_ref_equal(&tag_ref, &h->discover_ref))
            greet_seen_nodes(h, ctx, seen);
        return PH_OK;
    }
    ph_term members, ref_term;
    char kind[PH_ATOM_BUF];
    if (ph_match(msg, "{'$ph_hub', ~a, ~t, ~t}", kind, &p, &members) == 1 &&
        ph_decode_pid(p, &pid) == 0) {
        if (strcmp(kind, "hello") == 0 || strcmp(kind, "welcome") == 0) {
            if (!h->leaving)
                handle_hello(h, ctx, pid, members, strcmp(kind, "hello") == 0);
        } else if (strcmp(kind, "leave") == 0) {
            member *e = membership_find(&h->members, pid.node);
            if (e && ph_pid_equal(e->hub, pid)) {
                member_left(h, ctx, e, "left");
                /* Its children run here now (and the others know): confirm. */
                flush_sync(h, ctx);
                send_hub_message(h, ctx, pid.node, "leave_done");
            }
        } else if (strcmp(kind, "leave_done") == 0 && h->leaving) {
            leave_confirmed(h, pid.node);
        }
        return PH_OK;
    }
    ph_term node_term, list;
    char node_name[PH_ATOM_BUF];
    if (ph_match(msg, "{'$ph_hub', ~a, ~t, ~t}", kind, &node_term, &list) == 1 &&
        ph_match(node_term, "~a", node_name) == 1 &&
        (strcmp(kind, "registered") == 0 || strcmp(kind, "unregistered") == 0 ||
         strcmp(kind, "stop") == 0 || strcmp(kind, "undo_move") == 0 ||
         strcmp(kind, "repair") == 0)) {
        uint32_t node = atom_intern(node_name);
        if (!membership_find(&h->members, node))
            return PH_OK; /* not (yet) a member: its hello will bring the rows */
        if (strcmp(kind, "registered") == 0)
            apply_registered(h, ctx, node, list);
        else if (strcmp(kind, "unregistered") == 0)
            apply_unregistered(h, ctx, node, list);
        else if (strcmp(kind, "repair") == 0)
            apply_repair(h, ctx, node, list);
        else
            stop_batch(h, ctx, list, NULL,
                       strcmp(kind, "undo_move") == 0 ? STOP_HERE : STOP_REMOTE);
        return PH_OK;
    }
    ph_term id_term, specs, result;
    if (ph_match(msg, "{'$ph_hub', start, ~t, ~t, ~t, ~t}", &id_term, &p, &specs, &list) == 1 &&
        ph_decode_pid(p, &pid) == 0) {
        handle_remote_start(h, ctx, id_term, pid, specs, list);
        return PH_OK;
    }
    ph_ref rid;
    if (ph_match(msg, "{'$ph_hub', start_result, ~t, ~a, ~t}", &id_term, node_name, &result) == 1 &&
        ph_decode_ref(id_term, &rid) == 0) {
        pending_start *ps = pending_find(h, &rid);
        ph_term map, started;
        move *mv = ps ? NULL : move_take(h, &rid);
        if (mv) {
            move_done(h, ctx, mv, result);
        } else if (ps && ps->answered) {
            /* Too late: the caller was told this start was rolled back. */
            if (ph_match(result, "{ok, ~t}", &map) == 1 &&
                ph_map_get_atom(map, "started", &started) == 1)
                stop_started(h, ctx, started);
            pending_node_done(h, ctx, ps, atom_intern(node_name));
        } else if (ps) {
            merge_result(&ps->started, &ps->errors, result);
            pending_node_done(h, ctx, ps, atom_intern(node_name));
        }
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', start_forwarded, ~t, ~a, ~t}", &id_term, node_name, &list) ==
            1 &&
        ph_decode_ref(id_term, &rid) == 0) {
        pending_start *ps = pending_find(h, &rid);
        list_walk w;
        ph_term t;
        char fwd[PH_ATOM_BUF];
        if (ps && list_begin(&w, list) >= 0)
            while (list_next(&w, &t) > 0)
                if (ph_match(t, "~a", fwd) == 1)
                    pending_expect(ps, atom_intern(fwd), 1);
        if (ps)
            pending_check(h, ctx, ps);
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', move_timeout, ~t}", &id_term) == 1 &&
        ph_decode_ref(id_term, &rid) == 0) {
        move *mv = move_take(h, &rid);
        if (mv) {
            moving_mark(h, mv, 0);
            /* If it starts them after all, it stops them again: messages
             * between two hubs arrive in order, so this comes after the start. */
            LOG_W("hub", "%s: %s did not answer a move in %u ms; the children stay here",
                  h->cfg.hub_id, atom_text(mv->target), h->cfg.migr_base_timeout);
            member *m = membership_find(&h->members, mv->target);
            ph_buf undo;
            if (m && ph_buf_init_versioned(&undo) == 0) {
                if (ei_x_encode_tuple_header(&undo, 4) == 0 &&
                    ei_x_encode_atom(&undo, "$ph_hub") == 0 &&
                    ei_x_encode_atom(&undo, "undo_move") == 0 &&
                    ei_x_encode_atom(&undo, atom_text(h->self_node)) == 0 &&
                    ei_x_append_buf(&undo, mv->cids.buff, mv->cids.index) == 0)
                    send_own(ctx, m->hub, &undo);
                ph_buf_free(&undo);
                republish_moved(h, ctx, mv);
            }
            move_free(mv);
        }
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', start_timeout, ~t}", &id_term) == 1 &&
        ph_decode_ref(id_term, &rid) == 0) {
        pending_start *ps = pending_find(h, &rid);
        if (ps && ps->answered) {
            pending_free(h, ps); /* the late owners had their time */
        } else if (ps && ps->rollback && ps->n_waiting > 0) {
            /* Reply now, but keep counting: what the late owners start
             * still has to go (stop_started above). */
            for (int i = 0; i < ps->n_waiting; i++)
                if (ps->waiting[i].count > 0)
                    elist_add(&ps->errors, "{undefined, ~a, node_receive_timeout}",
                              atom_text(ps->waiting[i].node));
            pending_reply(h, ctx, ps);
            ps->answered = 1;
            send_self_after(ctx, LATE_ROLLBACK_MS, "{'$ph_hub', start_timeout, ~t}", id_term);
        } else if (ps) {
            pending_fail_nodes(ps, ATOM_NONE, "node_receive_timeout");
            pending_check(h, ctx, ps);
        }
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', repair_tick}") == 1) {
        send_repair(h, ctx);
        tombs_prune(h);
        reconcile(h, ctx); /* a backstop: a lost message leaves nothing misplaced for long */
        return PH_OK;
    }
    unsigned long long due;
    if (ph_match(msg, "{'$ph_hub', reconcile, ~u}", &due) == 1) {
        if ((uint64_t)due == h->reconcile_due)
            h->reconcile_due = 0; /* the earliest one came: the next request schedules anew */
        reconcile(h, ctx);
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', orphan_check}") == 1) {
        adopt_orphans(h, ctx);
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', graceful_leave}") == 1) {
        begin_leave(h, ctx);
        return PH_OK;
    }
    if (ph_match(msg, "{'$ph_hub', announce}") == 1) {
        if (h->leaving)
            return PH_OK;
        if (!h->repairing) {
            h->repairing = 1;
            send_self_after(ctx, h->cfg.sync_interval, "{'$ph_hub', repair_tick}");
        }
        announce(h, ctx);
        return PH_OK;
    }
    ph_ref ref;
    if (ph_match(msg, "{'DOWN', ~t, process, _, ~t}", &ref_term, &reason) == 1 &&
        ph_decode_ref(ref_term, &ref) == 0) {
        member *e = membership_find_monitor(&h->members, &ref);
        if (e) {
            char why[128];
            member_left(h, ctx, e, ph_term_format(reason, why, sizeof why));
        }
        return PH_OK;
    }
    char text[200];
    LOG_D("hub", "%s: ignored message %s", h->cfg.hub_id, ph_term_format(msg, text, sizeof text));
    return PH_OK;
}

/* The first atom of a request or hub message ({Tag, ...}, {'$ph_hub', Kind, ...}), for logs. */
static const char *request_kind(ph_term t, char *out)
{
    int index = t.index, arity;
    strcpy(out, "?");
    if (ei_decode_tuple_header(t.buf, &index, &arity) == 0 && arity > 0 &&
        atom_at(t.buf, &index, out) == 0 && strcmp(out, "$ph_hub") == 0 && arity > 1)
        atom_at(t.buf, &index, out);
    else if (arity <= 0)
        atom_at(t.buf, &(int){t.index}, out);
    return out;
}

/* Requests and messages slower than this are logged at debug level. */
#define SLOW_HANDLING_US 20000

static void note_slow(hub *h, ph_term t, uint64_t t0)
{
    uint64_t us = monotonic_us() - t0;
    char kind[PH_ATOM_BUF];
    if (us >= SLOW_HANDLING_US)
        LOG_D("hub", "%s: %s took %llu ms", h->cfg.hub_id, request_kind(t, kind),
              (unsigned long long)(us / 1000));
}

/* Every request and message: then the registry changes it made go to the
 * other members in one message each. */
static ph_result hub_call(ph_ctx *ctx, void *state, ph_term req, const ph_from *from, ph_buf *reply)
{
    /* timed only when the log would show it: this is every get_pid */
    uint64_t t0 = log_enabled(LOG_DEBUG) ? monotonic_us() : 0;
    ph_result r = hub_call_inner(ctx, state, req, from, reply);
    flush_sync(state, ctx);
    if (t0)
        note_slow(state, req, t0);
    return r;
}

static ph_result hub_info(ph_ctx *ctx, void *state, ph_term msg)
{
    uint64_t t0 = log_enabled(LOG_DEBUG) ? monotonic_us() : 0;
    ph_result r = hub_info_inner(ctx, state, msg);
    flush_sync(state, ctx);
    if (t0)
        note_slow(state, msg, t0);
    return r;
}

static void hub_terminate(ph_ctx *ctx, void *state, ph_term reason);
static void send_hub_message(hub *h, ph_ctx *ctx, uint32_t node, const char *kind);

static ph_result hub_init(ph_ctx *ctx, ph_term args, void **state)
{
    (void)args;
    hub *h = calloc(1, sizeof *h);
    if (!h)
        return PH_STOP;
    h->cfg = *start_config;
    h->cfg.child_specs.buff = NULL; /* not owned */
    h->cfg.hooks.buff = NULL;
    h->cfg.seeds.buff = NULL;
    if (ph_buf_init(&h->seeds) != 0 ||
        ph_buf_append_term(&h->seeds, ph_buf_term(&start_config->seeds)) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    h->self_node = runtime_self_node();
    h->reg = registry_new();
    h->moving = registry_new();
    h->tombs = registry_new();
    h->hooks = hooks_new();
    h->ring = ring_new(h->cfg.otp26_atoms ? RING_ATOMS_OTP26 : RING_ATOMS_OTP25);
    if (!h->ring || ring_add_node(h->ring, atom_text(h->self_node)) != 0 ||
        ph_buf_init(&h->key_scratch) != 0 || ph_buf_init(&h->start_key) != 0 ||
        ph_buf_init(&h->start_reason) != 0 || ph_buf_init(&h->start_pid) != 0 ||
        elist_init(&h->sync_registered) != 0 || elist_init(&h->sync_unregistered) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    uint32_t max = h->cfg.dsup_max_restarts ? h->cfg.dsup_max_restarts : 1;
    h->restarts = calloc(max, sizeof *h->restarts);
    if (!h->reg || !h->moving || !h->tombs || !h->hooks || !h->restarts ||
        children_reserve(h, 0) != 0) {
        ph_stop_reasonf(ctx, "enomem");
        goto fail;
    }
    hooks_install_pending(h->hooks);
    const char *drop = getenv("PHNODE_TEST_DROP_SYNC");
    h->test_drop_syncs = drop ? atoi(drop) : 0;
    /* M/F/A handlers from the config file: {HookKey, Node, Handler} */
    list_walk hw;
    ph_term entry, hk, hn, handler;
    list_begin(&hw, ph_buf_term(&start_config->hooks));
    while (list_next(&hw, &entry) > 0) {
        char key[PH_ATOM_BUF], node[PH_ATOM_BUF];
        ph_buf one;
        if (ph_match(entry, "{~t, ~t, ~t}", &hk, &hn, &handler) != 1 ||
            ph_match(hk, "~a", key) != 1 || ph_match(hn, "~a", node) != 1 || ph_buf_init(&one) != 0)
            continue;
        ph_build(&one, "[~t]", handler);
        if (hooks_register_terms(h->hooks, key, ph_buf_term(&one), atom_intern(node)) != 0)
            LOG_W("hub", "%s: hook handler from the config not registered for %s", h->cfg.hub_id,
                  key);
        ph_buf_free(&one);
    }
    ph_trap_exit(ctx, 1);
    *state = h;
    ph_term specs = ph_buf_term(&start_config->child_specs);
    ph_iter it;
    if (ph_iter_begin(&it, specs) > 0) {
        start_opts o;
        ph_buf result, none;
        ph_buf_init(&result);
        ph_buf_init(&none);
        ph_build(&none, "[]");
        parse_opts(ph_buf_term(&none), &o, &result);
        int rc = start_batch(h, ctx, specs, &o, &result);
        if (rc != 0) {
            char text[512];
            LOG_E("hub", "%s: static children failed to start: %s", h->cfg.hub_id,
                  ph_term_format(ph_buf_term(&result), text, sizeof text));
            ph_stop_reasonf(ctx, "{static_children_failed, ~t}", ph_buf_term(&result));
            /* init failed, so terminate will not run: stop the children that
             * did start and free the books here. */
            ph_buf_reset(&none);
            ph_build(&none, "shutdown");
            hub_terminate(ctx, h, ph_buf_term(&none));
            *state = NULL;
            ph_buf_free(&result);
            ph_buf_free(&none);
            return PH_STOP;
        }
        ph_buf_free(&result);
        ph_buf_free(&none);
    }
    /* The first announcement waits for hub_network_ready(). */
    return PH_OK;
fail:
    ring_free(h->ring);
    ph_buf_free(&h->key_scratch);
    ph_buf_free(&h->start_key);
    ph_buf_free(&h->start_reason);
    ph_buf_free(&h->start_pid);
    if (h->seeds.buff)
        ph_buf_free(&h->seeds);
    if (h->sync_registered.b.buff)
        elist_free(&h->sync_registered);
    if (h->sync_unregistered.b.buff)
        elist_free(&h->sync_unregistered);
    registry_free(h->reg);
    registry_free(h->moving);
    registry_free(h->tombs);
    hooks_free(h->hooks);
    free(h->restarts);
    free(h->children);
    free(h);
    return PH_STOP;
}

static void hub_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    hub *h = state;
    helper_stop();
    if (!h)
        return;
    fire(h, ctx, "coordinator_shutdown_hook", reason);
    /* Children are supervised (an implicit link): they get the hub's exit
     * reason as a link exit signal. Free the books. */
    uint32_t len;
    const char *bytes;
    ph_buf rb;
    ph_buf_init_versioned(&rb);
    ph_buf_append_term(&rb, reason);
    bytes = rb.buff;
    len = (uint32_t)rb.index;
    for (uint32_t i = 0; i < h->cap; i++) {
        child *c = h->children[i];
        if (c && c != GONE) {
            route_exit(ph_self(ctx), c->pid, bytes, len, 0);
            if (c->wait) {
                c->wait->outstanding--;
                stop_wait_done(c->wait);
            }
            free(c);
        }
    }
    ph_buf_free(&rb);
    /* Tell the other members now rather than let them wait for the DOWN
     * (after a graceful leave they know already). */
    for (int i = 0; i < h->members.n && !h->leaving; i++)
        send_hub_message(h, ctx, h->members.members[i].node, "leave");
    membership_free(&h->members);
    free(h->leave_wait);
    if (h->seeds.buff)
        ph_buf_free(&h->seeds);
    elist_free(&h->sync_registered);
    elist_free(&h->sync_unregistered);
    ring_free(h->ring);
    ph_buf_free(&h->key_scratch);
    ph_buf_free(&h->start_key);
    ph_buf_free(&h->start_reason);
    ph_buf_free(&h->start_pid);
    while (h->pending) {
        pending_start *ps = h->pending;
        h->pending = ps->next;
        ph_from_free(ps->from);
        elist_free(&ps->started);
        elist_free(&ps->errors);
        free(ps->waiting);
        free(ps);
    }
    while (h->moves) {
        move *mv = h->moves;
        h->moves = mv->next;
        move_free(mv);
    }
    free(h->children);
    registry_free(h->reg);
    registry_free(h->moving);
    registry_free(h->tombs);
    hooks_free(h->hooks);
    free(h->restarts);
    free(h);
}

static const ph_worker_module hub_module = {
    .name = "$hub",
    .init = hub_init,
    .handle_call = hub_call,
    .handle_info = hub_info,
    .terminate = hub_terminate,
    .system = 1,
};

int hub_config_defaults(hub_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->hub_id, "my_hub");
    c->hubs_discover_interval = 10000;
    c->deadlock_recovery_timeout = 60000;
    c->storage_purge_interval = 15000;
    c->migr_base_timeout = 15000;
    c->dsup_max_restarts = 100;
    c->dsup_max_seconds = 4;
    c->dsup_shutdown_timeout = 60000;
    c->sync_interval = 15000;
    c->beam_discovery = 1;
    if (ph_buf_init(&c->child_specs) != 0 || ph_buf_init(&c->hooks) != 0 ||
        ph_buf_init(&c->seeds) != 0)
        return -1;
    return ph_build(&c->child_specs, "[]") == 0 && ph_build(&c->hooks, "[]") == 0 &&
                   ph_build(&c->seeds, "[]") == 0
               ? 0
               : -1;
}

void hub_config_free(hub_config *c)
{
    if (c->child_specs.buff)
        ph_buf_free(&c->child_specs);
    if (c->hooks.buff)
        ph_buf_free(&c->hooks);
    if (c->seeds.buff)
        ph_buf_free(&c->seeds);
}

void hub_network_ready(const hub_config *c)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{'$ph_hub', announce}") == 0)
        ph_send_named(NULL, c->hub_id, NULL, ph_buf_term(&b));
    ph_buf_free(&b);
}

int hub_start(const hub_config *c)
{
    if (!ph_find_module(hub_module.name) && ph_register_module(&hub_module) != 0)
        return -1;
    static int sem_ready;
    if (!sem_ready && sem_init(&leave_sem, 0, 0) != 0)
        return -1;
    sem_ready = 1;
    start_config = c;
    ph_buf args, error;
    ph_buf_init(&args);
    ph_buf_init(&error);
    ph_build(&args, "[]");
    ph_spawn_opts opts = {.name = c->hub_id};
    ph_pid pid;
    int rc = ph_spawn(NULL, hub_module.name, ph_buf_term(&args), &opts, &pid, &error);
    if (rc != 0) {
        char text[512];
        LOG_E("hub", "hub %s did not start: %s", c->hub_id,
              ph_term_format(ph_buf_term(&error), text, sizeof text));
    }
    ph_buf_free(&args);
    ph_buf_free(&error);
    return rc;
}
