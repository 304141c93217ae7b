/*
 * gen_worker.c - the gen_server protocol on top of a process: decoding
 * $gen_call / $gen_cast, running the module's callbacks, and replying.
 *
 * A reply goes to the caller's alias with ALIAS_SEND when the call's Tag is
 * [alias | Mref] (what OTP 24+ gen:call sends), so a reply that arrives after
 * the caller gave up is dropped by the caller's node, as with OTP's own
 * gen:reply. Plain-ref tags (C callers) get a SEND to the caller's pid.
 */
#include "ei_glue/term_trust.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/context.h"
#include "hub/runtime/handover.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"
#include "hub/runtime/route.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/thread_buf.h"

#include <stdlib.h>
#include <string.h>

#define REPLY_BUF_KEEP (1 << 20)

static int atom_equals(const char *buf, int *index, const char *want)
{
    int type, size;
    char atom[MAXATOMLEN_UTF8];
    if (ei_get_type(buf, index, &type, &size) != 0 || size != (int)strlen(want))
        return 0;
    if (type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT && type != ERL_ATOM_UTF8_EXT &&
        type != ERL_SMALL_ATOM_UTF8_EXT)
        return 0;
    if (ei_decode_atom(buf, index, atom) != 0)
        return 0;
    return strcmp(atom, want) == 0;
}

/* Tag = [alias | Mref] ? */
static void analyse_tag(ph_from *from)
{
    int index = 0, arity;
    from->is_alias = 0;
    if (ei_decode_list_header(from->tag, &index, &arity) != 0 || arity != 1)
        return;
    if (!atom_equals(from->tag, &index, "alias"))
        return;
    ph_term ref_term = {from->tag, index};
    if (ph_decode_ref(ref_term, &from->alias) == 0)
        from->is_alias = 1;
}

int gen_call_decode(ph_term msg, ph_from *from, ph_term *request)
{
    const char *buf = msg.buf;
    int index = msg.index, arity;
    if (ei_decode_tuple_header(buf, &index, &arity) != 0 || arity != 3)
        return 0;
    if (!atom_equals(buf, &index, "$gen_call"))
        return 0;
    if (ei_decode_tuple_header(buf, &index, &arity) != 0 || arity != 2)
        return -1;
    ph_term pid_term = {buf, index};
    if (ph_decode_pid(pid_term, &from->caller) != 0 || term_skip_valid(buf, &index) != 0)
        return -1;
    int tag_start = index;
    if (term_skip_valid(buf, &index) != 0)
        return -1;
    from->tag = buf + tag_start;
    from->tag_len = index - tag_start;
    from->owned = 0;
    analyse_tag(from);
    request->buf = buf;
    request->index = index;
    /* The whole message was validated when it arrived (ph_term_from_external). */
    return 1;
}

int gen_reply_begin(ph_buf *b, const ph_from *from)
{
    b->index = 0;
    if (ei_x_encode_version(b) != 0 || ei_x_encode_tuple_header(b, 2) != 0)
        return -1;
    return ei_x_append_buf(b, from->tag, from->tag_len) == 0 ? 0 : -1;
}

void gen_reply_send(const ph_from *from, const char *payload, uint32_t len)
{
    if (from->is_alias)
        route_alias_send(from->worker, &from->alias, payload, len);
    else
        route_message(from->worker, from->caller, payload, len);
}

void gen_reply_send_pieces(const ph_from *from, const struct iovec *payload, int n)
{
    if (from->is_alias)
        route_alias_send_pieces(from->worker, &from->alias, payload, n);
    else
        route_message_pieces(from->worker, from->caller, payload, n);
}

void context_init(ph_ctx *ctx, process *p)
{
    ctx->proc = p;
    memset(&ctx->stop_reason, 0, sizeof ctx->stop_reason);
}

void context_release(ph_ctx *ctx)
{
    if (ctx->stop_reason.buff)
        ph_buf_free(&ctx->stop_reason);
}

void context_stop_reason(const ph_ctx *ctx, const char **reason, uint32_t *len)
{
    if (ctx->stop_reason.buff && ctx->stop_reason.index > 1) {
        *reason = ctx->stop_reason.buff;
        *len = (uint32_t)ctx->stop_reason.index;
    } else {
        term_bytes normal = runtime_atom_term("normal");
        *reason = normal.bytes;
        *len = normal.len;
    }
}

static void stop_with_context_reason(process *p, ph_ctx *ctx)
{
    const char *reason;
    uint32_t len;
    context_stop_reason(ctx, &reason, &len);
    process_exit(p, reason, len);
}

METRIC_COUNTER(m_calls, "phnode_calls_handled_total", "",
               "gen_server calls handled by workers (handle_call invocations).");

static void run_call(process *p, ph_from *from, ph_term request)
{
    metric_inc(&m_calls);
    ph_ctx ctx;
    context_init(&ctx, p);
    from->worker = p->pid;
    /* Reply payloads are built in a per-thread buffer, reused. */
    ph_buf *reply = thread_buf(TBUF_REPLY);
    if (!reply) {
        LOG_E("worker", "out of memory for a reply");
        return;
    }
    if (gen_reply_begin(reply, from) != 0) {
        LOG_E("worker", "cannot encode a reply");
        return;
    }
    int start = reply->index;
    ph_result r;
    if (p->module->handle_call) {
        r = p->module->handle_call(&ctx, p->state, request, from, reply);
    } else {
        ei_x_encode_tuple_header(reply, 2);
        ei_x_encode_atom(reply, "error");
        ei_x_encode_atom(reply, "not_supported");
        r = PH_REPLY;
    }
    if (r == PH_OK || r == PH_REPLY || r == PH_STOP_REPLY) {
        if (reply->index == start) {
            LOG_W("worker", "%s: handle_call returned a reply without a term; replying ok",
                  p->module->name);
            ei_x_encode_atom(reply, "ok");
        }
        gen_reply_send(from, reply->buff, (uint32_t)reply->index);
    }
    thread_buf_trim(TBUF_REPLY, REPLY_BUF_KEEP);
    if (r == PH_STOP || r == PH_STOP_REPLY)
        stop_with_context_reason(p, &ctx);
    context_release(&ctx);
}

static void run_simple(process *p, ph_term msg, int is_cast)
{
    ph_result (*cb)(ph_ctx *, void *, ph_term) =
        is_cast ? p->module->handle_cast : p->module->handle_info;
    if (!cb) {
        if (log_enabled(LOG_DEBUG)) {
            char text[200];
            LOG_D("worker", "%s: no %s callback, dropped %s", p->module->name,
                  is_cast ? "handle_cast" : "handle_info", ph_term_format(msg, text, sizeof text));
        }
        return;
    }
    ph_ctx ctx;
    context_init(&ctx, p);
    if (cb(&ctx, p->state, msg) == PH_STOP)
        stop_with_context_reason(p, &ctx);
    context_release(&ctx);
}

void gen_worker_dispatch(process *p, ph_term msg)
{
    ph_from from;
    ph_term request;
    int call = gen_call_decode(msg, &from, &request);
    if (call == 1) {
        run_call(p, &from, request);
        return;
    }
    if (call < 0) {
        LOG_W("worker", "%s: dropped a malformed $gen_call", p->module->name);
        return;
    }
    int index = msg.index, arity;
    if (ei_decode_tuple_header(msg.buf, &index, &arity) == 0 && arity == 2 &&
        atom_equals(msg.buf, &index, "$gen_cast")) {
        ph_term inner = {msg.buf, index};
        run_simple(p, inner, 1);
        return;
    }
    if (handover_message(p, msg))
        return;
    run_simple(p, msg, 0);
}

void gen_worker_info(process *p, const char *payload, uint32_t len)
{
    ph_term msg = ph_term_from_external(payload, (int)len);
    if (msg.buf) {
        struct term_trust saved = term_trust_push(payload, (int)len);
        run_simple(p, msg, 0);
        term_trust_pop(saved);
    }
}

/* --- replying later ----------------------------------------------------- */

ph_from *ph_from_copy(const ph_from *from)
{
    ph_from *copy = malloc(sizeof *copy + (size_t)from->tag_len);
    if (!copy)
        return NULL;
    *copy = *from;
    char *tag = (char *)(copy + 1);
    memcpy(tag, from->tag, (size_t)from->tag_len);
    copy->tag = tag;
    copy->owned = 1;
    return copy;
}

void ph_from_free(ph_from *from)
{
    if (from && from->owned)
        free(from);
}

ph_pid ph_from_pid(const ph_from *from)
{
    return from->caller;
}

int ph_reply(ph_from *from, ph_term reply)
{
    if (!from)
        return -1;
    ph_buf b;
    int rc = -1;
    if (ph_buf_init(&b) != 0)
        goto out;
    if (gen_reply_begin(&b, from) == 0 && ph_buf_append_term(&b, reply) == 0) {
        gen_reply_send(from, b.buff, (uint32_t)b.index);
        rc = 0;
    }
    ph_buf_free(&b);
out:
    ph_from_free(from);
    return rc;
}
