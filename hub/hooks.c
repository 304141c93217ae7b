/* hooks.c - see hooks.h. */
#include "hub/hooks.h"

#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"

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

struct hooks {
    hook_list *lists;
    int n, cap;
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

void hooks_free(hooks *h)
{
    if (!h)
        return;
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

/* {From, {call, M, F, Args', user}} to rex on the handler's node, where
 * Args' is Args with every '_' replaced by data. */
static void apply_mfa(ph_ctx *ctx, const handler *hd, ph_term data)
{
    ph_term mfa = ph_buf_term(&hd->mfa), m, f, args, a;
    if (ph_match(mfa, "{~t, ~t, ~t}", &m, &f, &args) != 1)
        return;
    ph_buf b;
    ph_iter it;
    if (ph_buf_init(&b) != 0)
        return;
    int n = ph_iter_begin(&it, args);
    int ok = n >= 0 && ei_x_encode_tuple_header(&b, 2) == 0 &&
             ph_encode_pid(&b, ph_self(ctx)) == 0 && ei_x_encode_tuple_header(&b, 5) == 0 &&
             ei_x_encode_atom(&b, "call") == 0 && ph_buf_append_term(&b, m) == 0 &&
             ph_buf_append_term(&b, f) == 0;
    while (ok && ph_iter_next(&it, &a) > 0) {
        ok = ei_x_encode_list_header(&b, 1) == 0 &&
             ph_buf_append_term(&b, ph_match(a, "'_'") == 1 ? data : a) == 0;
    }
    ok = ok && ei_x_encode_empty_list(&b) == 0 && ei_x_encode_atom(&b, "user") == 0;
    if (ok)
        ph_send_named(ctx, "rex", atom_text(hd->node), ph_buf_term(&b));
    ph_buf_free(&b);
}

void hooks_dispatch(hooks *h, ph_ctx *ctx, const char *key, ph_term *data, ph_buf *altered)
{
    hook_list *l = find_list(h, key);
    if (!l || l->n == 0)
        return;
    ph_buf msg, scratch;
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
            apply_mfa(ctx, hd, *data);
            break;
        case HANDLER_C:
            if (!altered) {
                hd->fn(hd->arg, key, *data, NULL);
                break;
            }
            if (ph_buf_init(&scratch) != 0)
                break;
            if (hd->fn(hd->arg, key, *data, &scratch) == 1 && ph_buf_term(&scratch).buf) {
                /* the replacement becomes the data for the next handler */
                ph_buf_reset(altered);
                ph_buf_append_term(altered, ph_buf_term(&scratch));
                *data = ph_buf_term(altered);
            }
            ph_buf_free(&scratch);
            break;
        }
    }
    if (have_msg)
        ph_buf_free(&msg);
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
