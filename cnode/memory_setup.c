/*
 * memory_setup.c - malloc behaviour for a node that holds 100k children.
 *
 * A big start batch grows the heap by tens of megabytes at once. With
 * 4 KiB pages every new page costs a fault, and on a virtual machine a
 * fault is expensive: a quarter of a cold 100k start was spent there.
 * glibc can mark its heap for transparent huge pages (2 MiB, one fault
 * each), but only through the GLIBC_TUNABLES environment variable, which
 * it reads once at process start. So phnode sets it and executes itself
 * again: the pid, the arguments and the rest of the environment stay the
 * same. A user who sets glibc.malloc.hugetlb (to 0, say) keeps that.
 */
#include "cnode/memory_setup.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HUGETLB_TUNABLE "glibc.malloc.hugetlb"
#define THP_MODE_FILE "/sys/kernel/mm/transparent_hugepage/enabled"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_ALLOCATOR 1 /* the sanitizer replaces malloc */
#else
#define SANITIZER_ALLOCATOR 0
#endif

/* True when the kernel gives huge pages only to regions marked for them:
 * the one mode where the tunable changes anything ("always" already gives
 * them, "never" never does). */
static int thp_mode_is_madvise(void)
{
    FILE *f = fopen(THP_MODE_FILE, "r");
    if (!f)
        return 0;
    char line[128];
    int madvise = fgets(line, sizeof line, f) != NULL && strstr(line, "[madvise]") != NULL;
    fclose(f);
    return madvise;
}

void memory_setup_huge_pages(char **argv)
{
    if (SANITIZER_ALLOCATOR)
        return;
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (tunables && strstr(tunables, HUGETLB_TUNABLE))
        return; /* already set, by us before the exec or by the user */
    if (!thp_mode_is_madvise())
        return;
    char value[1024];
    int n = tunables && *tunables
                ? snprintf(value, sizeof value, "%s:" HUGETLB_TUNABLE "=1", tunables)
                : snprintf(value, sizeof value, HUGETLB_TUNABLE "=1");
    if (n < 0 || (size_t)n >= sizeof value)
        return;
    if (setenv("GLIBC_TUNABLES", value, 1) != 0)
        return;
    /* The resolved path, not /proc/self/exe: the process name (ps, top,
     * pgrep) comes from the executed file's name. */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        execv(self, argv);
    }
    /* Still here: run on without huge pages, and leave the environment as
     * it was for anything this process starts. */
    fprintf(stderr, "phnode: re-exec for huge pages failed; running with 4 KiB pages\n");
    if (tunables)
        setenv("GLIBC_TUNABLES", tunables, 1);
    else
        unsetenv("GLIBC_TUNABLES");
}

/* glibc's defaults hand every buffer above 128 KB to mmap and give freed
 * heap back to the kernel: a node that receives a multi-megabyte start
 * batch then page-faults the same memory in again and again. Keep big
 * buffers in the heap and the heap once grown (an Erlang VM keeps its
 * carriers the same way). */
void memory_setup_tune_malloc(void)
{
    if (SANITIZER_ALLOCATOR)
        return;
    if (mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) != 1 ||
        mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024) != 1 ||
        mallopt(M_TOP_PAD, 16 * 1024 * 1024) != 1)
        fprintf(stderr, "phnode: malloc tuning refused; running with glibc's defaults\n");
}
