/*
 * big_allocs.c - an LD_PRELOAD library that records every malloc, calloc
 * and realloc of BIG_ALLOCS_MIN bytes or more (default 512 KiB) with its
 * call stack, into /tmp/big_allocs.<pid> (docs/benchmarks.md, memory per
 * child: which buffers a 100k start allocates). glibc only (it forwards to
 * __libc_malloc and friends). The stacks are raw return addresses and
 * exported symbols: resolve the rest with addr2line against the phnode
 * binary (its load address is in /proc/PID/maps while it runs).
 *
 *   LD_PRELOAD=build/bench/big_allocs.so build/phnode ...
 */
#include <execinfo.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static __thread int inside; /* backtrace may allocate: no recursion */
static int fd = -1;
static size_t min_size;

static void note(const char *what, size_t size)
{
    if (inside)
        return;
    inside = 1;
    if (!min_size) {
        const char *m = getenv("BIG_ALLOCS_MIN");
        min_size = m ? strtoul(m, NULL, 10) : 512u << 10;
        if (!min_size)
            min_size = 1;
    }
    if (size >= min_size) {
        if (fd < 0) {
            char path[64];
            snprintf(path, sizeof path, "/tmp/big_allocs.%d", (int)getpid());
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        }
        if (fd >= 0) {
            char line[64];
            void *stack[12];
            int n = snprintf(line, sizeof line, "%s %zu\n", what, size);
            int depth = backtrace(stack, 12);
            if (write(fd, line, (size_t)n) == n && depth > 1) {
                backtrace_symbols_fd(stack + 1, depth - 1, fd);
                if (write(fd, "--\n", 3) != 3)
                    fd = -1;
            }
        }
    }
    inside = 0;
}

void *malloc(size_t size)
{
    note("malloc", size);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    note("calloc", n * size);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    note("realloc", size);
    return __libc_realloc(p, size);
}
