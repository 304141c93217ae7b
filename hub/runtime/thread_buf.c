/* thread_buf.c - see thread_buf.h. A pthread key (not _Thread_local) so the
 * buffers are freed by the key's destructor when a thread exits. */
#include "hub/runtime/thread_buf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct thread_bufs {
    ph_buf bufs[TBUF_COUNT];
} thread_bufs;

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void free_bufs(void *arg)
{
    thread_bufs *t = arg;
    for (int i = 0; i < TBUF_COUNT; i++)
        if (t->bufs[i].buff)
            ph_buf_free(&t->bufs[i]);
    free(t);
}

static void make_key(void)
{
    pthread_key_create(&key, free_bufs);
}

static thread_bufs *get_bufs(int create)
{
    pthread_once(&key_once, make_key);
    thread_bufs *t = pthread_getspecific(key);
    if (!t && create) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

ph_buf *thread_buf(thread_buf_id id)
{
    thread_bufs *t = get_bufs(1);
    if (!t)
        return NULL;
    ph_buf *b = &t->bufs[id];
    if (!b->buff && ph_buf_init(b) != 0)
        return NULL;
    return b;
}

void thread_buf_trim(thread_buf_id id, int keep)
{
    thread_bufs *t = get_bufs(0);
    if (t && t->bufs[id].buff && t->bufs[id].buffsz > keep) {
        ph_buf_free(&t->bufs[id]);
        memset(&t->bufs[id], 0, sizeof t->bufs[id]);
    }
}

void thread_bufs_release(void)
{
    thread_bufs *t = get_bufs(0);
    if (t) {
        pthread_setspecific(key, NULL);
        free_bufs(t);
    }
}
