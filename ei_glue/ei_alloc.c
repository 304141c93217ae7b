/*
 * ei_alloc.c - the allocator of erl_interface: ei_malloc, ei_realloc and
 * ei_free, which libei calls for every buffer it allocates (each ph_buf's
 * bytes: ei_x_new, and x_fix_buff as a buffer grows). Defined here, they
 * replace libei's own (plain malloc, realloc and free: its ei_malloc.o is
 * then never linked) and allocate bigbufs (hub/runtime/bigbuf.h): a ph_buf
 * that grows to megabytes (a start's reply, a member's split, the lists of
 * a 100k start) becomes a mapping of its own, grown without copying and
 * returned to the kernel when freed, instead of leaving freed heap that
 * the node keeps resident (docs/benchmarks.md, "The hub at scale").
 *
 * Every ph_buf's memory must therefore be freed with ei_x_free or
 * ph_buf_free and grown with ph_buf_reserve or ei, never with free() or
 * realloc() (term.c's ph_buf_reserve uses ei_realloc).
 */
#include "ei_glue/ei_alloc.h"

#include "hub/runtime/bigbuf.h"

#include <stddef.h>

/* ei asks with signed sizes; 0 or less still gets a unique pointer, as
 * from malloc. */
static size_t ei_size(long size)
{
    return size > 0 ? (size_t)size : 1;
}

void *ei_malloc(long size)
{
    return bigbuf_alloc(ei_size(size));
}

void *ei_realloc(void *orig, long size)
{
    return bigbuf_resize(orig, ei_size(size));
}

void ei_free(void *ptr)
{
    bigbuf_free(ptr);
}
