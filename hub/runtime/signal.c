/* signal.c - allocation of mailbox signals: header and payload in one
 * block, the payload copied in (signal_new) or already there (a frame's
 * block, signal_from_block). */
#include "hub/runtime/atoms.h"
#include "hub/runtime/bigbuf.h"
#include "hub/runtime/process.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

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
    proc_signal *s = malloc(sizeof *s + len);
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
    proc_signal *s = malloc(sizeof *s + len);
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
    s->payload = (char *)payload;
    return s;
}

void signal_free(proc_signal *s)
{
    if (s && s->in_block)
        bigbuf_free(s);
    else
        free(s);
}
