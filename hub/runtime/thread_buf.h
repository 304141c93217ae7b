/* thread_buf.h - per-thread scratch buffers for the hot paths (building a
 * reply, a message copy, a control tuple) so they do not allocate per
 * message. Freed when the thread exits. */
#ifndef PH_THREAD_BUF_H
#define PH_THREAD_BUF_H

#include <processhub/term.h>

typedef enum thread_buf_id {
    TBUF_REPLY,   /* gen_worker.c: {Tag, Reply} payloads */
    TBUF_MESSAGE, /* worker_api.c: versioned message copies */
    TBUF_CONTROL, /* dist.c: control tuples */
    TBUF_INFO,    /* process_run.c: 'EXIT' and 'DOWN' messages to handle_info */
    TBUF_COUNT
} thread_buf_id;

/* The calling thread's buffer (allocated on first use); NULL when out of
 * memory. Its content is the caller's until the next call with that id. */
ph_buf *thread_buf(thread_buf_id id);
/* Drops a buffer that grew past keep bytes, so one huge message does not
 * pin memory on a thread forever. */
void thread_buf_trim(thread_buf_id id, int keep);
/* Frees the calling thread's buffers now (for the main thread, whose
 * thread-exit destructors do not run when main returns). */
void thread_bufs_release(void);

#endif
