/*
 * bigbuf.c - big, short-lived buffers: malloc's below BIGBUF_MAP_MIN, a
 * mapping of their own above, and the freed mappings kept a moment for the
 * next ones; see bigbuf.h.
 *
 * Each buffer starts with a header, BIGBUF_HEADER bytes before the pointer
 * the caller gets: the usable size, and the length of the mapping (0 for a
 * malloc'd one). Mappings of 2 MiB and more are placed on a 2 MiB boundary
 * and madvised MADV_HUGEPAGE: on the 2-vCPU test VM a 4 KiB page fault
 * costs 10-16 us of CPU, a 2 MiB huge page about 0.3 us per 4 KiB once the
 * host backs it (bench/fault_cost.c).
 */
#include "hub/runtime/bigbuf.h"

#include "hub/runtime/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif

#define HUGE_PAGE ((size_t)2 << 20)

typedef struct header {
    size_t size;    /* usable bytes */
    size_t map_len; /* bytes mapped (the header included); 0: malloc'd */
} header;

/* Keeps the caller's pointer 16-byte aligned, as malloc's. */
#define BIGBUF_HEADER ((sizeof(header) + 15) & ~(size_t)15)

static header *header_of(const void *p)
{
    return (header *)((char *)(uintptr_t)p - BIGBUF_HEADER);
}

static size_t page_size(void)
{
    static _Atomic size_t page; /* any thread may be first: the same value */
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) / to * to;
}

/* The length to map for n bytes: from 1 MiB on, whole huge pages, so that
 * every page of the buffer can be a huge one (a 3 MiB frame would
 * otherwise fault its last 1 MiB in 256 small pages). The rounding is
 * address space; a huge page is backed when the buffer's bytes reach it. */
static size_t map_length(size_t n)
{
    return round_up(n, n >= HUGE_PAGE / 2 ? HUGE_PAGE : page_size());
}

/* Huge pages are advice: where the kernel has none (or THP is "never")
 * the range keeps small pages, which is still correct; said once. */
static void advise_huge(void *base, size_t len)
{
    static _Atomic int told;
    if (len < HUGE_PAGE || madvise(base, len, MADV_HUGEPAGE) == 0)
        return;
    if (!atomic_exchange(&told, 1))
        LOG_I("memory", "no transparent huge pages for big buffers (%s): 4 KiB pages instead",
              strerror(errno));
}

/* A fresh mapping of len bytes (a multiple of the page size), on a 2 MiB
 * boundary when len is 2 MiB or more. */
static void *map_new(size_t len)
{
    if (len < HUGE_PAGE) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    /* Map a huge page more and cut the ends off, so the range is aligned. */
    size_t over = len + HUGE_PAGE;
    char *p = mmap(NULL, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *aligned = (char *)round_up((uintptr_t)p, HUGE_PAGE);
    size_t head = (size_t)(aligned - p), tail = over - head - len;
    if ((head && munmap(p, head) != 0) || (tail && munmap(aligned + len, tail) != 0)) {
        /* Cannot happen for a range we just mapped; never leak it. */
        munmap(p, over);
        return NULL;
    }
    advise_huge(aligned, len);
    return aligned;
}

/* --- freed mappings kept for the next buffers ------------------------------
 *
 * A fresh mapping's pages are zeroed by the kernel as they are first
 * written, and on the test VM the host backs each huge page again too:
 * about 1 ms of CPU per 2 MiB. A 100k start made and freed some 100 MB of
 * big buffers on the asked node, and a quarter of the three nodes' CPU went
 * to those faults. Freed mappings are kept, pages and all, for the next
 * buffers (best fit, whole, at most 4 times the size asked for; a buffer
 * grows into a kept mapping by a copy, cheaper than faulting new pages),
 * up to BIGBUF_KEEP_BYTES and for
 * BIGBUF_KEEP_MS after they were freed (bigbuf_trim, every 10 ms from the
 * I/O thread), then go back to the kernel. */
#define CACHE_SLOTS 16

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kept {
    header *h;
    size_t len;
    uint64_t freed_ms;
    uint64_t seq; /* the order of the frees: the oldest goes first */
} cache[CACHE_SLOTS];
static int n_kept;
static uint64_t frees;
static size_t kept_bytes;
static _Atomic int any_kept; /* n_kept > 0, read without the lock */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void unmap(header *h, size_t len)
{
    if (munmap(h, len) != 0)
        abort(); /* only a range that is not ours fails: memory is corrupt */
}

static void kept_remove_locked(int i)
{
    kept_bytes -= cache[i].len;
    cache[i] = cache[--n_kept];
    atomic_store(&any_kept, n_kept > 0);
}

/* The smallest kept mapping of at least len bytes, taken; NULL if none. */
static header *cache_take(size_t len, size_t *got)
{
    if (!atomic_load(&any_kept))
        return NULL;
    pthread_mutex_lock(&cache_lock);
    int best = -1;
    /* at most 4 times the size asked for: a small buffer that lives long
     * must not hold a big mapping's pages */
    for (int i = 0; i < n_kept; i++)
        if (cache[i].len >= len && cache[i].len / 4 <= len &&
            (best < 0 || cache[i].len < cache[best].len))
            best = i;
    header *h = NULL;
    if (best >= 0) {
        h = cache[best].h;
        *got = cache[best].len;
        kept_remove_locked(best);
    }
    pthread_mutex_unlock(&cache_lock);
    return h;
}

/* Keeps a freed mapping, making room by giving back the oldest. */
static void cache_put(header *h, size_t len)
{
    struct kept out[CACHE_SLOTS];
    int n_out = 0;
    if (len > BIGBUF_KEEP_BYTES) {
        unmap(h, len);
        return;
    }
    pthread_mutex_lock(&cache_lock);
    while (n_kept == CACHE_SLOTS || kept_bytes + len > BIGBUF_KEEP_BYTES) {
        int oldest = 0;
        for (int i = 1; i < n_kept; i++)
            if (cache[i].seq < cache[oldest].seq)
                oldest = i;
        out[n_out++] = cache[oldest];
        kept_remove_locked(oldest);
    }
    cache[n_kept++] = (struct kept){h, len, now_ms(), ++frees};
    kept_bytes += len;
    atomic_store(&any_kept, 1);
    pthread_mutex_unlock(&cache_lock);
    for (int i = 0; i < n_out; i++)
        unmap(out[i].h, out[i].len);
}

/* Gives back the kept mappings freed at least keep_ms ago. */
static void trim(uint64_t keep_ms)
{
    struct kept out[CACHE_SLOTS];
    int n_out = 0;
    if (!atomic_load(&any_kept))
        return;
    pthread_mutex_lock(&cache_lock);
    uint64_t now = now_ms(); /* after the lock: no entry is newer */
    for (int i = 0; i < n_kept;) {
        if (now - cache[i].freed_ms >= keep_ms) {
            out[n_out++] = cache[i];
            kept_remove_locked(i);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    for (int i = 0; i < n_out; i++)
        unmap(out[i].h, out[i].len);
}

void bigbuf_trim(void)
{
    trim(BIGBUF_KEEP_MS);
}

void bigbuf_release_kept(void)
{
    trim(0);
}

size_t bigbuf_kept_bytes(void)
{
    pthread_mutex_lock(&cache_lock);
    size_t n = kept_bytes;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

void *bigbuf_alloc(size_t len)
{
    if (len == 0 || len > SIZE_MAX / 2)
        return NULL;
    header *h;
    if (len < BIGBUF_MAP_MIN) {
        h = malloc(BIGBUF_HEADER + len);
        if (!h)
            return NULL;
        h->map_len = 0;
    } else {
        size_t map_len = map_length(BIGBUF_HEADER + len), got = 0;
        h = cache_take(map_len, &got);
        if (h)
            map_len = got;
        else if (!(h = map_new(map_len)))
            return NULL;
        h->map_len = map_len;
    }
    h->size = len;
    return (char *)h + BIGBUF_HEADER;
}

void *bigbuf_resize(void *p, size_t len)
{
    if (!p)
        return bigbuf_alloc(len);
    if (len == 0 || len > SIZE_MAX / 2)
        return NULL;
    header *h = header_of(p);
    if (h->map_len == 0 && len < BIGBUF_MAP_MIN) {
        header *n = realloc(h, BIGBUF_HEADER + len);
        if (!n)
            return NULL;
        n->size = len;
        return (char *)n + BIGBUF_HEADER;
    }
    if (h->map_len == 0 || len < BIGBUF_MAP_MIN) {
        /* Crossing between malloc and a mapping: a copy, once. */
        void *n = bigbuf_alloc(len);
        if (!n)
            return NULL;
        memcpy(n, p, h->size < len ? h->size : len);
        bigbuf_free(p);
        return n;
    }
    /* A mapping only grows: its pages go back when it is freed. */
    size_t map_len = map_length(BIGBUF_HEADER + len), got = 0;
    header *kept;
    if (map_len > h->map_len && (kept = cache_take(map_len, &got)) != NULL) {
        /* into a kept mapping: a copy of the bytes so far, no new pages */
        memcpy(kept, h, BIGBUF_HEADER + h->size);
        cache_put(h, h->map_len);
        h = kept;
        h->map_len = got;
    } else if (map_len > h->map_len) {
        /* The kernel moves the pages, not their bytes. */
        void *n = mremap(h, h->map_len, map_len, MREMAP_MAYMOVE);
        if (n == MAP_FAILED)
            return NULL;
        h = n;
        h->map_len = map_len;
        advise_huge(h, map_len);
    }
    h->size = len;
    return (char *)h + BIGBUF_HEADER;
}

size_t bigbuf_size(const void *p)
{
    return header_of(p)->size;
}

int bigbuf_is_mapped(const void *p)
{
    return header_of(p)->map_len != 0;
}

void bigbuf_free(void *p)
{
    if (!p)
        return;
    header *h = header_of(p);
    if (h->map_len == 0)
        free(h);
    else
        cache_put(h, h->map_len);
}
