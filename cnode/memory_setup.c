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
#include <stdio.h>

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
void memory_setup_tune_malloc(void)
{
    if (SANITIZER_ALLOCATOR)
        return;
    if (mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) != 1 ||
        mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024) != 1 ||
        mallopt(M_TOP_PAD, 16 * 1024 * 1024) != 1)
        fprintf(stderr, "phnode: malloc tuning refused; running with glibc's defaults\n");
}
