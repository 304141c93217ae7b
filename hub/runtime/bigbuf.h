/*
 * bigbuf.h - memory for big, short-lived buffers: frames read from and
 * written to the network, and the messages read from them. Below
 * BIGBUF_MAP_MIN a buffer is malloc's; from there on it is a mapping of its
 * own, with transparent huge pages asked for where the range allows. A
 * freed mapping is kept, with its pages, for the next big buffers for up to
 * BIGBUF_KEEP_MS (at most BIGBUF_KEEP_BYTES of them), then goes back to the
 * kernel: a multi-megabyte frame leaves no freed heap behind (the resident
 * memory a node keeps after a big start), the buffers of one big request
 * reuse the pages of the last one's instead of faulting fresh ones, and
 * those pages cost one fault per 2 MiB instead of one per 4 KiB where the
 * kernel grants huge pages (docs/benchmarks.md, "The hub at scale").
 *
 * Any thread may allocate and free; a buffer is used by one thread at a
 * time (its owner hands it over, never shares it).
 */
#ifndef PH_BIGBUF_H
#define PH_BIGBUF_H

#include <stddef.h>

/* From this size on, a buffer is its own mapping. */
#define BIGBUF_MAP_MIN ((size_t)1 << 20)
/* Freed mappings kept for reuse: at most this many bytes, for this long. */
#define BIGBUF_KEEP_BYTES ((size_t)64 << 20)
#define BIGBUF_KEEP_MS 1000

/* len usable bytes (len > 0), or NULL when out of memory. */
void *bigbuf_alloc(size_t len);
/* Grows (or shrinks) p to len usable bytes, keeping its content up to the
 * smaller size; the buffer may move (a mapping moves without copying). NULL
 * when out of memory: p is then unchanged and still the caller's. */
void *bigbuf_resize(void *p, size_t len);
/* The usable bytes of p (at least what was asked for). */
size_t bigbuf_size(const void *p);
/* Nonzero when p is a mapping of its own (for tests and metrics). */
int bigbuf_is_mapped(const void *p);
void bigbuf_free(void *p);
/* Gives back the kept mappings freed BIGBUF_KEEP_MS ago or more (the I/O
 * thread calls it every 10 ms). */
void bigbuf_trim(void);
/* Gives back every kept mapping (at exit, and in tests). */
void bigbuf_release_kept(void);
/* The bytes kept now (for tests and metrics). */
size_t bigbuf_kept_bytes(void);

#endif
