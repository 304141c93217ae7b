/* remote.c - the registered table of remote operations; see remote.h. */
#include "hub/runtime/remote.h"

#include <stdatomic.h>

static _Atomic(const remote_ops *) ops;

void remote_set_ops(const remote_ops *table)
{
    atomic_store_explicit(&ops, table, memory_order_release);
}

const remote_ops *remote(void)
{
    return atomic_load_explicit(&ops, memory_order_acquire);
}

void remote_flush(void)
{
    const remote_ops *r = remote();
    if (r && r->batch_flush)
        r->batch_flush();
}

void remote_for_each_node(void (*fn)(uint32_t node, void *arg), void *arg)
{
    const remote_ops *r = remote();
    if (r)
        r->for_each_node(fn, arg);
}
