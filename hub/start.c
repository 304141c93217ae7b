/* start.c - starting children on this node: options, one child, results. */
#include "hub/hub_internal.h"

static const char empty_map_bytes[] = {'t', 0, 0, 0, 0};

/* Reads the keyword list; on a bad option writes {error, ...} to reply. */
int parse_opts(ph_term opts, start_opts *o, ph_buf *reply)
{
    ph_iter it;
    ph_term opt, v;
    char key[PH_ATOM_BUF];
    memset(o, 0, sizeof *o);
    o->check_existing = 1;
    o->timeout = DEFAULT_AWAIT_TIMEOUT_MS;
    o->metadata = (ph_term){empty_map_bytes, 0};
    o->all = opts;
    if (ph_term_type(opts, NULL) == ERL_SMALL_TUPLE_EXT || ph_iter_begin(&it, opts) < 0) {
        ph_build(reply, "{error, {bad_options, ~t}}", opts);
        return -1;
    }
    while (ph_iter_next(&it, &opt) > 0) {
        int ok = ph_match(opt, "{~a, ~t}", key, &v) == 1;
        /* ProcessHub keeps an explicit nil (§14.39): false for the flags
         * (Elixir's truthiness), the default for the timeouts */
        int nil = ok && ph_match(v, "nil") == 1;
        if (ok && strcmp(key, "awaitable") == 0)
            ok = nil ? (o->awaitable = 0, 1) : ph_match(v, "~B", &o->awaitable) == 1;
        else if (ok && strcmp(key, "async_wait") == 0)
            ok = nil ? (o->async_wait = 0, 1) : ph_match(v, "~B", &o->async_wait) == 1;
        else if (ok && strcmp(key, "check_existing") == 0)
            ok = nil ? (o->check_existing = 0, 1) : ph_match(v, "~B", &o->check_existing) == 1;
        else if (ok && strcmp(key, "disable_logging") == 0)
            ok = nil ? (o->disable_logging = 0, 1) : ph_match(v, "~B", &o->disable_logging) == 1;
        else if (ok && nil && (strcmp(key, "timeout") == 0 || strcmp(key, "await_timeout") == 0))
            ok = 1;
        else if (ok && strcmp(key, "forwarded") == 0)
            ok = ph_match(v, "~B", &o->forwarded) == 1;
        else if (ok && strcmp(key, "handoff") == 0)
            ok = ph_match(v, "~B", &o->handoff) == 1;
        else if (ok && strcmp(key, "handover") == 0)
            ok = ph_match(v, "~i", &o->handover_wait) == 1 && o->handover_wait >= 0;
        else if (ok && strcmp(key, "ring") == 0)
            ok = o->has_ring = ph_match(v, "~i", &o->ring) == 1;
        else if (ok && strcmp(key, "timeout") == 0)
            ok = ph_match(v, "~i", &o->timeout) == 1 && o->timeout >= 0;
        else if (ok && strcmp(key, "registry_seq") == 0)
            ok = o->has_sub = ph_decode_ref(v, &o->sub) == 0;
        else if (ok && strcmp(key, "result_parts") == 0)
            ok = nil || (ph_decode_ref(v, &(ph_ref){0}) == 0 && (o->parts_ref = v, 1));
        else if (ok && strcmp(key, "registry_omit") == 0)
            ok = nil ? (o->omit_rows = 0, 1) : ph_match(v, "~B", &o->omit_rows) == 1;
        else if (ok && strcmp(key, "await_timeout") == 0)
            ok = ph_match(v, "~i", &(long){0}) == 1;
        else if (ok && strcmp(key, "on_failure") == 0) {
            o->rollback = ph_match(v, "rollback") == 1;
            ok = o->rollback || ph_match(v, "continue") == 1;
        } else if (ok && strcmp(key, "metadata") == 0) {
            ok = ph_term_type(v, NULL) == ERL_MAP_EXT;
            if (ok)
                o->metadata = v;
        } else if (ok && strcmp(key, "child_mapping") == 0) {
            /* a map of lists (Guided checks it first, with its own errors) */
            ph_iter m;
            ph_term k, nodes;
            ok = ph_term_type(v, NULL) == ERL_MAP_EXT && ph_iter_begin(&m, v) >= 0;
            while (ok && ph_iter_next(&m, &k) > 0 && ph_iter_next(&m, &nodes) > 0) {
                ph_iter proper; /* refuses an improper list */
                ok = (ph_term_type(nodes, NULL) == ERL_LIST_EXT ||
                      ph_term_type(nodes, NULL) == ERL_NIL_EXT) &&
                     ph_iter_begin(&proper, nodes) >= 0;
            }
        }
        if (!ok) {
            ph_build(reply, "{error, {bad_option, ~t}}", opt);
            return -1;
        }
    }
    if (o->async_wait)
        o->awaitable = 1; /* the same wait; only the result's shape differs */
    return 0;
}

/* --- starting children --------------------------------------------------- */

/* Spawns the child of s, linked to the hub. 0 and *pid, or -1 and the
 * reason appended to reason. */
int spawn_child(ph_ctx *ctx, const spec_info *s, ph_pid *pid, ph_buf *reason)
{
    ph_spawn_opts so = {.name = NULL, .supervised = 1};
    return ph_spawn(ctx, s->module, s->args, &so, pid, reason);
}

void result_free(start_result *r)
{
    elist_free(&r->started);
    elist_free(&r->errors);
    elist_free(&r->post);
    elist_free(&r->startups);
    elist_free(&r->started_keys);
}

int result_init(start_result *r)
{
    r->not_alone = 0;
    r->parts_sent = r->part_n = r->part_off = 0;
    return elist_init(&r->started) | elist_init(&r->errors) | elist_init(&r->post) |
           elist_init(&r->startups) | elist_init(&r->started_keys);
}

int row_local_pid(const hub *h, const reg_row *row, ph_pid *pid)
{
    for (uint16_t i = 0; i < row->n_nodes; i++)
        if (row->nodes[i].node == h->self_node) {
            *pid = row->nodes[i].pid;
            return 1;
        }
    return 0;
}

/* The result entries of one child of a batch, in the shapes of the
 * awaited result and the post-start hooks. */
void note_bad_spec(hub *h, start_result *r, ph_term spec)
{
    metric_inc(&hm_start_failures);
    const char *node = atom_text(h->self_node);
    ph_term cid;
    if (ph_term_type(spec, NULL) == ERL_MAP_EXT && ph_map_get_atom(spec, "id", &cid) == 1)
        elist_add(&r->errors, "{~t, ~a, {bad_spec, ~t}}", cid, node, spec);
    else
        elist_add(&r->errors, "{undefined, ~a, {bad_spec, ~t}}", node, spec);
}

void note_already_started(hub *h, start_result *r, ph_term id, ph_pid running)
{
    const char *node = atom_text(h->self_node);
    ph_buf *pidb = &h->start_pid;
    ph_term pt = pid_term(running, pidb);
    elist_add(&r->errors, "{~t, ~a, {already_started, ~t}}", id, node, pt);
    elist_add(&r->post, "{~t, {error, {already_started, ~t}}, ~t, [~a]}", id, pt, pt, node);
}

void note_failed(hub *h, const start_opts *o, start_result *r, ph_term id, ph_term reason)
{
    metric_inc(&hm_start_failures);
    const char *node = atom_text(h->self_node);
    if (!o->disable_logging) {
        char id_text[1100], reason_text[512];
        LOG_W("hub", "child %s failed to start: %s", ph_term_format(id, id_text, sizeof id_text),
              ph_term_format(reason, reason_text, sizeof reason_text));
    }
    elist_add(&r->errors, "{~t, ~a, ~t}", id, node, reason);
    elist_add(&r->post, "{~t, {error, ~t}, nil, [~a]}", id, reason, node);
}

/* A child moving here under hot_swap waits for the state of its old copy
 * before it serves (hub/runtime/handover.h). */
static void send_handover_await(hub *h, ph_ctx *ctx, ph_term id, ph_pid pid, long ms)
{
    ph_buf msg;
    if (ph_buf_init(&msg) != 0)
        return;
    if (ph_build(&msg, "{'$ph_handover', await, ~t, ~i}", id, ms) != 0 ||
        ph_send(ctx, pid, ph_buf_term(&msg)) != 0)
        LOG_W("hub", "%s: a child moving here could not be told to wait for its state",
              h->cfg.hub_id);
    ph_buf_free(&msg);
}

/* A child started and its row is in the registry: hooks, sync, result. */
void note_started(hub *h, ph_ctx *ctx, const start_opts *o, start_result *r, reg_row *row,
                  ph_term id, ph_pid pid)
{
    const char *node = atom_text(h->self_node);
    metric_inc(o->handoff ? &hm_migrations_in : &hm_starts);
    if (o->handover_wait > 0) /* first in its mailbox: nobody else knows its pid yet */
        send_handover_await(h, ctx, id, pid, o->handover_wait);
    if (!o->handoff) { /* a new line of copies, started again since its stop */
        row->stamp = hub_stamp_now(h);
        tomb_clear(h, row->data, row->key_len);
        unconfirmed_stop_clear(h, row->data, row->key_len);
    }
    fire_insert_one(h, ctx, reg_row_key(row), h->self_node, pid);
    note_registered(h, row, pid);
    signal_role(h, ctx, row, pid);
    /* {Cid, [{Node, Pid}]}, encoded directly: this runs per child */
    ph_buf *st = &r->started.b;
    if (ph_buf_reserve(st, 64u + row->key_len) == 0 && ei_x_encode_tuple_header(st, 2) == 0 &&
        ei_x_append_buf(st, row->data, row->key_len) == 0 && ei_x_encode_list_header(st, 1) == 0 &&
        ei_x_encode_tuple_header(st, 2) == 0 && atom_encode(st, h->self_node) == 0 &&
        ph_encode_pid(st, pid) == 0 && ei_x_encode_empty_list(st) == 0)
        r->started.n++;
    if (o->want_post) {
        ph_term pt = pid_term(pid, &h->start_pid);
        elist_add(&r->post, "{~t, {ok, ~t}, ~t, [~a]}", id, pt, pt, node);
        elist_add(&r->startups, "#{cid => ~t, pid => ~t}", id, pt);
    }
    /* the key is an encoded term already: its bytes are the list entry */
    if ((o->rollback || (o->omit_rows && o->has_sub)) &&
        ph_buf_reserve(&r->started_keys.b, row->key_len) == 0 && /* grows by doubling */
        ei_x_append_buf(&r->started_keys.b, row->data, (int)row->key_len) == 0)
        r->started_keys.n++;
    if (row->n_nodes != 1)
        r->not_alone = 1;
}

/* 1 when term a is the len bytes of b. */
static int same_bytes(ph_term a, ph_term b, uint32_t len)
{
    int end = ph_term_end(a);
    return end >= 0 && (uint32_t)(end - a.index) == len &&
           memcmp(a.buf + a.index, b.buf + b.index, len) == 0;
}

/* The row of a child just started here: the spec and metadata given, this
 * node's pid, and the copies other nodes run (replicas; the old copy of a
 * child moving here) as old, the row it replaces, listed them. */
reg_row *register_copy(hub *h, const char *key, uint32_t key_len, ph_term spec, ph_term meta,
                       ph_pid pid, reg_row *old)
{
    reg_node_pid one = {h->self_node, pid}, *nodes = &one;
    uint16_t n = 1;
    if (old && old->n_nodes == 0 && same_bytes(spec, reg_row_spec(old), old->spec_len) &&
        same_bytes(meta, reg_row_meta(old), old->meta_len)) {
        /* an orphan restarted from its own row (a failover restarts a
         * third of the children): the row gains its node, not rebuilt */
        return registry_set_node(h->reg, old, h->self_node, pid) == 0 ? old : NULL;
    }
    if (old && old->n_nodes) {
        nodes = malloc(((size_t)old->n_nodes + 1) * sizeof *nodes);
        if (!nodes)
            return NULL;
        nodes[0] = one;
        for (uint16_t i = 0; i < old->n_nodes; i++)
            if (old->nodes[i].node != h->self_node)
                nodes[n++] = old->nodes[i];
    }
    reg_row *row = registry_put(h->reg, key, key_len, spec, meta, nodes, n);
    if (nodes != &one)
        free(nodes);
    return row;
}

void start_one(hub *h, ph_ctx *ctx, ph_term spec, const start_opts *o, start_result *r)
{
    spec_info s;
    ph_buf *key = &h->start_key, *reason = &h->start_reason;
    ph_pid pid;
    key->index = reason->index = 0;
    if (parse_spec(spec, &s) != 0 || registry_key(s.id, key) != 0) {
        note_bad_spec(h, r, spec);
        return;
    }
    reg_row *row = registry_get(h->reg, key->buff, (uint32_t)key->index);
    if (row && row_local_pid(h, row, &pid)) {
        /* Running here already: started earlier in this call, or a running
         * child with check_existing off. (A row of another node is a child
         * moving here, or one whose node left.) */
        note_already_started(h, r, s.id, pid);
        return;
    }
    if (spawn_child(ctx, &s, &pid, reason) != 0) {
        note_failed(h, o, r, s.id, ph_buf_term(reason));
        return;
    }
    row = register_copy(h, key->buff, (uint32_t)key->index, spec, o->metadata, pid, row);
    if (!row || !child_add(h, pid, key->buff, (uint32_t)key->index, &s)) {
        LOG_E("hub", "out of memory registering a child");
        ph_exit(ctx, pid, (ph_term){"\x77\x04kill", 0});
        elist_add(&r->errors, "{~t, ~a, enomem}", s.id, atom_text(h->self_node));
        return;
    }
    note_started(h, ctx, o, r, row, s.id, pid);
}

int encode_formatted_result(ph_buf *out, const elist *ok, const elist *errors, int rollback,
                            int first)
{
    ph_term first_ok = ok->n ? (ph_term){ok->b.buff, 0} : (ph_term){"\x77\x03nil", 0};
    ph_term first_err = errors->n ? (ph_term){errors->b.buff, 0} : (ph_term){"\x77\x03nil", 0};
    if (ph_buf_reserve(out, (size_t)ok->b.index + (size_t)errors->b.index + 128u) != 0 ||
        ei_x_encode_tuple_header(out, errors->n && rollback ? 3 : 2) != 0 ||
        ei_x_encode_atom(out, errors->n ? "error" : "ok") != 0)
        return -1;
    if (!errors->n)
        return first ? ph_buf_append_term(out, first_ok) : elist_to(out, ok);
    if (ei_x_encode_tuple_header(out, 2) != 0 ||
        (first && !rollback ? ph_buf_append_term(out, first_err) : elist_to(out, errors)) != 0 ||
        elist_to(out, ok) != 0)
        return -1;
    return rollback ? ei_x_encode_atom(out, "rollback") : 0;
}

/* Starts a batch; writes the reply (awaitable result, or nothing when the
 * caller replied already). Returns -1 when the whole call is refused
 * (reply holds the error). */
/* {ok, #{status => ok | error, started => [...], errors => [...], rollback => B}},
 * the lists copied straight from the elists (they can hold 100k entries). */
/* The result up to the started list: {ok, #{..., started => */
static int start_result_head(ph_buf *out, const elist *errors, long long seq, long long omitted)
{
    return ei_x_encode_tuple_header(out, 2) != 0 || ei_x_encode_atom(out, "ok") != 0 ||
                   ei_x_encode_map_header(out, 4 + (seq >= 0) + (omitted >= 0)) != 0 ||
                   (seq >= 0 && (ei_x_encode_atom(out, "registry_seq") != 0 ||
                                 ei_x_encode_longlong(out, seq) != 0)) ||
                   (omitted >= 0 && (ei_x_encode_atom(out, "registry_omitted") != 0 ||
                                     ei_x_encode_longlong(out, omitted) != 0)) ||
                   ei_x_encode_atom(out, "status") != 0 ||
                   ei_x_encode_atom(out, errors->n ? "error" : "ok") != 0 ||
                   ei_x_encode_atom(out, "started") != 0
               ? -1
               : 0;
}

/* The result after the started list: errors => [...], rollback => B}} */
static int start_result_tail(ph_buf *out, const elist *errors, int rollback)
{
    return ei_x_encode_atom(out, "errors") != 0 || elist_to(out, errors) != 0 ||
                   ei_x_encode_atom(out, "rollback") != 0 ||
                   ei_x_encode_atom(out, rollback ? "true" : "false") != 0
               ? -1
               : 0;
}

int encode_start_result(ph_buf *out, const elist *started, const elist *errors, int rollback,
                        long long seq, long long omitted)
{
    if (ph_buf_reserve(out, (size_t)started->b.index + (size_t)errors->b.index + 200u) != 0 ||
        start_result_head(out, errors, seq, omitted) != 0 || elist_to(out, started) != 0 ||
        start_result_tail(out, errors, rollback) != 0)
        return -1;
    return 0;
}

int encode_start_result_pieces(ph_buf *out, ph_buf *tail, const elist *started, const elist *errors,
                               int rollback, long long seq, struct iovec pieces[3])
{
    if (ph_buf_reserve(tail, (size_t)errors->b.index + 64u) != 0 ||
        start_result_head(out, errors, seq, -1) != 0 ||
        (started->n && ei_x_encode_list_header(out, started->n) != 0) ||
        ei_x_encode_empty_list(tail) != 0 || start_result_tail(tail, errors, rollback) != 0)
        return -1;
    pieces[0] = (struct iovec){out->buff, (size_t)out->index};
    pieces[1] = (struct iovec){started->b.buff, started->n ? (size_t)started->b.index : 0};
    pieces[2] = (struct iovec){tail->buff, (size_t)tail->index};
    return 0;
}
