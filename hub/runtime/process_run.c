/*
 * process_run.c - what a process does with the signals in its mailbox, its
 * links and monitors, and how it ends. Runs on the process's scheduler
 * thread only (see process.h).
 */
#include "ei_glue/term_trust.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/runtime/handover.h"
#include "hub/runtime/log.h"
#include "hub/runtime/runtime_metrics.h"
#include "hub/runtime/names.h"
#include "hub/runtime/route.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/thread_buf.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* --- relations --------------------------------------------------------- */

static int relation_matches(const relation *r, relation_kind kind, ph_pid pid, const ph_ref *ref)
{
    if (r->kind != kind)
        return 0;
    if (ref)
        return ph_ref_equal(&r->ref, ref);
    return ph_pid_equal(r->pid, pid);
}

static void lock_relations(process *p)
{
    while (atomic_flag_test_and_set_explicit(&p->relations_lock, memory_order_acquire))
        sched_yield(); /* held for a few loads and stores only */
}

static void unlock_relations(process *p)
{
    atomic_flag_clear_explicit(&p->relations_lock, memory_order_release);
}

#define INDEX_FROM 16

static uint32_t pid_slot_hash(ph_pid pid)
{
    return (pid.num * 2654435761u) ^ (pid.serial * 40503u) ^ (pid.node * 97u);
}

static void index_insert(process *p, uint32_t pos)
{
    uint32_t mask = p->relation_index_cap - 1;
    uint32_t i = pid_slot_hash(p->relations[pos].pid) & mask;
    while (p->relation_index[i])
        i = (i + 1) & mask;
    p->relation_index[i] = pos + 1;
}

/* (Re)builds the index for the current relations; without memory the
 * process just keeps scanning. */
static void index_rebuild(process *p)
{
    uint32_t cap = 64;
    while (cap < p->n_relations * 2 + 2)
        cap *= 2;
    uint32_t *idx = calloc(cap, sizeof *idx);
    free(p->relation_index);
    p->relation_index = idx;
    p->relation_index_cap = idx ? cap : 0;
    for (uint32_t i = 0; idx && i < p->n_relations; i++)
        index_insert(p, i);
}

/* Slot holding position pos (linear probing from its pid's hash). */
static uint32_t index_slot_of(const process *p, uint32_t pos)
{
    uint32_t mask = p->relation_index_cap - 1;
    uint32_t i = pid_slot_hash(p->relations[pos].pid) & mask;
    while (p->relation_index[i] && p->relation_index[i] != pos + 1)
        i = (i + 1) & mask;
    return i;
}

/* Deletes slot i, shifting later entries of the cluster back. */
static void index_delete_slot(process *p, uint32_t i)
{
    uint32_t mask = p->relation_index_cap - 1;
    p->relation_index[i] = 0;
    for (uint32_t j = (i + 1) & mask; p->relation_index[j]; j = (j + 1) & mask) {
        uint32_t pos = p->relation_index[j] - 1;
        uint32_t home = pid_slot_hash(p->relations[pos].pid) & mask;
        /* move it back if its home is not in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            p->relation_index[i] = p->relation_index[j];
            p->relation_index[j] = 0;
            i = j;
        }
    }
}

static int find_locked(const process *p, relation_kind kind, ph_pid pid, const ph_ref *ref)
{
    if (p->relation_index && (!ref || kind != REL_MONITORING || pid.num || pid.serial)) {
        uint32_t mask = p->relation_index_cap - 1;
        for (uint32_t i = pid_slot_hash(pid) & mask; p->relation_index[i]; i = (i + 1) & mask) {
            uint32_t pos = p->relation_index[i] - 1;
            const relation *r = &p->relations[pos];
            if (ph_pid_equal(r->pid, pid) && relation_matches(r, kind, pid, ref))
                return (int)pos;
        }
        return -1;
    }
    for (uint32_t i = 0; i < p->n_relations; i++)
        if (relation_matches(&p->relations[i], kind, pid, ref))
            return (int)i;
    return -1;
}

void relations_free(process *p)
{
    free(p->relations);
    free(p->relation_index);
    p->relations = NULL;
    p->relation_index = NULL;
    p->relation_index_cap = 0;
    p->cap_relations = 0;
    __atomic_store_n(&p->n_relations, 0, __ATOMIC_RELAXED);
}

int relation_find(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref)
{
    lock_relations(p);
    int found = find_locked(p, kind, pid, ref) >= 0;
    unlock_relations(p);
    return found;
}

static int add_locked(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref, uint32_t name)
{
    if (p->n_relations == p->cap_relations) {
        uint32_t cap = p->cap_relations ? p->cap_relations * 2 : 2;
        relation *n = realloc(p->relations, cap * sizeof *n);
        if (!n)
            return -1;
        p->relations = n;
        p->cap_relations = cap;
    }
    relation *r = &p->relations[p->n_relations];
    memset(r, 0, sizeof *r);
    r->kind = (uint8_t)kind;
    r->pid = pid;
    r->name = name;
    if (ref)
        r->ref = *ref;
    __atomic_store_n(&p->n_relations, p->n_relations + 1, __ATOMIC_RELAXED);
    if (p->relation_index && p->n_relations * 2 <= p->relation_index_cap)
        index_insert(p, p->n_relations - 1);
    else if (p->n_relations >= INDEX_FROM)
        index_rebuild(p);
    return 0;
}

int relation_add(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref, uint32_t name)
{
    lock_relations(p);
    int rc = add_locked(p, kind, pid, ref, name);
    unlock_relations(p);
    return rc;
}

int process_add_monitor(process *p, ph_pid watcher, const ph_ref *ref, uint32_t name)
{
    lock_relations(p);
    int rc = p->alive ? add_locked(p, REL_MONITORED_BY, watcher, ref, name) : -1;
    unlock_relations(p);
    return rc;
}

static void remove_at_locked(process *p, uint32_t i)
{
    uint32_t last = p->n_relations - 1;
    if (p->relation_index) {
        index_delete_slot(p, index_slot_of(p, i));
        if (i != last) /* the last relation moves to i */
            p->relation_index[index_slot_of(p, last)] = i + 1;
    }
    p->relations[i] = p->relations[last];
    /* The array keeps its capacity: a worker that serves calls gains and
     * loses a monitor on every call. It is freed when the process ends. */
    __atomic_store_n(&p->n_relations, p->n_relations - 1, __ATOMIC_RELAXED);
}

int relation_remove(process *p, relation_kind kind, ph_pid pid, const ph_ref *ref)
{
    lock_relations(p);
    int i = find_locked(p, kind, pid, ref);
    if (i >= 0)
        remove_at_locked(p, (uint32_t)i);
    unlock_relations(p);
    return i >= 0;
}

int relation_take_monitoring(process *p, const ph_ref *ref, const ph_pid *watched, relation *out)
{
    lock_relations(p);
    int i = find_locked(p, REL_MONITORING, watched ? *watched : (ph_pid){0}, ref);
    if (i >= 0) {
        *out = p->relations[i];
        remove_at_locked(p, (uint32_t)i);
    }
    unlock_relations(p);
    return i >= 0;
}

/* Moves the relations toward node (all when all != 0) out of p into a
 * malloc'd array; returns the count (0 with *out NULL when none). */
static uint32_t take_relations(process *p, uint32_t node, int all, relation **out)
{
    lock_relations(p);
    uint32_t n = 0;
    relation *taken = NULL;
    if (all) {
        taken = p->relations;
        n = p->n_relations;
        p->relations = NULL;
        relations_free(p);
    } else {
        for (uint32_t i = 0; i < p->n_relations; i++)
            n += p->relations[i].pid.node == node;
        taken = n ? malloc(n * sizeof *taken) : NULL;
        if (taken) {
            uint32_t k = 0, i = 0;
            while (i < p->n_relations) {
                if (p->relations[i].pid.node == node) {
                    taken[k++] = p->relations[i];
                    remove_at_locked(p, i);
                } else {
                    i++;
                }
            }
        } else {
            n = 0;
        }
    }
    unlock_relations(p);
    *out = taken;
    return n;
}

/* --- messages built by the runtime ------------------------------------- */

/* The versioned reason is exactly the atom `atom`, however it is encoded
 * (ATOM_EXT in Latin-1 as older nodes and C nodes send it, or UTF-8):
 * atoms are compared as atoms, never as bytes. */
static int reason_is(const char *reason, uint32_t len, const char *atom)
{
    char text[MAXATOMLEN_UTF8];
    int index = 1;
    if (len < 2 || (unsigned char)reason[0] != 131)
        return 0;
    if (ei_decode_atom_as(reason, &index, text, sizeof text, ERLANG_UTF8, NULL, NULL) != 0)
        return 0;
    return (uint32_t)index == len && strcmp(text, atom) == 0;
}

/* Appends a versioned reason term without its version byte. */
static int append_reason(ph_buf *b, const char *reason, uint32_t len)
{
    if (len < 2)
        return -1;
    return ei_x_append_buf(b, reason + 1, (int)len - 1) == 0 ? 0 : -1;
}

/* The buffer an 'EXIT' or 'DOWN' message is built in: the thread's own
 * (a stop batch delivers one per child), or, should handle_info deliver
 * another on this thread before it returns, one of its own. */
static _Thread_local int info_buf_busy;

static ph_buf *info_buf_take(ph_buf *own)
{
    ph_buf *b = info_buf_busy ? NULL : thread_buf(TBUF_INFO);
    if (!b) {
        if (ph_buf_init(own) != 0)
            return NULL;
        b = own;
    }
    b->index = 0;
    if (ei_x_encode_version(b) != 0) {
        if (b == own)
            ph_buf_free(own);
        return NULL;
    }
    if (b != own)
        info_buf_busy = 1;
    return b;
}

static void info_buf_give(ph_buf *b, ph_buf *own)
{
    if (b == own) {
        ph_buf_free(own);
        return;
    }
    info_buf_busy = 0;
    thread_buf_trim(TBUF_INFO, 64 * 1024);
}

/* {'EXIT', From, Reason} to handle_info. */
static void deliver_exit_message(process *p, ph_pid from, const char *reason, uint32_t len)
{
    ph_buf own, *b = info_buf_take(&own);
    if (!b)
        return;
    if (ei_x_encode_tuple_header(b, 3) == 0 && ei_x_encode_atom(b, "EXIT") == 0 &&
        ph_encode_pid(b, from) == 0 && append_reason(b, reason, len) == 0)
        gen_worker_info(p, b->buff, (uint32_t)b->index);
    info_buf_give(b, &own);
}

/* {'DOWN', Ref, process, PidOrNameNode, Reason} to handle_info. */
static void deliver_down_message(process *p, const proc_signal *s)
{
    ph_buf own, *b = info_buf_take(&own);
    if (!b)
        return;
    int ok = ei_x_encode_tuple_header(b, 5) == 0 && ei_x_encode_atom(b, "DOWN") == 0 &&
             ph_encode_ref(b, &s->ref) == 0 && ei_x_encode_atom(b, "process") == 0;
    if (ok && s->name != ATOM_NONE)
        ok = ei_x_encode_tuple_header(b, 2) == 0 && atom_encode(b, s->name) == 0 &&
             atom_encode(b, s->from.node) == 0;
    else if (ok)
        ok = ph_encode_pid(b, s->from) == 0;
    if (ok && append_reason(b, s->payload, s->len) == 0)
        gen_worker_info(p, b->buff, (uint32_t)b->index);
    info_buf_give(b, &own);
}

/* --- exit signals ------------------------------------------------------ */

static int is_parent(const process *p, ph_pid pid)
{
    return p->has_parent && ph_pid_equal(p->parent, pid);
}

static void handle_link_exit(process *p, ph_pid from, const char *reason, uint32_t len)
{
    if (p->trap_exit)
        deliver_exit_message(p, from, reason, len);
    else if (!reason_is(reason, len, "normal"))
        process_exit(p, reason, len);
}

static void handle_exit2(process *p, ph_pid from, const char *reason, uint32_t len)
{
    if (reason_is(reason, len, "kill")) {
        term_bytes killed = runtime_atom_term("killed");
        process_exit(p, killed.bytes, killed.len);
    } else if (p->trap_exit) {
        deliver_exit_message(p, from, reason, len);
    } else if (!reason_is(reason, len, "normal") || ph_pid_equal(from, p->pid)) {
        process_exit(p, reason, len);
    }
}

static void handle_nodedown(process *p, uint32_t node)
{
    term_bytes noconnection = runtime_atom_term("noconnection");
    relation *taken;
    uint32_t n = take_relations(p, node, 0, &taken);
    for (uint32_t i = 0; i < n && p->alive; i++) {
        relation r = taken[i];
        if (r.kind == REL_LINK) {
            handle_link_exit(p, r.pid, noconnection.bytes, noconnection.len);
        } else if (r.kind == REL_MONITORING) {
            proc_signal *s = signal_new(SIG_DOWN, r.pid, noconnection.bytes, noconnection.len);
            if (s) {
                s->ref = r.ref;
                s->name = r.name;
                deliver_down_message(p, s);
                signal_free(s);
            }
        }
    }
    free(taken);
}

/* Handles one signal; returns 1 when s was kept (deferred during a
 * handover) and must not be freed. */
static int handle_signal(process *p, proc_signal *s)
{
    switch ((sig_kind)s->kind) {
    case SIG_MESSAGE: {
        ph_term msg =
            s->checked ? (ph_term){s->payload, 1} : ph_term_from_external(s->payload, (int)s->len);
        if (msg.buf) {
            struct term_trust saved = term_trust_push(s->payload, (int)s->len);
            int diverted = p->handover ? handover_divert(p, s, msg) : HANDOVER_PASS;
            if (diverted == HANDOVER_PASS)
                gen_worker_dispatch(p, msg);
            term_trust_pop(saved);
            if (diverted == HANDOVER_KEPT)
                return 1;
        } else
            LOG_W("process", "dropped a message without a version byte");
        break;
    }
    case SIG_LINK:
        lock_relations(p);
        if (find_locked(p, REL_LINK, s->from, NULL) < 0 &&
            add_locked(p, REL_LINK, s->from, NULL, ATOM_NONE) != 0)
            LOG_E("process", "out of memory adding a link");
        unlock_relations(p);
        break;
    case SIG_UNLINK:
        relation_remove(p, REL_LINK, s->from, NULL);
        route_unlink_ack(p->pid, s->from, s->id);
        break;
    case SIG_UNLINK_ACK:
        break; /* the link was removed when the unlink was sent */
    case SIG_EXIT:
        if (relation_remove(p, REL_LINK, s->from, NULL) || is_parent(p, s->from) ||
            s->id == EXIT_FROM_SUPERVISED_CHILD)
            handle_link_exit(p, s->from, s->payload, s->len);
        break;
    case SIG_EXIT2:
        handle_exit2(p, s->from, s->payload, s->len);
        break;
    case SIG_DOWN: {
        relation r;
        if (relation_take_monitoring(p, &s->ref, s->name == ATOM_NONE ? &s->from : NULL, &r))
            deliver_down_message(p, s);
        break;
    }
    case SIG_NODEDOWN:
        handle_nodedown(p, s->from.node);
        break;
    case SIG_SHUTDOWN: {
        term_bytes shutdown = runtime_atom_term("shutdown");
        process_exit(p, shutdown.bytes, shutdown.len);
        break;
    }
    }
    return 0;
}

static void take_inbox(process *p)
{
    proc_signal *list = atomic_exchange(&p->inbox, NULL);
    if (!list)
        return;
    proc_signal *head = NULL, *tail = list;
    uint64_t n = 0;
    while (list) {
        n++;
        proc_signal *next = list->next;
        list->next = head;
        head = list;
        list = next;
    }
    metric_add(&m_signals_taken, n);
    if (p->queue_tail)
        p->queue_tail->next = head;
    else
        p->queue_head = head;
    p->queue_tail = tail;
}

int process_run(process *p, int budget)
{
    if (!p->alive)
        return 0;
    take_inbox(p);
    while (budget-- > 0 && p->alive) {
        proc_signal *s = p->queue_head;
        if (!s) {
            take_inbox(p);
            if (!(s = p->queue_head))
                break;
        }
        p->queue_head = s->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        if (!handle_signal(p, s))
            signal_free(s);
    }
    return p->alive && p->queue_head != NULL;
}

void process_exit(process *p, const char *reason, uint32_t len)
{
    if (!p->alive)
        return;
    /* From here on no monitor can be added: late ones get noproc. */
    relation *relations;
    lock_relations(p);
    p->alive = 0;
    unlock_relations(p);
    if (p->module->terminate) {
        ph_ctx ctx;
        context_init(&ctx, p);
        ph_term t = ph_term_from_external(reason, (int)len);
        p->module->terminate(&ctx, p->state, t);
        context_release(&ctx);
    }
    p->state = NULL;
    handover_release(p);
    if (p->name != ATOM_NONE)
        names_unregister(p->name, p->pid);
    if (log_enabled(LOG_DEBUG)) {
        char text[256];
        ph_term_format(ph_term_from_external(reason, (int)len), text, sizeof text);
        LOG_D("process", "<%u.%u> (%s) exited: %s", p->pid.num, p->pid.serial, p->module->name,
              text);
    }
    process_unpublish(p);
    if (p->has_parent) {
        /* The parent holds no link entry for us: mark the signal. */
        process *parent = process_get(p->parent);
        proc_signal *s = parent ? signal_new(SIG_EXIT, p->pid, reason, len) : NULL;
        if (s) {
            s->id = EXIT_FROM_SUPERVISED_CHILD;
            process_push(parent, s);
        }
        if (parent)
            process_put(parent);
    }
    uint32_t n = take_relations(p, 0, 1, &relations);
    for (uint32_t i = 0; i < n; i++) {
        relation *r = &relations[i];
        switch ((relation_kind)r->kind) {
        case REL_LINK:
            route_exit(p->pid, r->pid, reason, len, 0);
            break;
        case REL_MONITORED_BY:
            route_down(p->pid, r->name, r->pid, &r->ref, reason, len);
            break;
        case REL_MONITORING:
            route_demonitor(p->pid, r->pid, r->pid.node, r->name, &r->ref);
            break;
        }
    }
    free(relations);
}

void process_answer_dead_signals(ph_pid dead, proc_signal *list)
{
    term_bytes noproc = runtime_atom_term("noproc");
    while (list) {
        proc_signal *s = list;
        list = s->next;
        switch ((sig_kind)s->kind) {
        case SIG_LINK:
            route_exit(dead, s->from, noproc.bytes, noproc.len, 0);
            break;
        case SIG_UNLINK:
            route_unlink_ack(dead, s->from, s->id);
            break;
        default:
            break; /* messages to a dead process vanish, as on the BEAM */
        }
        signal_free(s);
    }
}
