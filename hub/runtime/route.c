/* route.c - local delivery or hand-off to the distribution layer; see route.h. */
#include "hub/runtime/route.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/names.h"
#include "hub/runtime/process.h"
#include "hub/runtime/remote.h"
#include "hub/runtime/runtime.h"

#include <sys/uio.h>

/* A remote operation through the registered table; dropped without one. */
#define remote_call(op, ...)                                                                       \
    do {                                                                                           \
        const remote_ops *r_ = remote();                                                           \
        if (r_)                                                                                    \
            r_->op(__VA_ARGS__);                                                                   \
    } while (0)

static int node_is_local(uint32_t node)
{
    return node == runtime_self_node();
}

/* Pushes a new signal to the live local process pid. 0, or -1 if there is
 * no such process (or no memory: logged). */
static int push_local(ph_pid to, proc_signal *s)
{
    if (!s) {
        LOG_E("route", "out of memory delivering a signal");
        return -1;
    }
    process *p = process_get(to);
    if (!p) {
        signal_free(s);
        return -1;
    }
    process_push(p, s);
    process_put(p);
    return 0;
}

static int push_to_name(uint32_t name, proc_signal *s, ph_pid *resolved)
{
    ph_pid pid;
    if (names_whereis(name, &pid) != 0) {
        signal_free(s);
        return -1;
    }
    if (resolved)
        *resolved = pid;
    return push_local(pid, s);
}

void route_message(ph_pid from, ph_pid to, const char *msg, uint32_t len)
{
    if (!node_is_local(to.node)) {
        remote_call(send, from, to, msg, len);
        return;
    }
    push_local(to, signal_new(SIG_MESSAGE, from, msg, len));
}

void route_reg_send(ph_pid from, uint32_t node, uint32_t name, const char *msg, uint32_t len)
{
    if (!node_is_local(node)) {
        remote_call(reg_send, from, node, name, msg, len);
        return;
    }
    push_to_name(name, signal_new(SIG_MESSAGE, from, msg, len), NULL);
}

static proc_signal *checked_message(ph_pid from, const char *msg, uint32_t len)
{
    proc_signal *s = signal_new(SIG_MESSAGE, from, msg, len);
    if (s)
        s->checked = 1;
    return s;
}

void route_checked_message(ph_pid from, ph_pid to, const char *msg, uint32_t len)
{
    push_local(to, checked_message(from, msg, len));
}

void route_checked_reg_send(ph_pid from, uint32_t name, const char *msg, uint32_t len)
{
    push_to_name(name, checked_message(from, msg, len), NULL);
}

void route_checked_signal(ph_pid to, proc_signal *s)
{
    push_local(to, s);
}

void route_checked_reg_signal(uint32_t name, proc_signal *s)
{
    push_to_name(name, s, NULL);
}

void route_message_pieces(ph_pid from, ph_pid to, const struct iovec *msg, int n)
{
    if (!node_is_local(to.node)) {
        remote_call(send_pieces, from, to, msg, n);
        return;
    }
    push_local(to, signal_new_pieces(SIG_MESSAGE, from, msg, n));
}

void route_alias_send_pieces(ph_pid from, const ph_ref *alias, const struct iovec *msg, int n)
{
    if (!node_is_local(alias->node))
        remote_call(alias_send_pieces, from, alias, msg, n);
    /* Local aliases are not used by this runtime (route_alias_send). */
}

void route_alias_send(ph_pid from, const ph_ref *alias, const char *msg, uint32_t len)
{
    if (!node_is_local(alias->node))
        remote_call(alias_send, from, alias, msg, len);
    /* Local aliases are not used by this runtime: C callers use plain refs. */
}

void route_link(ph_pid from, ph_pid to)
{
    if (!node_is_local(to.node)) {
        remote_call(link, from, to);
        return;
    }
    if (push_local(to, signal_new(SIG_LINK, from, NULL, 0)) != 0) {
        term_bytes noproc = runtime_atom_term("noproc");
        route_exit(to, from, noproc.bytes, noproc.len, 0);
    }
}

void route_unlink(ph_pid from, ph_pid to, uint64_t id)
{
    if (!node_is_local(to.node)) {
        remote_call(unlink_id, from, to, id);
        return;
    }
    proc_signal *s = signal_new(SIG_UNLINK, from, NULL, 0);
    if (s)
        s->id = id;
    if (push_local(to, s) != 0)
        route_unlink_ack(to, from, id);
}

void route_unlink_ack(ph_pid from, ph_pid to, uint64_t id)
{
    if (!node_is_local(to.node)) {
        remote_call(unlink_id_ack, from, to, id);
        return;
    }
    proc_signal *s = signal_new(SIG_UNLINK_ACK, from, NULL, 0);
    if (s)
        s->id = id;
    push_local(to, s);
}

void route_exit(ph_pid from, ph_pid to, const char *reason, uint32_t len, int exit2)
{
    if (!node_is_local(to.node)) {
        remote_call(exit, from, to, reason, len, exit2);
        return;
    }
    push_local(to, signal_new(exit2 ? SIG_EXIT2 : SIG_EXIT, from, reason, len));
}

/* The live local process a monitor targets: by pid, or by registered name. */
static process *monitor_target(ph_pid target, uint32_t name)
{
    if (name == ATOM_NONE)
        return process_get(target);
    ph_pid pid;
    return names_whereis(name, &pid) == 0 ? process_get(pid) : NULL;
}

void route_monitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref)
{
    uint32_t target_node = name == ATOM_NONE ? target.node : node;
    if (!node_is_local(target_node)) {
        remote_call(monitor, watcher, target, node, name, ref);
        return;
    }
    /* Applied here, on the sender's thread, without waking the target. */
    process *p = monitor_target(target, name);
    int rc = p ? process_add_monitor(p, watcher, ref, name) : -1;
    if (p)
        process_put(p);
    if (rc != 0) {
        term_bytes noproc = runtime_atom_term("noproc");
        route_down(target, name, watcher, ref, noproc.bytes, noproc.len);
    }
}

void route_demonitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref)
{
    uint32_t target_node = name == ATOM_NONE ? target.node : node;
    if (!node_is_local(target_node)) {
        remote_call(demonitor, watcher, target, node, name, ref);
        return;
    }
    /* A by-name monitor lives on whatever process held the name when it was
     * set up; the demonitor of a name that moved finds nothing, harmlessly. */
    process *p = monitor_target(target, name);
    if (p) {
        relation_remove(p, REL_MONITORED_BY, watcher, ref);
        process_put(p);
    }
}

void route_down(ph_pid watched, uint32_t name, ph_pid watcher, const ph_ref *ref,
                const char *reason, uint32_t len)
{
    if (!node_is_local(watcher.node)) {
        remote_call(monitor_exit, watched, name, watcher, ref, reason, len);
        return;
    }
    proc_signal *s = signal_new(SIG_DOWN, watched, reason, len);
    if (s) {
        s->ref = *ref;
        s->name = name;
    }
    push_local(watcher, s);
}

static void push_nodedown(process *p, void *arg)
{
    uint32_t node = *(uint32_t *)arg;
    /* Racy read of n_relations is fine: a process that gains a relation to
     * that node after this is told by the failed send instead. */
    if (__atomic_load_n(&p->n_relations, __ATOMIC_RELAXED) == 0)
        return;
    ph_pid from = {.node = node, .num = 0, .serial = 0, .creation = 0};
    proc_signal *s = signal_new(SIG_NODEDOWN, from, NULL, 0);
    if (s)
        process_push(p, s);
}

void route_nodedown(uint32_t node)
{
    process_for_each(push_nodedown, &node);
}
