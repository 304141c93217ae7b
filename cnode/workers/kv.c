/*
 * kv - a key/value map of arbitrary terms.
 *   call {put, K, V} -> ok      call {get, K} -> {ok, V} | not_found
 *   call keys -> [K]            handover state: the whole map, as an Erlang map
 */
#include "cnode/workers/workers.h"

#include <stdlib.h>

typedef struct kv_entry {
    ph_buf key; /* one term each, no version byte */
    ph_buf value;
} kv_entry;

typedef struct kv {
    kv_entry *entries;
    size_t n, cap;
} kv;

static kv_entry *kv_find(kv *m, ph_term key)
{
    for (size_t i = 0; i < m->n; i++)
        if (ph_term_equal(ph_buf_term(&m->entries[i].key), key))
            return &m->entries[i];
    return NULL;
}

static int kv_put(kv *m, ph_term key, ph_term value)
{
    kv_entry *e = kv_find(m, key);
    if (e) {
        ph_buf_reset(&e->value);
        return ph_buf_append_term(&e->value, value);
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        kv_entry *n = realloc(m->entries, cap * sizeof *n);
        if (!n)
            return -1;
        m->entries = n;
        m->cap = cap;
    }
    e = &m->entries[m->n];
    if (ph_buf_init(&e->key) != 0)
        return -1;
    if (ph_buf_init(&e->value) != 0) {
        ph_buf_free(&e->key);
        return -1;
    }
    if (ph_buf_append_term(&e->key, key) != 0 || ph_buf_append_term(&e->value, value) != 0) {
        ph_buf_free(&e->key);
        ph_buf_free(&e->value);
        return -1;
    }
    m->n++;
    return 0;
}

static void kv_clear(kv *m)
{
    for (size_t i = 0; i < m->n; i++) {
        ph_buf_free(&m->entries[i].key);
        ph_buf_free(&m->entries[i].value);
    }
    m->n = 0;
}

static ph_result kv_init(ph_ctx *ctx, ph_term args, void **state)
{
    (void)args;
    kv *m = calloc(1, sizeof *m);
    if (!m) {
        ph_stop_reasonf(ctx, "enomem");
        return PH_STOP;
    }
    *state = m;
    return PH_OK;
}

static ph_result kv_call(ph_ctx *ctx, void *state, ph_term request, const ph_from *from,
                         ph_buf *reply)
{
    (void)ctx;
    (void)from;
    kv *m = state;
    ph_term key, value;
    if (ph_match(request, "{put, ~t, ~t}", &key, &value) == 1) {
        if (kv_put(m, key, value) != 0)
            return ph_build(reply, "{error, enomem}") == 0 ? PH_REPLY : PH_NOREPLY;
        return ph_build(reply, "ok") == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(request, "{get, ~t}", &key) == 1) {
        kv_entry *e = kv_find(m, key);
        int rc =
            e ? ph_build(reply, "{ok, ~t}", ph_buf_term(&e->value)) : ph_build(reply, "not_found");
        return rc == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(request, "keys") == 1) {
        for (size_t i = 0; i < m->n; i++)
            if (ei_x_encode_list_header(reply, 1) != 0 ||
                ph_buf_append_term(reply, ph_buf_term(&m->entries[i].key)) != 0)
                return PH_NOREPLY;
        return ei_x_encode_empty_list(reply) == 0 ? PH_REPLY : PH_NOREPLY;
    }
    return ph_build(reply, "{error, {unknown_call, ~t}}", request) == 0 ? PH_REPLY : PH_NOREPLY;
}

static void kv_terminate(ph_ctx *ctx, void *state, ph_term reason)
{
    (void)ctx;
    (void)reason;
    kv *m = state;
    kv_clear(m);
    free(m->entries);
    free(m);
}

static int kv_prepare_handover(ph_ctx *ctx, void *state, ph_buf *out)
{
    (void)ctx;
    kv *m = state;
    if (ei_x_encode_map_header(out, (long)m->n) != 0)
        return -1;
    for (size_t i = 0; i < m->n; i++)
        if (ph_buf_append_term(out, ph_buf_term(&m->entries[i].key)) != 0 ||
            ph_buf_append_term(out, ph_buf_term(&m->entries[i].value)) != 0)
            return -1;
    return 0;
}

static int kv_alter_handover(ph_ctx *ctx, void **state, ph_term handover)
{
    (void)ctx;
    kv *m = *state;
    ph_iter it;
    ph_term key, value;
    if (ph_term_type(handover, NULL) != ERL_MAP_EXT || ph_iter_begin(&it, handover) < 0)
        return -1;
    kv_clear(m);
    while (ph_iter_next(&it, &key) > 0 && ph_iter_next(&it, &value) > 0)
        if (kv_put(m, key, value) != 0)
            return -1;
    return 0;
}

const ph_worker_module kv_module = {
    .name = "kv",
    .init = kv_init,
    .handle_call = kv_call,
    .terminate = kv_terminate,
    .prepare_handover_state = kv_prepare_handover,
    .alter_handover_state = kv_alter_handover,
};
