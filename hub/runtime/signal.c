/* signal.c - allocation of mailbox signals: header and payload in one
 * block, the payload copied in (signal_new) or already there (a frame's
 * block, signal_from_block); small ones recycled per thread. */
#include "hub/runtime/atoms.h"
#include "hub/runtime/bigbuf.h"
#include "hub/runtime/process.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* Most signals are small (a call, a reply, an exit, a monitor's 'DOWN')
 * and go from one thread to another by the thousand: a stop batch sends an
 * exit to each child and gets an 'EXIT' back from each. From malloc's one
 * arena that is two lock round trips per signal, contended between the
 * threads. Signals with up to SIGNAL_SMALL payload bytes are blocks of one
 * size instead, and a thread that frees one keeps it (up to
 * SIGNAL_CACHE_MAX) for its next: the threads pass blocks around without
 * the lock. A thread's blocks go back to malloc when it exits. */
#define SIGNAL_SMALL 160
#define SIGNAL_CACHE_MAX 1024

/* Under AddressSanitizer a cached block is poisoned (all but its link), so
 * that a use after signal_free is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CACHED_POISON(s)                                                                           \
    ASAN_POISON_MEMORY_REGION((char *)(s) + sizeof(proc_signal *),                                 \
                              sizeof(proc_signal) + SIGNAL_SMALL - sizeof(proc_signal *))
#define CACHED_UNPOISON(s) ASAN_UNPOISON_MEMORY_REGION((s), sizeof(proc_signal) + SIGNAL_SMALL)
#else
#define CACHED_POISON(s) ((void)(s))
#define CACHED_UNPOISON(s) ((void)(s))
#endif

typedef struct signal_cache {
    proc_signal *head;
    unsigned n;
} signal_cache;

static _Thread_local signal_cache *cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;

static void cache_drop(void *arg)
{
    signal_cache *c = arg;
    while (c->head) {
        proc_signal *s = c->head;
        c->head = s->next;
        CACHED_UNPOISON(s);
        free(s);
    }
    free(c);
    cache = NULL;
}

static void cache_key_make(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_drop) == 0;
}

/* The calling thread's cache, made on first use; NULL without one (no
 * memory, or no key for its release at thread exit): plain malloc then. */
static signal_cache *thread_cache(void)
{
    if (cache)
        return cache;
    if (pthread_once(&cache_once, cache_key_make) != 0 || !cache_key_ok)
        return NULL;
    signal_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_setspecific(cache_key, c) != 0) {
        free(c);
        return NULL;
    }
    return cache = c;
}

void signal_cache_release(void)
{
    if (cache) {
        (void)pthread_setspecific(cache_key, NULL);
        cache_drop(cache);
    }
}

static proc_signal *signal_alloc(uint32_t len)
{
    proc_signal *s;
    if (len > SIGNAL_SMALL) {
        if ((s = malloc(sizeof(proc_signal) + len)) != NULL)
            s->small = 0;
        return s;
    }
    signal_cache *c = cache;
    if (c && c->head) {
        s = c->head;
        c->head = s->next;
        c->n--;
        CACHED_UNPOISON(s);
    } else if (!(s = malloc(sizeof(proc_signal) + SIGNAL_SMALL))) {
        return NULL;
    }
    s->small = 1;
    return s;
}

static void signal_init(proc_signal *s, sig_kind kind, ph_pid from, uint32_t len)
{
    s->next = NULL;
    s->kind = (uint8_t)kind;
    s->checked = 0;
    s->in_block = 0;
    s->name = ATOM_NONE;
    s->id = 0;
    s->from = from;
    memset(&s->ref, 0, sizeof s->ref);
    s->len = len;
}

proc_signal *signal_new(sig_kind kind, ph_pid from, const char *payload, uint32_t len)
{
    proc_signal *s = signal_alloc(len);
    if (!s)
        return NULL;
    signal_init(s, kind, from, len);
    s->payload = s->inline_payload;
    if (len)
        memcpy(s->payload, payload, len);
    return s;
}

proc_signal *signal_new_pieces(sig_kind kind, ph_pid from, const struct iovec *payload, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += payload[i].iov_len;
    if (len > UINT32_MAX)
        return NULL;
    proc_signal *s = signal_alloc((uint32_t)len);
    if (!s)
        return NULL;
    signal_init(s, kind, from, (uint32_t)len);
    s->payload = s->inline_payload;
    char *out = s->payload;
    for (int i = 0; i < n; i++) {
        if (payload[i].iov_len)
            memcpy(out, payload[i].iov_base, payload[i].iov_len);
        out += payload[i].iov_len;
    }
    return s;
}

/* A block is a bigbuf that starts with the room for the header. */
char *signal_block_alloc(size_t len)
{
    if (len > SIZE_MAX - sizeof(proc_signal))
        return NULL;
    char *b = bigbuf_alloc(sizeof(proc_signal) + len);
    return b ? b + sizeof(proc_signal) : NULL;
}

char *signal_block_resize(char *block, size_t len)
{
    if (len > SIZE_MAX - sizeof(proc_signal))
        return NULL;
    char *b = bigbuf_resize(block - sizeof(proc_signal), sizeof(proc_signal) + len);
    return b ? b + sizeof(proc_signal) : NULL;
}

void signal_block_free(char *block)
{
    if (block)
        bigbuf_free(block - sizeof(proc_signal));
}

proc_signal *signal_from_block(char *block, sig_kind kind, ph_pid from, const char *payload,
                               uint32_t len)
{
    proc_signal *s = (proc_signal *)(void *)(block - sizeof(proc_signal));
    signal_init(s, kind, from, len);
    s->in_block = 1;
    s->small = 0;
    s->payload = (char *)payload;
    return s;
}

void signal_free(proc_signal *s)
{
    if (!s)
        return;
    if (s->in_block) {
        bigbuf_free(s);
        return;
    }
    signal_cache *c = s->small ? thread_cache() : NULL;
    if (c && c->n < SIGNAL_CACHE_MAX) {
        s->next = c->head;
        c->head = s;
        c->n++;
        CACHED_POISON(s);
    } else {
        free(s);
    }
}
