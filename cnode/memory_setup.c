/*
 * memory_setup.c - malloc behaviour for a node that holds 100k children:
 * big buffers stay in the heap and the heap stays grown.
 *
 * (phnode used to execute itself again with glibc.malloc.hugetlb=1 to give
 * the heap transparent huge pages. That helped only the first batch that
 * grows the heap and depends on the host's glibc and kernel: removed, see
 * docs/benchmarks.md, "Huge pages".)
 */
#include "cnode/memory_setup.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_ALLOCATOR 1 /* the sanitizer replaces malloc */
#else
#define SANITIZER_ALLOCATOR 0
#endif

/* glibc's defaults hand every buffer above 128 KB to mmap and give freed
 * heap back to the kernel: a node that receives a multi-megabyte start
 * batch then page-faults the same memory in again and again. Keep the
 * heap once grown (an Erlang VM keeps its carriers the same way). The
 * multi-megabyte buffers themselves (frames, messages, every ph_buf of a
 * megabyte or more) do not come from malloc: they are bigbufs
 * (hub/runtime/bigbuf.c, ei_glue/ei_alloc.c), mappings with huge pages
 * returned when freed, so they leave no freed heap behind. What stays in
 * the heap is small or bounded; a fixed M_MMAP_THRESHOLD also turns off
 * glibc's dynamic one (which rises after each big free and then puts the
 * next big buffers in the heap). */
#define TOP_PAD (16u << 20)
/* The heap reserved at start for transparent huge pages (below): below
 * M_TRIM_THRESHOLD, so that it is never given back. */
#define HUGE_HEAP (128u << 20)

static void huge_heap(void);

void memory_setup_tune_malloc(void)
{
    if (SANITIZER_ALLOCATOR)
        return;
    if (mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) != 1 ||
        mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024) != 1 || mallopt(M_TOP_PAD, TOP_PAD) != 1) {
        fprintf(stderr, "phnode: malloc tuning refused; running with glibc's defaults\n");
        return;
    }
    huge_heap();
}

/* A node that joins a cluster builds its registry (100k rows), a third of
 * the children and their records from nothing, in one go: on the test VM
 * each 4 KiB page it touches first costs 10-15 us of CPU in the fault, a
 * quarter of the newcomer's CPU (docs/benchmarks.md, "The join"). With
 * transparent huge pages that is one fault per 2 MiB. So the heap is grown
 * once at start by HUGE_HEAP, untouched (not resident), and advised
 * MADV_HUGEPAGE, and every thread allocates from it (one arena: the other
 * arenas would be mappings of glibc's own, without the advice). What a
 * node allocates beyond that comes in 4 KiB pages as before. Without THP
 * (mode never) the advice does nothing; with THP always it is the default
 * already. */
static void huge_heap(void)
{
    if (SANITIZER_ALLOCATOR || mallopt(M_ARENA_MAX, 1) != 1)
        return;
    /* One allocation past the top chunk grows the heap by itself plus the
     * top pad: only its header and the top's are written. */
    if (mallopt(M_TOP_PAD, (int)HUGE_HEAP) != 1)
        return;
    void *p = malloc(1u << 20);
    (void)mallopt(M_TOP_PAD, (int)TOP_PAD);
    if (!p)
        return;
    uintptr_t from = (uintptr_t)p & ~(uintptr_t)0xfff;
    uintptr_t to = (uintptr_t)sbrk(0);
    free(p); /* back into the top chunk, which stays (M_TRIM_THRESHOLD) */
    if (to > from && to - from >= HUGE_HEAP)
        (void)madvise((void *)from, to - from, MADV_HUGEPAGE); /* a hint: ignored if refused */
}
