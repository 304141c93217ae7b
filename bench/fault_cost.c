/*
 * fault_cost.c - the price of memory a process touches for the first time
 * on this machine (issue 15, memory per child): CPU microseconds per 4 KiB
 * page for
 *
 *   touch            writing one byte into each page of a fresh anonymous
 *                    mapping (a page fault each: what a growing heap pays);
 *   populate         MADV_POPULATE_WRITE over a fresh mapping (the kernel
 *                    allocates every page in one call);
 *   after_populate   then writing one byte into each of those pages (on a
 *                    paravirtualised VM the first access can still trap);
 *   retouch          writing into the same pages again (resident: the
 *                    floor of a heap that is kept);
 *   huge             writing one byte into each 4 KiB of a fresh 2 MiB-aligned
 *                    mapping madvised MADV_HUGEPAGE (one fault per 2 MiB where
 *                    the kernel grants transparent huge pages: hub/runtime/
 *                    bigbuf.c's big buffers), per 4 KiB.
 *
 * Prints one JSON object per round.
 *
 *   fault_cost [MB [ROUNDS [IDLE]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define HUGE ((size_t)2 << 20)

static double cpu_us(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) {
        perror("clock_gettime");
        exit(1);
    }
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static volatile char *map_fresh(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

/* A fresh mapping of len bytes on a 2 MiB boundary, madvised for huge
 * pages; *base and *maplen are what to unmap. */
static volatile char *map_huge(size_t len, void **base, size_t *maplen)
{
    *maplen = len + HUGE;
    char *p = (char *)map_fresh(*maplen);
    *base = p;
    char *aligned = (char *)(((unsigned long)p + HUGE - 1) & ~(unsigned long)(HUGE - 1));
    if (madvise(aligned, len, MADV_HUGEPAGE) != 0)
        perror("madvise(MADV_HUGEPAGE)");
    return aligned;
}

static void touch(volatile char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 4096)
        p[i] = 1;
}

/* CPU us to touch a fresh huge-page mapping of len bytes, unmapped after. */
static double huge_touch_us(size_t len)
{
    void *base;
    size_t maplen;
    volatile char *h = map_huge(len, &base, &maplen);
    double t0 = cpu_us();
    touch(h, len);
    double t1 = cpu_us();
    if (munmap(base, maplen) != 0) {
        perror("munmap");
        exit(1);
    }
    return t1 - t0;
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    int idle_s = argc > 3 ? atoi(argv[3]) : 3;
    if (mb == 0 || rounds <= 0 || idle_s < 0) {
        fprintf(stderr, "usage: fault_cost [MB [ROUNDS [IDLE]]]\n");
        return 2;
    }
    size_t len = mb << 20, pages = len / 4096;
    for (int r = 0; r < rounds; r++) {
        volatile char *a = map_fresh(len), *b = map_fresh(len);
        double t0 = cpu_us();
        touch(a, len);
        double t1 = cpu_us();
        int rc = madvise((void *)b, len, MADV_POPULATE_WRITE);
        double t2 = cpu_us();
        touch(b, len);
        double t3 = cpu_us();
        touch(b, len);
        double t4 = cpu_us();
        double huge = huge_touch_us(len);
        if (rc != 0)
            perror("madvise(MADV_POPULATE_WRITE)");
        if (munmap((void *)a, len) != 0 || munmap((void *)b, len) != 0) {
            perror("munmap");
            return 1;
        }
        double again = huge_touch_us(len), after_idle;
        sleep((unsigned)idle_s);
        after_idle = huge_touch_us(len);
        printf("{\"mb\": %zu, \"touch_us_per_page\": %.2f, \"populate_us_per_page\": %.2f, "
               "\"after_populate_us_per_page\": %.2f, \"retouch_us_per_page\": %.3f, "
               "\"huge_us_per_page\": %.2f, \"huge_again_us_per_page\": %.2f, "
               "\"huge_after_idle_us_per_page\": %.2f, \"idle_s\": %d, \"populate_ok\": %s}\n",
               mb, (t1 - t0) / (double)pages, (t2 - t1) / (double)pages, (t3 - t2) / (double)pages,
               (t4 - t3) / (double)pages, huge / (double)pages, again / (double)pages,
               after_idle / (double)pages, idle_s, rc == 0 ? "true" : "false");
    }
    return 0;
}
