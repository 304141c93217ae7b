/* worker_api.c - the ph_* calls a worker makes from its callbacks:
 * identity, sending, links, monitors, exits, stop reasons. */
#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/runtime/log.h"
#include "hub/runtime/route.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/thread_buf.h"

#include <stdatomic.h>
#include <string.h>

ph_pid ph_self(const ph_ctx *ctx)
{
    return ctx->proc->pid;
}

const char *ph_module_name(const ph_ctx *ctx)
{
    return ctx->proc->module->name;
}

/* The versioned copy of t that a signal carries, built in a per-thread
 * buffer (valid until the next call on this thread). */
static int versioned(ph_term t, const char **bytes, uint32_t *len)
{
    if (t.buf && t.index == 1 && (unsigned char)t.buf[0] == 131) {
        /* Versioned already (a ph_buf_init_versioned buffer, or a whole
         * message): checked, then sent as it is, without a copy. */
        int end = ph_term_end(t);
        if (end < 0)
            return -1;
        *bytes = t.buf;
        *len = (uint32_t)end;
        return 0;
    }
    ph_buf *b = thread_buf(TBUF_MESSAGE);
    if (!b)
        return -1;
    b->index = 0;
    if (ei_x_encode_version(b) != 0 || ph_buf_append_term(b, t) != 0)
        return -1;
    *bytes = b->buff;
    *len = (uint32_t)b->index;
    return 0;
}

int ph_send(ph_ctx *ctx, ph_pid to, ph_term msg)
{
    const char *bytes;
    uint32_t len;
    if (versioned(msg, &bytes, &len) != 0)
        return -1;
    process *self = ctx ? ctx->proc : NULL;
    if (self && ph_pid_equal(to, self->pid)) {
        /* Also works from init, before the process is visible to lookups. */
        proc_signal *s = signal_new(SIG_MESSAGE, to, bytes, len);
        if (!s)
            return -1;
        process_push(self, s);
        return 0;
    }
    ph_pid from = self ? self->pid : (ph_pid){runtime_self_node(), 0, 0, runtime_creation()};
    route_message(from, to, bytes, len);
    return 0;
}

int ph_send_from_outside(ph_pid to, ph_term msg)
{
    return ph_send(NULL, to, msg);
}

int ph_send_named(ph_ctx *ctx, const char *name, const char *node, ph_term msg)
{
    uint32_t name_atom = atom_intern(name);
    uint32_t node_atom = node ? atom_intern(node) : runtime_self_node();
    if (name_atom == ATOM_NONE || node_atom == ATOM_NONE)
        return -1;
    const char *bytes;
    uint32_t len;
    if (versioned(msg, &bytes, &len) != 0)
        return -1;
    ph_pid from = ctx ? ctx->proc->pid : (ph_pid){runtime_self_node(), 0, 0, runtime_creation()};
    route_reg_send(from, node_atom, name_atom, bytes, len);
    return 0;
}

int ph_link(ph_ctx *ctx, ph_pid other)
{
    process *p = ctx->proc;
    if (ph_pid_equal(other, p->pid) || relation_find(p, REL_LINK, other, NULL))
        return 0; /* only this process adds its links: no race between find and add */
    if (relation_add(p, REL_LINK, other, NULL, ATOM_NONE) != 0)
        return -1;
    route_link(p->pid, other);
    return 0;
}

int ph_unlink(ph_ctx *ctx, ph_pid other)
{
    static _Atomic uint64_t unlink_ids = 1;
    process *p = ctx->proc;
    if (!relation_remove(p, REL_LINK, other, NULL))
        return 0;
    route_unlink(p->pid, other, atomic_fetch_add(&unlink_ids, 1));
    return 0;
}

int ph_monitor(ph_ctx *ctx, ph_pid pid, ph_ref *ref)
{
    process *p = ctx->proc;
    *ref = ph_make_ref();
    if (relation_add(p, REL_MONITORING, pid, ref, ATOM_NONE) != 0)
        return -1;
    route_monitor(p->pid, pid, pid.node, ATOM_NONE, ref);
    return 0;
}

int ph_demonitor(ph_ctx *ctx, const ph_ref *ref)
{
    process *p = ctx->proc;
    relation r;
    if (!relation_take_monitoring(p, ref, NULL, &r))
        return 0;
    route_demonitor(p->pid, r.pid, r.pid.node, r.name, ref);
    return 1;
}

int ph_exit(ph_ctx *ctx, ph_pid pid, ph_term reason)
{
    const char *bytes;
    uint32_t len;
    if (versioned(reason, &bytes, &len) != 0)
        return -1;
    route_exit(ctx->proc->pid, pid, bytes, len, 1);
    return 0;
}

void ph_trap_exit(ph_ctx *ctx, int on)
{
    ctx->proc->trap_exit = on ? 1 : 0;
}

int ph_set_stop_reason(ph_ctx *ctx, ph_term reason)
{
    if (!ctx->stop_reason.buff && ph_buf_init(&ctx->stop_reason) != 0)
        return -1;
    ctx->stop_reason.index = 0;
    if (ei_x_encode_version(&ctx->stop_reason) != 0 ||
        ph_buf_append_term(&ctx->stop_reason, reason) != 0) {
        ctx->stop_reason.index = 0;
        return -1;
    }
    return 0;
}

int ph_stop_reasonf(ph_ctx *ctx, const char *fmt, ...)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = ph_vbuild(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = ph_set_stop_reason(ctx, ph_buf_term(&b));
    ph_buf_free(&b);
    return rc;
}
