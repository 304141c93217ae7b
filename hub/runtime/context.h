/* context.h - what a callback's ph_ctx holds, and the call reply path. */
#ifndef PH_CONTEXT_H
#define PH_CONTEXT_H

#include "hub/runtime/process.h"

struct ph_ctx {
    process *proc;
    ph_buf stop_reason; /* versioned; buff == NULL until set */
};

/* The caller of a $gen_call. tag points at the Tag term's bytes (inside the
 * message, or owned when copied). */
struct ph_from {
    ph_pid caller;
    ph_pid worker; /* replies are sent from here */
    ph_ref alias;  /* valid when is_alias */
    int is_alias;  /* Tag was [alias | Mref]: reply with ALIAS_SEND */
    int tag_len;
    const char *tag;
    int owned;
};

/* Decodes {'$gen_call', {Pid, Tag}, Request}: returns 1 and fills from and
 * request, 0 if msg is not a call, -1 if it is a malformed call. */
int gen_call_decode(ph_term msg, ph_from *from, ph_term *request);

/* Starts a reply payload in b: version, {Tag, ... ; the reply term is then
 * appended by the caller. */
int gen_reply_begin(ph_buf *b, const ph_from *from);
/* Sends a finished reply payload to the caller. */
void gen_reply_send(const ph_from *from, const char *payload, uint32_t len);
/* The same with the reply in pieces (route_message_pieces): the first
 * begun with gen_reply_begin. */
struct iovec;
void gen_reply_send_pieces(const ph_from *from, const struct iovec *payload, int n);

/* Runs the worker callbacks for one message (gen_worker.c). */
void gen_worker_dispatch(process *p, ph_term msg);
/* Calls the module's handle_info with msg (versioned payload in b). */
void gen_worker_info(process *p, const char *payload, uint32_t len);

void context_init(ph_ctx *ctx, process *p);
void context_release(ph_ctx *ctx);
/* The reason a callback asked to stop with (versioned), or normal. */
void context_stop_reason(const ph_ctx *ctx, const char **reason, uint32_t *len);

#endif
