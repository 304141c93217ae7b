/* spawn.c - starting a worker: create, register its name, run init in the
 * caller's thread, link, then make it visible to lookups. */
#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/runtime/names.h"
#include "hub/runtime/runtime.h"

static void error_term(ph_buf *error, const char *fmt, ...)
{
    if (!error)
        return;
    va_list ap;
    va_start(ap, fmt);
    ph_vbuild(error, fmt, ap);
    va_end(ap);
}

static void append_reason(ph_buf *error, const char *reason, uint32_t len)
{
    if (error)
        ph_buf_append_term(error, ph_term_from_external(reason, (int)len));
}

int ph_spawn(ph_ctx *ctx, const char *module_name, ph_term args, const ph_spawn_opts *opts,
             ph_pid *pid, ph_buf *error)
{
    const ph_worker_module *m = ph_find_module(module_name);
    if (!m) {
        error_term(error, "{unknown_module, ~a}", module_name);
        return -1;
    }
    process *p = process_create(m);
    if (!p) {
        error_term(error, "system_limit");
        return -1;
    }
    /* Marked as running so a message sent to itself during init does not
     * put it on another scheduler before init returns. */
    atomic_store(&p->scheduled, 1);
    if (opts && opts->name) {
        uint32_t name = atom_intern(opts->name);
        ph_pid holder;
        if (name == ATOM_NONE) {
            error_term(error, "{bad_name, ~s}", opts->name);
            goto fail;
        }
        if (names_register(name, p->pid, &holder) != 0) {
            if (error && ei_x_encode_tuple_header(error, 2) == 0 &&
                ei_x_encode_atom(error, "already_started") == 0)
                ph_encode_pid(error, holder);
            goto fail;
        }
        p->name = name;
    }
    if (m->init) {
        ph_ctx c;
        context_init(&c, p);
        ph_result r = m->init(&c, args, &p->state);
        if (r != PH_OK) {
            if (c.stop_reason.buff && c.stop_reason.index > 1)
                append_reason(error, c.stop_reason.buff, (uint32_t)c.stop_reason.index);
            else
                error_term(error, "init_failed");
            context_release(&c);
            if (p->name != ATOM_NONE)
                names_unregister(p->name, p->pid);
            goto fail;
        }
        context_release(&c);
    }
    if (opts && opts->supervised && ctx) {
        p->parent = ctx->proc->pid;
        p->has_parent = 1;
    } else if (opts && opts->link && ctx) {
        relation_add(p, REL_LINK, ctx->proc->pid, NULL, ATOM_NONE);
        relation_add(ctx->proc, REL_LINK, p->pid, NULL, ATOM_NONE);
    }
    process_publish(p);
    *pid = p->pid;
    atomic_store(&p->scheduled, 0);
    if (atomic_load(&p->inbox))
        process_schedule(p);
    process_put(p);
    return 0;
fail:
    p->alive = 0;
    atomic_store(&p->scheduled, 0);
    process_put(p);
    return -1;
}

int ph_whereis(const char *name, ph_pid *pid)
{
    uint32_t atom = atom_lookup(name);
    return atom == ATOM_NONE ? -1 : names_whereis(atom, pid);
}
