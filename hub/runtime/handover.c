/* handover.c - a worker's side of HotSwap migration (see handover.h): the
 * old copy hands its state over and forwards, the new copy waits for it. */
#include "hub/runtime/handover.h"

#include "hub/runtime/context.h"
#include "hub/runtime/log.h"
#include "hub/runtime/route.h"

#include <stdlib.h>
#include <string.h>

enum ho_phase { HO_AWAITING = 1, HO_FORWARDING };

struct handover {
    uint8_t phase;
    uint8_t has_timer;
    ph_pid to;                /* HO_FORWARDING: the new copy */
    ph_ref timer;             /* HO_AWAITING: {'$ph_handover', timeout} */
    unsigned wait_ms;         /* HO_AWAITING: how long it waits */
    proc_signal *head, *tail; /* HO_AWAITING: deferred messages, in order */
    uint32_t cid_len;
    char cid[]; /* the child id, encoded, for the logs */
};

/* The messages of the protocol. Those named process_hub are ProcessHub's
 * (a BEAM process taking part sends and receives the same); the
 * '$ph_handover' ones pass between the hub and its own workers. */
enum ho_kind {
    HK_NONE,
    HK_AWAIT,       /* {'$ph_handover', await, Cid, Ms}: from the hub, first */
    HK_TIMEOUT,     /* {'$ph_handover', timeout}: the wait is over */
    HK_UNAVAILABLE, /* {'$ph_handover', unavailable, Cid}: no state comes */
    HK_CANCEL,      /* {'$ph_handover', cancel}: the new copy is gone */
    HK_STATE,       /* {process_hub, handover, Cid, {State, Opts}} */
    HK_SEND,        /* {process_hub, send_handover_state, Receiver, Cid, Opts} */
};

static enum ho_kind protocol_kind(ph_term msg, ph_term *a, ph_term *b, ph_term *c)
{
    int index = msg.index, arity, type, size;
    char first[PH_ATOM_BUF];
    if (ei_decode_tuple_header(msg.buf, &index, &arity) != 0 || arity < 2 || arity > 5 ||
        ei_get_type(msg.buf, &index, &type, &size) != 0 || size > 12 ||
        ei_decode_atom(msg.buf, &index, first) != 0)
        return HK_NONE;
    if (strcmp(first, "$ph_handover") == 0) {
        if (ph_match(msg, "{'$ph_handover', await, ~t, ~t}", a, b) == 1)
            return HK_AWAIT;
        if (ph_match(msg, "{'$ph_handover', timeout}") == 1)
            return HK_TIMEOUT;
        if (ph_match(msg, "{'$ph_handover', unavailable, ~t}", a) == 1)
            return HK_UNAVAILABLE;
        if (ph_match(msg, "{'$ph_handover', cancel}") == 1)
            return HK_CANCEL;
        return HK_NONE;
    }
    if (strcmp(first, "process_hub") != 0)
        return HK_NONE;
    if (ph_match(msg, "{process_hub, handover, ~t, ~t}", a, b) == 1)
        return HK_STATE;
    if (ph_match(msg, "{process_hub, send_handover_state, ~t, ~t, ~t}", a, b, c) == 1)
        return HK_SEND;
    return HK_NONE;
}

/* The value of key in a keyword list: 1 and *v, or 0. */
static int keyword(ph_term list, const char *key, ph_term *v)
{
    ph_iter it;
    ph_term e, val;
    char k[PH_ATOM_BUF];
    if (ph_iter_begin(&it, list) < 0)
        return 0;
    while (ph_iter_next(&it, &e) > 0)
        if (ph_match(e, "{~a, ~t}", k, &val) == 1 && strcmp(k, key) == 0) {
            *v = val;
            return 1;
        }
    return 0;
}

static void send_to(ph_ctx *ctx, ph_pid to, const char *fmt, ...)
{
    ph_buf b;
    va_list ap;
    if (ph_buf_init(&b) != 0) {
        LOG_E("handover", "out of memory sending a handover message");
        return;
    }
    va_start(ap, fmt);
    int rc = ph_vbuild(&b, fmt, ap);
    va_end(ap);
    if (rc != 0 || ph_send(ctx, to, ph_buf_term(&b)) != 0)
        LOG_E("handover", "could not send a handover message");
    ph_buf_free(&b);
}

static struct handover *handover_new(process *p, enum ho_phase phase, ph_term cid)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return NULL;
    struct handover *ho = NULL;
    if (ph_buf_append_term(&b, cid) == 0 && (ho = calloc(1, sizeof *ho + (size_t)b.index))) {
        ho->phase = (uint8_t)phase;
        ho->cid_len = (uint32_t)b.index;
        memcpy(ho->cid, b.buff, (size_t)b.index);
        p->handover = ho;
    }
    ph_buf_free(&b);
    if (!ho)
        LOG_E("handover", "%s: out of memory for a handover", p->module->name);
    return ho;
}

/* The wait is over: the deferred messages go back to the front of the
 * queue, in the order they came, ahead of anything that came since. */
static void end_wait(process *p)
{
    struct handover *ho = p->handover;
    if (ho->has_timer)
        ph_cancel_timer(&ho->timer);
    if (ho->head) {
        ho->tail->next = p->queue_head;
        p->queue_head = ho->head;
        if (!p->queue_tail)
            p->queue_tail = ho->tail;
    }
    p->handover = NULL;
    free(ho);
}

int handover_divert(process *p, proc_signal *s, ph_term msg)
{
    struct handover *ho = p->handover;
    ph_term a, b, c;
    enum ho_kind kind = protocol_kind(msg, &a, &b, &c);
    /* A copy still waiting for its state that is asked for it (it moves
     * on before its own move is done) answers once it has it. */
    if (kind != HK_NONE && !(kind == HK_SEND && ho->phase == HO_AWAITING))
        return HANDOVER_PASS;
    if (ho->phase == HO_AWAITING) {
        s->next = NULL;
        if (ho->tail)
            ho->tail->next = s;
        else
            ho->head = s;
        ho->tail = s;
        return HANDOVER_KEPT;
    }
    /* Calls keep their From: the new copy answers the caller itself. */
    route_message(p->pid, ho->to, s->payload, s->len);
    return HANDOVER_DONE;
}

/* {'$ph_handover', await, Cid, Ms}: defer everything until the state. */
static void begin_wait(ph_ctx *ctx, process *p, ph_term cid, ph_term ms_term)
{
    long ms;
    if (p->handover || ph_match(ms_term, "~i", &ms) != 1 || ms <= 0)
        return;
    struct handover *ho = handover_new(p, HO_AWAITING, cid);
    if (!ho)
        return; /* it serves at once with its fresh state */
    ho->wait_ms = (unsigned)ms;
    ph_buf t;
    if (ph_buf_init(&t) == 0) {
        if (ph_build(&t, "{'$ph_handover', timeout}") == 0 &&
            ph_send_after(ctx, ho->wait_ms, ph_buf_term(&t), &ho->timer) == 0)
            ho->has_timer = 1;
        ph_buf_free(&t);
    }
    if (!ho->has_timer) {
        LOG_E("handover", "%s: no timer for a handover wait; serving with a fresh state",
              p->module->name);
        end_wait(p);
    }
}

/* {process_hub, handover, Cid, {State, Opts}} for a waiting new copy. */
static void adopt_state(ph_ctx *ctx, process *p, ph_term cid, ph_term payload)
{
    char text[256];
    ph_term state, opts, v;
    if (!p->handover || p->handover->phase != HO_AWAITING) {
        LOG_W("handover", "%s: state for %s came after the wait ended; dropped", p->module->name,
              ph_term_format(cid, text, sizeof text));
        return;
    }
    if (ph_match(payload, "{~t, ~t}", &state, &opts) != 1) {
        state = payload;
        opts = (ph_term){"\x6a", 0}; /* [] */
    }
    int confirm = 0;
    ph_pid to;
    if (keyword(opts, "confirm_handover", &v) && ph_match(v, "~B", &confirm) == 1 && confirm &&
        keyword(opts, "confirmation_receiver", &v) && ph_decode_pid(v, &to) == 0)
        send_to(ctx, to, "{process_hub, handover_confirmed, ~t}", cid);
    if (!p->module->alter_handover_state)
        LOG_W("handover",
              "%s: %s: the module has no alter_handover_state; the state handed "
              "over is dropped",
              p->module->name, ph_term_format(cid, text, sizeof text));
    else if (p->module->alter_handover_state(ctx, &p->state, state) != 0)
        LOG_W("handover", "%s: %s: alter_handover_state refused the state; keeping the fresh one",
              p->module->name, ph_term_format(cid, text, sizeof text));
    end_wait(p);
}

/* {process_hub, send_handover_state, Receiver, Cid, Opts} for the old copy. */
static void hand_over(ph_ctx *ctx, process *p, ph_term receiver, ph_term cid, ph_term opts)
{
    char text[256];
    ph_pid to, retention;
    int has_to = ph_decode_pid(receiver, &to) == 0;
    ph_term v;
    if (p->handover) {
        LOG_W("handover", "%s: %s: asked for its state twice; the first handover stands",
              p->module->name, ph_term_format(cid, text, sizeof text));
        return;
    }
    if (has_to) {
        ph_buf state;
        int ok = p->module->prepare_handover_state && ph_buf_init(&state) == 0;
        if (ok) {
            ok = p->module->prepare_handover_state(ctx, p->state, &state) == 0 &&
                 state.index > 0; /* a term was written */
            if (ok)
                send_to(ctx, to, "{process_hub, handover, ~t, {~t, ~t}}", cid, ph_buf_term(&state),
                        opts);
            ph_buf_free(&state);
        }
        if (!ok) {
            LOG_W("handover",
                  "%s: %s: the state cannot be handed over (%s); its new copy starts "
                  "fresh",
                  p->module->name, ph_term_format(cid, text, sizeof text),
                  p->module->prepare_handover_state ? "prepare_handover_state refused"
                                                    : "no prepare_handover_state");
            send_to(ctx, to, "{'$ph_handover', unavailable, ~t}", cid);
        }
        /* From now on the new copy serves: what reaches this pid goes there. */
        if (!ph_pid_equal(to, p->pid) && handover_new(p, HO_FORWARDING, cid))
            p->handover->to = to;
    }
    if (keyword(opts, "retention_receiver", &v) && ph_decode_pid(v, &retention) == 0)
        send_to(ctx, retention, "{process_hub, retention_handled, ~t}", cid);
}

int handover_message(process *p, ph_term msg)
{
    ph_term a, b, c;
    enum ho_kind kind = protocol_kind(msg, &a, &b, &c);
    if (kind == HK_NONE)
        return 0;
    ph_ctx ctx;
    char text[256];
    context_init(&ctx, p);
    struct handover *ho = p->handover;
    switch (kind) {
    case HK_AWAIT:
        begin_wait(&ctx, p, a, b);
        break;
    case HK_TIMEOUT:
        if (ho && ho->phase == HO_AWAITING) {
            LOG_W("handover", "%s: %s: no state within %u ms; serving with a fresh state",
                  p->module->name, ph_term_format((ph_term){ho->cid, 0}, text, sizeof text),
                  ho->wait_ms);
            end_wait(p);
        }
        break;
    case HK_UNAVAILABLE:
        if (ho && ho->phase == HO_AWAITING)
            end_wait(p);
        break;
    case HK_CANCEL:
        if (ho && ho->phase == HO_FORWARDING) {
            p->handover = NULL; /* the new copy is gone: this one serves again */
            free(ho);
        }
        break;
    case HK_STATE:
        adopt_state(&ctx, p, a, b);
        break;
    case HK_SEND:
        hand_over(&ctx, p, a, b, c);
        break;
    case HK_NONE:
        break;
    }
    context_release(&ctx);
    return 1;
}

void handover_release(process *p)
{
    struct handover *ho = p->handover;
    if (!ho)
        return;
    while (ho->head) {
        proc_signal *s = ho->head;
        ho->head = s->next;
        signal_free(s);
    }
    if (ho->has_timer)
        ph_cancel_timer(&ho->timer);
    p->handover = NULL;
    free(ho);
}
