/*
 * ei_alloc.c - the allocator of erl_interface: ei_malloc, ei_realloc and
 * ei_free, which libei calls for the buffers it allocates (each ph_buf's
 * bytes: ei_x_new, and x_fix_buff as a buffer grows). Defined here, they
 * replace libei's own (plain malloc, realloc and free: its ei_malloc.o is
 * then never linked). A buffer of BIGBUF_MAP_MIN (1 MiB) or more becomes a
 * bigbuf mapping (hub/runtime/bigbuf.h): a ph_buf that grows to megabytes
 * (a start's lists, its split by owner, the merged answers, the sync lists)
 * is grown without copying and returned to the kernel when freed, instead
 * of leaving freed heap that the node keeps resident (docs/benchmarks.md,
 * "The hub at scale").
 *
 * Smaller buffers stay plain malloc's, with no header: libei itself mixes
 * the two families (decode_fun.c frees with ei_free what it got from
 * malloc; its receive path reallocs an ei_x_new buffer with realloc), which
 * is harmless for small buffers. The big ones are known by address (a
 * short list: a node has a few at a time), so ei_free and ei_realloc tell
 * them from malloc's. A big ei buffer must not reach free() or realloc():
 * ei_s_print_term's result is freed with ei_free (cnode/ctl_term.c).
 */
#include "ei_glue/ei_alloc.h"

#include "hub/runtime/bigbuf.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void **big; /* the live big buffers */
static size_t n_big, cap_big;

/* ei asks with signed sizes; 0 or less still gets a unique pointer, as
 * from malloc. */
static size_t ei_size(long size)
{
    return size > 0 ? (size_t)size : 1;
}

/* A bigbuf mapping's pointer is 16 bytes into a page (its header): other
 * pointers are not looked up. */
static int may_be_big(const void *p)
{
    return ((uintptr_t)p & 4095u) == 16u;
}

/* Replaces old by new in the list (old NULL: adds new; new NULL: removes
 * old). 0, or -1 when old is not listed (or no memory to add). */
static int big_swap(void *old, void *new)
{
    int rc = -1;
    pthread_mutex_lock(&lock);
    if (!old) {
        if (n_big == cap_big) {
            size_t cap = cap_big ? cap_big * 2 : 16;
            void **n = realloc(big, cap * sizeof *n);
            if (n) {
                big = n;
                cap_big = cap;
            }
        }
        if (n_big < cap_big) {
            big[n_big++] = new;
            rc = 0;
        }
    } else {
        for (size_t i = 0; i < n_big; i++)
            if (big[i] == old) {
                if (new)
                    big[i] = new;
                else
                    big[i] = big[--n_big];
                rc = 0;
                break;
            }
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static int is_big(void *p)
{
    if (!may_be_big(p))
        return 0;
    pthread_mutex_lock(&lock);
    int found = 0;
    for (size_t i = 0; i < n_big && !found; i++)
        found = big[i] == p;
    pthread_mutex_unlock(&lock);
    return found;
}

static void *big_new(size_t n)
{
    void *p = bigbuf_alloc(n);
    if (p && big_swap(NULL, p) != 0) {
        bigbuf_free(p);
        return NULL;
    }
    return p;
}

void *ei_malloc(long size)
{
    size_t n = ei_size(size);
    return n < BIGBUF_MAP_MIN ? malloc(n) : big_new(n);
}

void *ei_realloc(void *orig, long size)
{
    size_t n = ei_size(size);
    if (!orig)
        return ei_malloc(size);
    if (is_big(orig)) {
        if (n >= BIGBUF_MAP_MIN) { /* a mapping stays one: moved, not copied */
            void *p = bigbuf_resize(orig, n);
            if (p && p != orig && big_swap(orig, p) != 0)
                abort(); /* orig was listed a moment ago: the list is corrupt */
            return p;
        }
        void *p = malloc(n);
        if (!p)
            return NULL;
        memcpy(p, orig, n);
        if (big_swap(orig, NULL) != 0)
            abort(); /* as above */
        bigbuf_free(orig);
        return p;
    }
    if (n < BIGBUF_MAP_MIN)
        return realloc(orig, n);
    void *p = big_new(n); /* malloc's -> a mapping: one copy */
    if (!p)
        return NULL;
    size_t old = malloc_usable_size(orig);
    memcpy(p, orig, old < n ? old : n);
    free(orig);
    return p;
}

void ei_free(void *ptr)
{
    if (!ptr)
        return;
    if (is_big(ptr) && big_swap(ptr, NULL) == 0)
        bigbuf_free(ptr);
    else
        free(ptr);
}
