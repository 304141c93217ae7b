/* api.c - ProcessHub's API: the requests of docs/api.md, dispatched. */
#include "hub/hub_internal.h"

static ph_result handle_start(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                              const ph_from *from, ph_buf *reply);
static ph_result handle_stop(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                             const ph_from *from, ph_buf *reply);
static ph_result for_one(batch_handler handle, hub *h, ph_ctx *ctx, ph_term item, ph_term opts,
                         const ph_from *from, ph_buf *reply);
static void format_result_term(ph_term result, int first, ph_buf *out);

/* Set while start_child / stop_child runs as a batch of one (return_first). */
static int one_child;

/* --- the API ------------------------------------------------------------ */

/* Options that are not a proper list: {error, {bad_options, Opts}} in
 * reply, 1. */
static int bad_options(ph_term opts, ph_buf *reply)
{
    ph_iter it;
    int type = ph_term_type(opts, NULL);
    if ((type == ERL_LIST_EXT || type == ERL_NIL_EXT || type == ERL_STRING_EXT) &&
        ph_iter_begin(&it, opts) >= 0)
        return 0;
    ph_build(reply, "{error, {bad_options, ~t}}", opts);
    return 1;
}

static ph_result handle_start(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                              const ph_from *from, ph_buf *reply)
{
    start_opts o;
    list_walk lw;
    if (h->partitioned) {
        ph_build(reply, "{error, partitioned}");
        return PH_REPLY;
    }
    int n = ph_term_type(list, NULL) == ERL_LIST_EXT ? list_begin(&lw, list) : -1;
    if (n > 0 && h->dist->children_init && ph_term_type(opts_term, NULL) == ERL_LIST_EXT) {
        /* the strategy's own errors first (Guided: ProcessHub's) */
        ph_buf why;
        if (ph_buf_init(&why) != 0)
            return PH_NOREPLY;
        int rc = hub_children_init(h, list, opts_term, &why);
        if (rc != 0)
            ph_build(reply, "{error, ~t}", ph_buf_term(&why));
        ph_buf_free(&why);
        if (rc != 0)
            return PH_REPLY;
    }
    if (parse_opts(opts_term, &o, reply) != 0)
        return PH_REPLY;
    o.first = one_child;
    n = list_begin(&lw, list);
    if (n > 0 && h->dist->children_init) /* it places even on a node alone */
        return start_placed(h, ctx, list, opts_term, &o, from, reply);
    if ((h->members.n > 0 || start_hooks_wait(h)) && n > 0)
        return start_placed(h, ctx, list, opts_term, &o, from, reply);
    if (!o.awaitable) {
        /* Only a refusal of the whole call is reported; per-child errors are not. */
        ph_buf result;
        if (ph_buf_init(&result) != 0)
            return PH_NOREPLY;
        if (start_batch(h, ctx, list, &o, &result) < 0)
            ph_buf_append_term(reply, ph_buf_term(&result));
        else
            ph_build(reply, "{ok, start_initiated}");
        ph_buf_free(&result);
        return PH_REPLY;
    }
    if (!o.async_wait) {
        /* answered at once, by this call: its started list may go in parts */
        o.parts = o.parts_ref.buf != NULL;
        o.parts_to = ph_from_pid(from);
        start_batch(h, ctx, list, &o, reply);
        return PH_REPLY;
    }
    ph_buf result;
    if (ph_buf_init(&result) != 0)
        return PH_NOREPLY;
    start_batch(h, ctx, list, &o, &result);
    format_result_term(ph_buf_term(&result), o.first, reply);
    ph_buf_free(&result);
    return PH_REPLY;
}

/* {ok, #{started | stopped, errors, rollback}} in StartResult.format's shape;
 * anything else ({error, Reason}) as it is, as format/1 passes it through. */
static void format_result_term(ph_term result, int first, ph_buf *out)
{
    ph_term map, v;
    elist ok, errors;
    int rollback = 0;
    if (ph_match(result, "{ok, ~t}", &map) != 1 || ph_term_type(map, NULL) != ERL_MAP_EXT ||
        elist_init(&ok) != 0) {
        ph_buf_append_term(out, result);
        return;
    }
    elist_init(&errors);
    if (ph_map_get_atom(map, "started", &v) == 1 || ph_map_get_atom(map, "stopped", &v) == 1)
        elist_extend(&ok, v);
    if (ph_map_get_atom(map, "errors", &v) == 1)
        elist_extend(&errors, v);
    if (ph_map_get_atom(map, "rollback", &v) == 1)
        rollback = ph_match(v, "true") == 1;
    encode_formatted_result(out, &ok, &errors, rollback, first);
    elist_free(&ok);
    elist_free(&errors);
}

static ph_result handle_stop(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term,
                             const ph_from *from, ph_buf *reply)
{
    start_opts o;
    ph_iter it;
    if (h->partitioned) {
        ph_build(reply, "{error, partitioned}");
        return PH_REPLY;
    }
    if (parse_opts(opts_term, &o, reply) != 0)
        return PH_REPLY;
    if (ph_term_type(list, NULL) == ERL_SMALL_TUPLE_EXT ||
        ph_term_type(list, NULL) == ERL_MAP_EXT || ph_iter_begin(&it, list) < 0) {
        ph_build(reply, "{error, {bad_child_ids, ~t}}", list);
        return PH_REPLY;
    }
    if (!o.awaitable) {
        stop_batch(h, ctx, list, NULL, STOP_ANYWHERE);
        ph_build(reply, "{ok, stop_initiated}");
        return PH_REPLY;
    }
    stop_wait *w = calloc(1, sizeof *w);
    if (!w || elist_init(&w->stopped) != 0 || elist_init(&w->errors) != 0) {
        free(w);
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    w->from = ph_from_copy(from);
    w->formatted = o.async_wait;
    w->timeout_ms = o.timeout;
    w->outstanding = 1; /* held until the batch is set up */
    stop_batch(h, ctx, list, w, STOP_ANYWHERE);
    w->outstanding--;
    stop_wait_done(w);
    return PH_NOREPLY;
}

/* start_child / stop_child: the batch form with a list of one. */
static ph_result for_one(batch_handler handle, hub *h, ph_ctx *ctx, ph_term item, ph_term opts,
                         const ph_from *from, ph_buf *reply)
{
    ph_buf one;
    if (ph_buf_init(&one) != 0 || ph_build(&one, "[~t]", item) != 0) {
        ph_buf_free(&one);
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    one_child = 1;
    ph_result r = handle(h, ctx, ph_buf_term(&one), opts, from, reply);
    one_child = 0;
    ph_buf_free(&one);
    return r;
}

ph_result hub_call_inner(ph_ctx *ctx, void *state, ph_term req, const ph_from *from, ph_buf *reply)
{
    hub *h = state;
    ph_term a, b;
    char key[PH_ATOM_BUF];
    /* The requests that carry many children are recognised with ei alone
     * (see list_walk); the small ones with ph_match. */
    char tag[PH_ATOM_BUF];
    int index = req.index, arity;
    if (ei_decode_tuple_header(req.buf, &index, &arity) == 0 && arity == 3 &&
        atom_at(req.buf, &index, tag) == 0 && strcmp(tag, "start_children") == 0) {
        a = (ph_term){req.buf, index};
        if (term_skip_valid(req.buf, &index) == 0) {
            b = (ph_term){req.buf, index};
            return handle_start(h, ctx, a, b, from, reply);
        }
    }
    /* The lookup that callers make most, first and without ph_match. */
    index = req.index;
    if (ei_decode_tuple_header(req.buf, &index, &arity) == 0 && arity == 2 &&
        atom_at(req.buf, &index, tag) == 0 && strcmp(tag, "get_pid") == 0)
        return reply_pids(h, (ph_term){req.buf, index}, 1, reply);
    if (ph_match(req, "{start_child, ~t, ~t}", &a, &b) == 1)
        return for_one(handle_start, h, ctx, a, b, from, reply);
    if (ph_match(req, "{stop_children, ~t, ~t}", &a, &b) == 1)
        return handle_stop(h, ctx, a, b, from, reply);
    if (ph_match(req, "{stop_child, ~t, ~t}", &a, &b) == 1)
        return for_one(handle_stop, h, ctx, a, b, from, reply);
    if (ph_match(req, "{get_pids, ~t}", &a) == 1)
        return reply_pids(h, a, 0, reply);
    if (ph_match(req, "{child_lookup, ~t}", &a) == 1)
        return reply_lookup(h, a, 0, reply);
    if (ph_match(req, "{child_lookup, ~t, ~t}", &a, &b) == 1) {
        int with = 0;
        ph_iter it;
        ph_term e;
        if (bad_options(b, reply))
            return PH_REPLY;
        if (ph_iter_begin(&it, b) >= 0)
            while (ph_iter_next(&it, &e) > 0)
                if (ph_match(e, "{with_metadata, true}") == 1)
                    with = 1;
        return reply_lookup(h, a, with, reply);
    }
    if (ph_match(req, "{process_list, global}") == 1)
        return reply_process_list(h, 0, reply);
    if (ph_match(req, "{process_list, local}") == 1)
        return reply_process_list(h, 1, reply);
    if (ph_match(req, "load_balancer") == 1) {
        if (strategy_query(h, reply) != 0)
            return PH_NOREPLY;
        return PH_REPLY;
    }
    if (ph_match(req, "registry_dump") == 1)
        return reply_dump(h, reply);
    if (ph_match(req, "replica_count") == 1) {
        /* every {node, pid} of every row: rf per child once replicas are in place */
        uint32_t i = 0;
        reg_row *row;
        long n = 0;
        while ((row = registry_next(h->reg, &i)) != NULL)
            n += row->n_nodes;
        return ph_build(reply, "~i", n) == 0 ? PH_REPLY : PH_NOREPLY;
    }
    if (ph_match(req, "local_count") == 1) /* children running here, not stopping */
        return ph_build(reply, "~i", (long)(h->count - h->stopping)) == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(req, "registry_changed_at") == 1) /* {changes, wall ms of the last} */
        return (h->reg_changed_wall_ms
                    ? ph_build(reply, "{~u, ~u}", (unsigned long long)h->reg_changes_seen,
                               (unsigned long long)h->reg_changed_wall_ms)
                    : ph_build(reply, "{0, undefined}")) == 0
                   ? PH_REPLY
                   : PH_NOREPLY;
    if (ph_match(req, "registry_count") == 1)
        return ph_build(reply, "~i", (long)running_count(h)) == 0 ? PH_REPLY : PH_NOREPLY;
    if (ph_match(req, "{tag_query, ~t}", &a) == 1)
        return reply_tag_query(h, a, reply);
    if (ph_match(req, "{which_children, ~t}", &a) == 1) {
        if (bad_options(a, reply))
            return PH_REPLY;
        if (!has_option(a, "global")) {
            encode_which_children(h, h->self_node, reply);
            return PH_REPLY;
        }
        /* one entry per hub node, from the registry (ProcessHub asks each
         * node's supervisor; every node's registry lists the same copies) */
        ei_x_encode_list_header(reply, 1);
        encode_which_children(h, h->self_node, reply);
        for (int i = 0; i < h->members.n; i++) {
            ei_x_encode_list_header(reply, 1);
            encode_which_children(h, h->members.members[i].node, reply);
        }
        ei_x_encode_empty_list(reply);
        return PH_REPLY;
    }
    if (ph_match(req, "{promote_to_node, ~a}", key) == 1) {
        /* ProcessHub renames a hub started before its VM was distributed;
         * phnode is distributed from the start and its name is fixed */
        if (atom_intern(key) == h->self_node)
            return ph_build(reply, "ok") == 0 ? PH_REPLY : PH_NOREPLY;
        ph_build(reply, "{error, {node_name_fixed, ~a}}", atom_text(h->self_node));
        return PH_REPLY;
    }
    if (ph_match(req, "stop") == 1) {
        /* ProcessHub.stop/1: the hub stops as its terminate does (hook,
         * members told, children stopped); the members restart them */
        ph_stop_reasonf(ctx, "shutdown");
        return ph_build(reply, "ok") == 0 ? PH_STOP_REPLY : PH_NOREPLY;
    }
    if (ph_match(req, "{nodes, ~t}", &a) == 1) {
        if (bad_options(a, reply))
            return PH_REPLY;
        if (has_option(a, "include_local")) {
            ei_x_encode_list_header(reply, 1);
            atom_encode(reply, h->self_node);
        }
        for (int i = 0; i < h->members.n; i++) {
            ei_x_encode_list_header(reply, 1);
            atom_encode(reply, h->members.members[i].node);
        }
        ei_x_encode_empty_list(reply);
        return PH_REPLY;
    }
    if (ph_match(req, "is_alive") == 1)
        return ph_build(reply, "true") == 0 ? PH_REPLY : PH_NOREPLY;
    if (partition_request(h, ctx, req, reply) == 0)
        return PH_REPLY;
    if (ph_match(req, "{register_hook_handlers, ~a, ~t}", key, &a) == 1) {
        int rc = hooks_register_terms(h->hooks, key, a, ph_from_pid(from).node);
        if (rc == 0)
            ph_build(reply, "ok");
        else if (rc == -1)
            ph_build(reply, "{error, failed_to_register_some_handlers}");
        else
            ph_build(reply, "{error, {bad_handlers, ~t}}", a);
        return PH_REPLY;
    }
    if (ph_match(req, "{cancel_hook_handlers, ~a, ~t}", key, &a) == 1) {
        list_walk w;
        if (list_begin(&w, a) < 0) {
            ph_build(reply, "{error, {bad_handler_ids, ~t}}", a);
            return PH_REPLY;
        }
        hooks_cancel_terms(h->hooks, key, a);
        return ph_build(reply, "ok") == 0 ? PH_REPLY : PH_NOREPLY;
    }
    ph_result r;
    if (subscription_request(h, ctx, req, reply, &r))
        return r;
    ph_build(reply, "{error, {unknown_request, ~t}}", req);
    return PH_REPLY;
}
