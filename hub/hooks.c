/* hooks.c - see hooks.h. */
#include "hub/hooks.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/timers.h"

#include <stdio.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef enum handler_kind { HANDLER_PID, HANDLER_MFA, HANDLER_C } handler_kind;

typedef struct handler {
    ph_buf id; /* encoded id term */
    long priority;
    handler_kind kind;
    ph_pid pid;    /* HANDLER_PID */
    uint32_t node; /* HANDLER_MFA: where to apply */
    ph_buf mfa;    /* HANDLER_MFA: {M, F, Args} */
    ph_hub_hook_fn fn;
    void *arg;
} handler;

typedef struct hook_list {
    char key[PH_ATOM_BUF];
    handler *items;
    int n, cap;
} hook_list;

struct hook_job;

struct hooks {
    hook_list *lists;
    int n, cap;
    struct hook_job *head, *tail; /* runs in order (see hooks_run) */
    int pumping;
    unsigned call_timeout;
};

hooks *hooks_new(void)
{
    return calloc(1, sizeof(hooks));
}

static void handler_free(handler *hd)
{
    ph_buf_free(&hd->id);
    if (hd->kind == HANDLER_MFA)
        ph_buf_free(&hd->mfa);
}

static void jobs_drop(hooks *h);

void hooks_free(hooks *h)
{
    if (!h)
        return;
    jobs_drop(h);
    for (int i = 0; i < h->n; i++) {
        for (int j = 0; j < h->lists[i].n; j++)
            handler_free(&h->lists[i].items[j]);
        free(h->lists[i].items);
    }
    free(h->lists);
    free(h);
}

static hook_list *find_list(const hooks *h, const char *key)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->lists[i].key, key) == 0)
            return &h->lists[i];
    return NULL;
}

static hook_list *get_list(hooks *h, const char *key)
{
    hook_list *l = find_list(h, key);
    if (l || strlen(key) >= PH_ATOM_BUF)
        return l;
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 8;
        hook_list *n = realloc(h->lists, (size_t)cap * sizeof *n);
        if (!n)
            return NULL;
        h->lists = n;
        h->cap = cap;
    }
    l = &h->lists[h->n++];
    memset(l, 0, sizeof *l);
    strcpy(l->key, key);
    return l;
}

static int has_id(const hook_list *l, ph_term id)
{
    for (int i = 0; i < l->n; i++)
        if (ph_term_equal(ph_buf_term(&l->items[i].id), id))
            return 1;
    return 0;
}

/* Inserts keeping the list sorted by priority, highest first; equal
 * priorities keep registration order. Takes ownership of hd's buffers. */
static int insert_sorted(hook_list *l, handler *hd)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        handler *n = realloc(l->items, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        l->items = n;
        l->cap = cap;
    }
    int at = l->n;
    while (at > 0 && l->items[at - 1].priority < hd->priority)
        at--;
    memmove(&l->items[at + 1], &l->items[at], (size_t)(l->n - at) * sizeof *hd);
    l->items[at] = *hd;
    l->n++;
    return 0;
}

/* Parses %{id: Id, pid: Pid, p: P} or %{id: Id, m: M, f: F, a: A, p: P}. */
static int parse_handler(ph_term t, uint32_t from_node, handler *hd)
{
    ph_term id, pid, m, f, a, p;
    memset(hd, 0, sizeof *hd);
    if (ph_term_type(t, NULL) != ERL_MAP_EXT || ph_map_get_atom(t, "id", &id) != 1)
        return -1;
    int type = ph_term_type(id, NULL);
    if (type != ERL_ATOM_EXT && type != ERL_BINARY_EXT)
        return -1;
    hd->priority = 0;
    if (ph_map_get_atom(t, "p", &p) == 1 && ph_match(p, "~i", &hd->priority) != 1)
        return -1;
    if (ph_map_get_atom(t, "pid", &pid) == 1) {
        if (ph_decode_pid(pid, &hd->pid) != 0)
            return -1;
        hd->kind = HANDLER_PID;
    } else if (ph_map_get_atom(t, "m", &m) == 1 && ph_map_get_atom(t, "f", &f) == 1 &&
               ph_map_get_atom(t, "a", &a) == 1) {
        char ms[PH_ATOM_BUF], fs[PH_ATOM_BUF];
        ph_iter it;
        if (ph_match(m, "~a", ms) != 1 || ph_match(f, "~a", fs) != 1 ||
            ph_term_type(a, NULL) == ERL_SMALL_TUPLE_EXT || ph_iter_begin(&it, a) < 0)
            return -1;
        hd->kind = HANDLER_MFA;
        hd->node = from_node;
        if (ph_buf_init(&hd->mfa) != 0 || ph_build(&hd->mfa, "{~a, ~a, ~t}", ms, fs, a) != 0) {
            ph_buf_free(&hd->mfa);
            return -1;
        }
    } else {
        return -1;
    }
    if (ph_buf_init(&hd->id) != 0 || ph_buf_append_term(&hd->id, id) != 0) {
        handler_free(hd);
        return -1;
    }
    return 0;
}

int hooks_register_terms(hooks *h, const char *key, ph_term list, uint32_t from_node)
{
    ph_iter it;
    ph_term t;
    if (ph_term_type(list, NULL) == ERL_SMALL_TUPLE_EXT || ph_iter_begin(&it, list) < 0)
        return -2;
    int count = ph_iter_begin(&it, list);
    handler *parsed = calloc((size_t)(count ? count : 1), sizeof *parsed);
    if (!parsed)
        return -2;
    hook_list *l = get_list(h, key);
    int n = 0, rc = 0;
    while (rc == 0 && ph_iter_next(&it, &t) > 0) {
        if (parse_handler(t, from_node, &parsed[n]) != 0) {
            rc = -2;
            break;
        }
        ph_term id = ph_buf_term(&parsed[n].id);
        n++;
        int dup = l && has_id(l, id);
        for (int j = 0; j < n - 1 && !dup; j++)
            dup = ph_term_equal(ph_buf_term(&parsed[j].id), id);
        if (dup)
            rc = -1;
    }
    if (rc == 0 && !l)
        rc = -2;
    for (int j = 0; j < n; j++) {
        if (rc == 0 && insert_sorted(l, &parsed[j]) == 0)
            continue;
        handler_free(&parsed[j]);
    }
    free(parsed);
    return rc;
}

int hooks_register_c(hooks *h, const char *key, const char *id, int priority, ph_hub_hook_fn fn,
                     void *arg)
{
    hook_list *l = get_list(h, key);
    handler hd;
    memset(&hd, 0, sizeof hd);
    if (!l || ph_buf_init(&hd.id) != 0 || ph_build(&hd.id, "~s", id) != 0)
        goto fail;
    if (has_id(l, ph_buf_term(&hd.id)))
        goto fail;
    hd.kind = HANDLER_C;
    hd.priority = priority;
    hd.fn = fn;
    hd.arg = arg;
    if (insert_sorted(l, &hd) == 0)
        return 0;
fail:
    if (hd.id.buff)
        ph_buf_free(&hd.id);
    return -1;
}

void hooks_cancel_terms(hooks *h, const char *key, ph_term list)
{
    hook_list *l = find_list(h, key);
    ph_iter it;
    ph_term id;
    if (!l || ph_iter_begin(&it, list) < 0)
        return;
    while (ph_iter_next(&it, &id) > 0) {
        for (int i = 0; i < l->n; i++) {
            if (ph_term_equal(ph_buf_term(&l->items[i].id), id)) {
                handler_free(&l->items[i]);
                memmove(&l->items[i], &l->items[i + 1], (size_t)(l->n - i - 1) * sizeof(handler));
                l->n--;
                break;
            }
        }
    }
}

int hooks_has(const hooks *h, const char *key)
{
    const hook_list *l = find_list(h, key);
    return l && l->n > 0;
}

/* Sends the call of an M/F/A handler to rex on its node, with every '_'
 * in Args replaced by data: {'$gen_call', {Hub, Tag}, {call, M, F, Args',
 * user}}; rex answers {Tag, Result} (or {Tag, {badrpc, Reason}}). With a
 * NULL tag the older {Hub, {call, ...}} form is sent and its answer,
 * {rex, Result}, is dropped: nothing waits for it. */
static void apply_mfa(ph_ctx *ctx, const handler *hd, ph_term data, const ph_ref *tag)
{
    ph_term mfa = ph_buf_term(&hd->mfa), m, f, args, a;
    if (ph_match(mfa, "{~t, ~t, ~t}", &m, &f, &args) != 1)
        return;
    ph_buf b;
    ph_iter it;
    if (ph_buf_init(&b) != 0)
        return;
    int n = ph_iter_begin(&it, args);
    int ok = n >= 0;
    if (tag)
        ok = ok && ei_x_encode_tuple_header(&b, 3) == 0 && ei_x_encode_atom(&b, "$gen_call") == 0 &&
             ei_x_encode_tuple_header(&b, 2) == 0 && ph_encode_pid(&b, ph_self(ctx)) == 0 &&
             ph_encode_ref(&b, tag) == 0;
    else
        ok = ok && ei_x_encode_tuple_header(&b, 2) == 0 && ph_encode_pid(&b, ph_self(ctx)) == 0;
    ok = ok && ei_x_encode_tuple_header(&b, 5) == 0 && ei_x_encode_atom(&b, "call") == 0 &&
         ph_buf_append_term(&b, m) == 0 && ph_buf_append_term(&b, f) == 0;
    while (ok && ph_iter_next(&it, &a) > 0) {
        ok = ei_x_encode_list_header(&b, 1) == 0 &&
             ph_buf_append_term(&b, ph_match(a, "'_'") == 1 ? data : a) == 0;
    }
    ok = ok && ei_x_encode_empty_list(&b) == 0 && ei_x_encode_atom(&b, "user") == 0;
    if (ok)
        ph_send_named(ctx, "rex", atom_text(hd->node), ph_buf_term(&b));
    ph_buf_free(&b);
}

static void send_pid(ph_ctx *ctx, const handler *hd, const char *key, ph_term data)
{
    ph_buf msg;
    if (ph_buf_init(&msg) != 0)
        return;
    if (ph_build(&msg, "{process_hub, ~a, ~t}", key, data) == 0)
        ph_send(ctx, hd->pid, ph_buf_term(&msg));
    ph_buf_free(&msg);
}

/* Runs a C handler; for alter hooks its replacement becomes the data (copied
 * into altered). */
static void run_c(const handler *hd, const char *key, ph_term *data, ph_buf *altered)
{
    ph_buf scratch;
    if (!altered) {
        hd->fn(hd->arg, key, *data, NULL);
        return;
    }
    if (ph_buf_init(&scratch) != 0)
        return;
    if (hd->fn(hd->arg, key, *data, &scratch) == 1 && ph_buf_term(&scratch).buf) {
        ph_buf_reset(altered);
        ph_buf_append_term(altered, ph_buf_term(&scratch));
        *data = ph_buf_term(altered);
    }
    ph_buf_free(&scratch);
}

void hooks_dispatch(hooks *h, ph_ctx *ctx, const char *key, ph_term *data, ph_buf *altered)
{
    hook_list *l = find_list(h, key);
    if (!l || l->n == 0)
        return;
    ph_buf msg;
    int have_msg = 0;
    for (int i = 0; i < l->n; i++) {
        handler *hd = &l->items[i];
        switch (hd->kind) {
        case HANDLER_PID:
            if (!have_msg) {
                if (ph_buf_init(&msg) != 0)
                    return;
                have_msg = ph_build(&msg, "{process_hub, ~a, ~t}", key, *data) == 0 ? 1 : -1;
            }
            if (have_msg > 0)
                ph_send(ctx, hd->pid, ph_buf_term(&msg));
            break;
        case HANDLER_MFA:
            apply_mfa(ctx, hd, *data, NULL);
            break;
        case HANDLER_C:
            run_c(hd, key, data, altered);
            break;
        }
    }
    if (have_msg)
        ph_buf_free(&msg);
}

/* --- hook runs in order, awaiting M/F/A handlers -------------------------- *
 *
 * ProcessHub calls every handler inside the operation, one after the other.
 * Here a run walks the handlers of its key by priority: C handlers and pid
 * sends happen at once; an M/F/A handler is called through rex and the run
 * waits for its answer (at most call_timeout ms) before the next handler.
 * The hub does not block meanwhile: the run is parked in a FIFO and resumed
 * by the answer or its timer (hooks_message). Runs are kept in the order
 * they were asked for, so a later hook never overtakes an earlier one, and
 * a continuation queued behind a run starts only when that run is over. */

typedef struct hook_job {
    struct hook_job *next;
    char key[PH_ATOM_BUF]; /* "" for a bare continuation */
    int alter;
    ph_buf data;
    handler *steps; /* the handlers as they were when the run was asked for */
    int n_steps, at;
    int waiting;
    ph_ref tag, timer;
    uint64_t t0;
    hooks_cont_fn cont;
    hooks_drop_fn drop;
    void *arg;
} hook_job;

void hooks_set_call_timeout(hooks *h, unsigned ms)
{
    h->call_timeout = ms ? ms : HOOKS_CALL_TIMEOUT_MS;
}

unsigned hooks_call_timeout(const hooks *h)
{
    return h->call_timeout ? h->call_timeout : HOOKS_CALL_TIMEOUT_MS;
}

int hooks_awaits(const hooks *h, const char *key)
{
    const hook_list *l = find_list(h, key);
    for (int i = 0; l && i < l->n; i++)
        if (l->items[i].kind == HANDLER_MFA)
            return 1;
    return 0;
}

int hooks_busy(const hooks *h)
{
    return h->head != NULL;
}

static int handler_copy(handler *to, const handler *from)
{
    *to = *from;
    memset(&to->id, 0, sizeof to->id);
    memset(&to->mfa, 0, sizeof to->mfa);
    if (ph_buf_init(&to->id) != 0 || ph_buf_append_term(&to->id, ph_buf_term(&from->id)) != 0)
        return -1;
    if (from->kind == HANDLER_MFA &&
        (ph_buf_init(&to->mfa) != 0 || ph_buf_append_term(&to->mfa, ph_buf_term(&from->mfa)) != 0))
        return -1;
    return 0;
}

static void job_free(hook_job *j, int drop)
{
    for (int i = 0; i < j->n_steps; i++)
        handler_free(&j->steps[i]);
    free(j->steps);
    ph_buf_free(&j->data);
    if (drop && j->drop)
        j->drop(j->arg);
    free(j);
}

/* The hub stops: queued runs are dropped, their continuations' args freed. */
static void jobs_drop(hooks *h)
{
    while (h->head) {
        hook_job *j = h->head;
        h->head = j->next;
        job_free(j, 1);
    }
    h->tail = NULL;
}

static void job_log(const hook_job *j, const handler *hd, const char *what, ph_term detail)
{
    char id[128], text[256];
    ph_term mfa = ph_buf_term(&hd->mfa), m, f, a;
    char mf[160] = "?";
    if (ph_match(mfa, "{~t, ~t, ~t}", &m, &f, &a) == 1) {
        char ms[64], fs[64];
        snprintf(mf, sizeof mf, "%s:%s", ph_term_format(m, ms, sizeof ms),
                 ph_term_format(f, fs, sizeof fs));
    }
    LOG_W("hooks", "%s handler %s (%s on %s) %s%s%s; skipped", j->key,
          ph_term_format(ph_buf_term(&hd->id), id, sizeof id), mf, atom_text(hd->node), what,
          detail.buf ? ": " : "", detail.buf ? ph_term_format(detail, text, sizeof text) : "");
}

/* Runs the job's handlers from where it stopped; 1 when it waits for an
 * M/F/A handler, 0 when it is done. */
static int job_step(hooks *h, ph_ctx *ctx, hook_job *j)
{
    ph_buf altered;
    if (ph_buf_init(&altered) != 0)
        return 0;
    while (j->at < j->n_steps) {
        handler *hd = &j->steps[j->at];
        ph_term data = ph_buf_term(&j->data);
        if (hd->kind == HANDLER_PID) {
            send_pid(ctx, hd, j->key, data);
        } else if (hd->kind == HANDLER_C) {
            run_c(hd, j->key, &data, j->alter ? &altered : NULL);
            if (data.buf == altered.buff) {
                ph_buf_reset(&j->data);
                ph_buf_append_term(&j->data, data);
            }
        } else if (ctx) {
            ph_buf t;
            j->tag = ph_make_ref();
            apply_mfa(ctx, hd, data, &j->tag);
            memset(&j->timer, 0, sizeof j->timer);
            if (ph_buf_init(&t) == 0) {
                if (ei_x_encode_tuple_header(&t, 2) != 0 ||
                    ei_x_encode_atom(&t, "$ph_hook_timeout") != 0 ||
                    ph_encode_ref(&t, &j->tag) != 0 ||
                    ph_send_after(ctx, hooks_call_timeout(h), ph_buf_term(&t), &j->timer) != 0)
                    LOG_E("hooks", "%s: no timer for a handler call", j->key);
                ph_buf_free(&t);
            }
            j->waiting = 1;
            j->t0 = monotonic_ms();
            ph_buf_free(&altered);
            return 1;
        }
        j->at++;
    }
    ph_buf_free(&altered);
    return 0;
}

/* Runs queued jobs until one waits or none is left. */
static void pump(hooks *h, ph_ctx *ctx)
{
    if (h->pumping)
        return;
    h->pumping = 1;
    while (h->head && !h->head->waiting) {
        hook_job *j = h->head;
        if (job_step(h, ctx, j))
            break;
        h->head = j->next;
        if (!h->head)
            h->tail = NULL;
        if (j->cont)
            j->cont(j->arg, ctx, ph_buf_term(&j->data));
        j->drop = NULL; /* the continuation owned arg */
        job_free(j, 0);
    }
    h->pumping = 0;
}

void hooks_run(hooks *h, ph_ctx *ctx, const char *key, ph_term data, int alter, hooks_cont_fn cont,
               hooks_drop_fn drop, void *arg)
{
    hook_list *l = key ? find_list(h, key) : NULL;
    int awaits = key && hooks_awaits(h, key);
    if (!h->head && !awaits) {
        /* nothing to wait for: at once, as before */
        ph_buf altered;
        ph_term d = data;
        int have = alter && l && l->n && ph_buf_init(&altered) == 0;
        if (l && l->n)
            hooks_dispatch(h, ctx, key, &d, have ? &altered : NULL);
        if (cont)
            cont(arg, ctx, d);
        if (have)
            ph_buf_free(&altered);
        return;
    }
    if (!cont && !(l && l->n))
        return; /* nothing to run and nothing waits for it */
    hook_job *j = calloc(1, sizeof *j);
    if (!j || ph_buf_init(&j->data) != 0 || (data.buf && ph_buf_append_term(&j->data, data) != 0)) {
        LOG_E("hooks", "out of memory queueing %s; its handlers are skipped", key ? key : "a hook");
        if (j && j->data.buff)
            ph_buf_free(&j->data);
        free(j);
        if (cont)
            cont(arg, ctx, data);
        return;
    }
    if (key)
        snprintf(j->key, sizeof j->key, "%s", key);
    j->alter = alter;
    j->cont = cont;
    j->drop = drop;
    j->arg = arg;
    if (l && l->n) {
        j->steps = calloc((size_t)l->n, sizeof *j->steps);
        for (int i = 0; j->steps && i < l->n; i++) {
            if (handler_copy(&j->steps[j->n_steps], &l->items[i]) != 0) {
                handler_free(&j->steps[j->n_steps]);
                break;
            }
            j->n_steps++;
        }
    }
    if (h->tail)
        h->tail->next = j;
    else
        h->head = j;
    h->tail = j;
    pump(h, ctx);
}

static void job_resume(hooks *h, ph_ctx *ctx, hook_job *j)
{
    if (j->timer.len)
        ph_cancel_timer(&j->timer);
    memset(&j->timer, 0, sizeof j->timer);
    j->waiting = 0;
    j->at++;
    pump(h, ctx);
}

int hooks_message(hooks *h, ph_ctx *ctx, ph_term msg)
{
    hook_job *j = h->head;
    ph_term tag, result;
    ph_ref ref;
    if (ph_match(msg, "{'$ph_hook_timeout', ~t}", &tag) == 1 && ph_decode_ref(tag, &ref) == 0) {
        if (j && j->waiting && ph_ref_equal(&ref, &j->tag)) {
            job_log(j, &j->steps[j->at], "did not answer in", (ph_term){0});
            LOG_W("hooks", "(the hook call timeout is %u ms)", hooks_call_timeout(h));
            job_resume(h, ctx, j);
        }
        return 1;
    }
    if (ph_match(msg, "{~t, ~t}", &tag, &result) != 1 || ph_decode_ref(tag, &ref) != 0 || !j ||
        !j->waiting || !ph_ref_equal(&ref, &j->tag))
        return 0;
    ph_term why;
    if (ph_match(result, "{badrpc, ~t}", &why) == 1) {
        job_log(j, &j->steps[j->at], "failed", why);
    } else if (j->alter) {
        /* the handler's answer is the data of the next one: a map like it */
        if (ph_term_type(result, NULL) == ERL_MAP_EXT) {
            ph_buf copy;
            if (ph_buf_init(&copy) == 0 && ph_buf_append_term(&copy, result) == 0) {
                ph_buf_free(&j->data);
                j->data = copy;
            }
        } else {
            job_log(j, &j->steps[j->at], "returned something other than a map", result);
        }
    }
    job_resume(h, ctx, j);
    return 1;
}

void hooks_flush_nowait(hooks *h, ph_ctx *ctx)
{
    while (h->head) {
        hook_job *j = h->head;
        h->head = j->next;
        if (j->timer.len)
            ph_cancel_timer(&j->timer);
        /* the rest of its handlers, not waited for */
        for (int i = j->at + (j->waiting ? 1 : 0); i < j->n_steps; i++) {
            ph_term d = ph_buf_term(&j->data);
            handler *hd = &j->steps[i];
            if (hd->kind == HANDLER_PID)
                send_pid(ctx, hd, j->key, d);
            else if (hd->kind == HANDLER_MFA)
                apply_mfa(ctx, hd, d, NULL);
            else
                hd->fn(hd->arg, j->key, d, NULL);
        }
        job_free(j, 1);
    }
    h->tail = NULL;
}

/* --- handlers registered before the hub starts --------------------------- */

typedef struct pending_c {
    char key[PH_ATOM_BUF];
    char id[PH_ATOM_BUF];
    int priority;
    ph_hub_hook_fn fn;
    void *arg;
} pending_c;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static pending_c pending[64];
static int n_pending;

int ph_hub_register_hook(const char *hook_key, const char *id, int priority, ph_hub_hook_fn fn,
                         void *arg)
{
    if (!hook_key || !id || !fn || strlen(hook_key) >= PH_ATOM_BUF || strlen(id) >= PH_ATOM_BUF)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&pending_lock);
    int dup = 0;
    for (int i = 0; i < n_pending; i++)
        dup |= strcmp(pending[i].key, hook_key) == 0 && strcmp(pending[i].id, id) == 0;
    if (!dup && n_pending < 64) {
        pending_c *p = &pending[n_pending++];
        strcpy(p->key, hook_key);
        strcpy(p->id, id);
        p->priority = priority;
        p->fn = fn;
        p->arg = arg;
        rc = 0;
    }
    pthread_mutex_unlock(&pending_lock);
    return rc;
}

void hooks_install_pending(hooks *h)
{
    pthread_mutex_lock(&pending_lock);
    for (int i = 0; i < n_pending; i++)
        if (hooks_register_c(h, pending[i].key, pending[i].id, pending[i].priority, pending[i].fn,
                             pending[i].arg) != 0)
            LOG_W("hooks", "C hook %s/%s not installed", pending[i].key, pending[i].id);
    pthread_mutex_unlock(&pending_lock);
}
