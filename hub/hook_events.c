/* hook_events.c - firing ProcessHub's hooks with their data (the handlers are
 * kept by hooks.c). */
#include "hub/hub_internal.h"

/* --- hooks -------------------------------------------------------------- */

void fire(hub *h, ph_ctx *ctx, const char *key, ph_term data)
{
    hooks_run(h->hooks, ctx, key, data, 0, NULL, NULL, NULL);
}

void fire_insert(hub *h, ph_ctx *ctx, const reg_row *row)
{
    if (!hooks_has(h->hooks, "registry_pid_insert_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && ph_buf_append_term(&b, reg_row_key(row)) == 0 &&
        registry_encode_nodes(&b, row) == 0)
        fire(h, ctx, "registry_pid_insert_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* registry_pid_insert_hook with one new copy: {Cid, [{Node, Pid}]} */
void fire_insert_one(hub *h, ph_ctx *ctx, ph_term key, uint32_t node, ph_pid pid)
{
    if (!hooks_has(h->hooks, "registry_pid_insert_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && ph_buf_append_term(&b, key) == 0 &&
        ei_x_encode_list_header(&b, 1) == 0 && ei_x_encode_tuple_header(&b, 2) == 0 &&
        atom_encode(&b, node) == 0 && ph_encode_pid(&b, pid) == 0 &&
        ei_x_encode_empty_list(&b) == 0)
        fire(h, ctx, "registry_pid_insert_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* child_process_pid_update_hook: {Node, NewPid}, as ProcessHub's code passes */
void fire_pid_update(hub *h, ph_ctx *ctx, uint32_t node, ph_pid pid)
{
    if (!hooks_has(h->hooks, "child_process_pid_update_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && atom_encode(&b, node) == 0 &&
        ph_encode_pid(&b, pid) == 0)
        fire(h, ctx, "child_process_pid_update_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

void fire_remove(hub *h, ph_ctx *ctx, ph_term key, uint32_t node)
{
    if (!hooks_has(h->hooks, "registry_pid_remove_hook"))
        return;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~t, [~a]}", key, atom_text(node)) == 0)
        fire(h, ctx, "registry_pid_remove_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

/* Appends the child_data of hooks for spec: #{hub_id, nodes => [Node],
 * child_id, child_spec, metadata}. 0, or -1 if spec does not parse. */
int add_child_data(const hub *h, elist *out, uint32_t node, ph_term spec, ph_term meta)
{
    spec_info s;
    if (parse_spec(spec, &s) != 0)
        return -1;
    elist_add(out,
              "#{hub_id => ~a, nodes => [~a], child_id => ~t, child_spec => ~t, metadata => ~t}",
              h->cfg.hub_id, atom_text(node), s.id, spec, meta);
    return 0;
}

/* children_migrated_hook once a move is done (its target runs the
 * children): {Target, [{Spec, Meta}]}, as ProcessHub fires it after the
 * migration; cids are the moved ids, still in the registry. */
void fire_children_migrated(hub *h, ph_ctx *ctx, uint32_t target, ph_term cids)
{
    if (!hooks_has(h->hooks, "children_migrated_hook"))
        return;
    elist migrated;
    list_walk w;
    ph_term cid;
    ph_buf d, scratch;
    if (elist_init(&migrated) != 0)
        return;
    ph_buf_init(&d);
    ph_buf_init(&scratch);
    list_begin(&w, cids);
    while (list_next(&w, &cid) > 0) {
        reg_row *row = registry_find(h->reg, cid, &h->key_scratch);
        if (row)
            elist_add(&migrated, "{~t, ~t}", reg_row_spec(row), reg_row_meta(row));
    }
    if (migrated.n &&
        ph_build(&d, "{~a, ~t}", atom_text(target), elist_term(&migrated, &scratch)) == 0)
        fire(h, ctx, "children_migrated_hook", ph_buf_term(&d));
    elist_free(&migrated);
    ph_buf_free(&d);
    ph_buf_free(&scratch);
}

void fire_node_hook(hub *h, ph_ctx *ctx, const char *key, uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "~a", atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

/* pre/post_nodes_redistribution_hook: {nodeup | nodedown, Node} */
void fire_redistribution_hook(hub *h, ph_ctx *ctx, const char *key, const char *event,
                              uint32_t node)
{
    ph_buf b;
    if (!hooks_has(h->hooks, key) || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{~a, ~a}", event, atom_text(node)) == 0)
        fire(h, ctx, key, ph_buf_term(&b));
    ph_buf_free(&b);
}

void fire_then(hub *h, ph_ctx *ctx, const char *key, ph_term data, hooks_cont_fn cont,
               hooks_drop_fn drop, void *arg)
{
    hooks_run(h->hooks, ctx, key, data, 0, cont, drop, arg);
}

/* --- start hooks that the start waits for -------------------------------- */

int start_hooks_wait(hub *h)
{
    return hooks_awaits(h->hooks, "pre_children_start_hook") ||
           hooks_awaits(h->hooks, "child_data_alter_hook");
}

typedef struct start_hooks {
    hub *h;
    elist specs, metas; /* as the alter handlers left them, in order */
    start_hooks_done done;
    hooks_drop_fn drop;
    void *arg;
} start_hooks;

typedef struct one_child {
    start_hooks *sh;
    ph_buf spec, meta; /* as given: kept when a handler's answer is unusable */
} one_child;

static void one_child_drop(void *arg)
{
    one_child *c = arg;
    ph_buf_free(&c->spec);
    ph_buf_free(&c->meta);
    free(c);
}

/* One child's alter run is over: its spec and metadata as left. */
static void one_child_altered(void *arg, ph_ctx *ctx, ph_term data)
{
    one_child *c = arg;
    ph_term spec = ph_buf_term(&c->spec), meta = ph_buf_term(&c->meta), v;
    spec_info s;
    (void)ctx;
    if (ph_map_get_atom(data, "child_spec", &v) == 1 && parse_spec(v, &s) == 0)
        spec = v;
    else if (data.buf != c->spec.buff && ph_term_type(data, NULL) == ERL_MAP_EXT)
        LOG_W("hooks", "%s: child_data_alter_hook left no valid child_spec; the given one is used",
              c->sh->h->cfg.hub_id);
    if (ph_map_get_atom(data, "metadata", &v) == 1 && ph_term_type(v, NULL) == ERL_MAP_EXT)
        meta = v;
    elist_add(&c->sh->specs, "~t", spec);
    elist_add(&c->sh->metas, "~t", meta);
    one_child_drop(c);
}

static void start_hooks_free(start_hooks *sh)
{
    elist_free(&sh->specs);
    elist_free(&sh->metas);
    free(sh);
}

static void start_hooks_drop(void *arg)
{
    start_hooks *sh = arg;
    if (sh->drop)
        sh->drop(sh->arg);
    start_hooks_free(sh);
}

static void start_hooks_over(void *arg, ph_ctx *ctx, ph_term data)
{
    start_hooks *sh = arg;
    ph_buf specs, metas;
    (void)data;
    if (ph_buf_init(&specs) == 0 && ph_buf_init(&metas) == 0 && elist_to(&specs, &sh->specs) == 0 &&
        elist_to(&metas, &sh->metas) == 0) {
        sh->done(sh->h, ctx, ph_buf_term(&specs), ph_buf_term(&metas), sh->arg);
    } else {
        LOG_E("hub", "%s: out of memory after the start hooks; the start is dropped",
              sh->h->cfg.hub_id);
        if (sh->drop)
            sh->drop(sh->arg);
    }
    if (specs.buff)
        ph_buf_free(&specs);
    if (metas.buff)
        ph_buf_free(&metas);
    start_hooks_free(sh);
}

void run_start_hooks(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, ph_term opts,
                     start_hooks_done done, hooks_drop_fn drop, void *arg)
{
    if (!hooks_busy(h->hooks) && !hooks_has(h->hooks, "pre_children_start_hook") &&
        !hooks_has(h->hooks, "child_data_alter_hook")) {
        done(h, ctx, specs, metas, arg); /* nothing to run first */
        return;
    }
    start_hooks *sh = calloc(1, sizeof *sh);
    list_walk ws, wm;
    ph_term spec, meta;
    if (!sh || elist_init(&sh->specs) != 0 || elist_init(&sh->metas) != 0) {
        free(sh);
        LOG_E("hub", "%s: out of memory running the start hooks; the start is dropped",
              h->cfg.hub_id);
        if (drop)
            drop(arg);
        return;
    }
    sh->h = h;
    sh->done = done;
    sh->drop = drop;
    sh->arg = arg;
    if (hooks_has(h->hooks, "pre_children_start_hook")) {
        elist data;
        ph_buf d, scratch;
        if (elist_init(&data) == 0 && ph_buf_init(&d) == 0 && ph_buf_init(&scratch) == 0) {
            list_begin(&ws, specs);
            list_begin(&wm, metas);
            while (list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0)
                add_child_data(h, &data, h->self_node, spec, meta);
            if (ph_build(&d, "#{children => ~t, start_opts => ~t}", elist_term(&data, &scratch),
                         opts) == 0)
                fire(h, ctx, "pre_children_start_hook", ph_buf_term(&d));
            ph_buf_free(&d);
            ph_buf_free(&scratch);
        }
        elist_free(&data);
    }
    list_begin(&ws, specs);
    list_begin(&wm, metas);
    while (list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0) {
        one_child *c = calloc(1, sizeof *c);
        elist d;
        if (!c || ph_buf_init(&c->spec) != 0 || ph_buf_init(&c->meta) != 0 ||
            ph_buf_append_term(&c->spec, spec) != 0 || ph_buf_append_term(&c->meta, meta) != 0 ||
            elist_init(&d) != 0) {
            LOG_E("hub", "%s: out of memory running the alter hook", h->cfg.hub_id);
            if (c)
                one_child_drop(c);
            continue;
        }
        c->sh = sh;
        if (add_child_data(h, &d, h->self_node, spec, meta) == 0)
            hooks_run(h->hooks, ctx, "child_data_alter_hook", (ph_term){d.b.buff, 0}, 1,
                      one_child_altered, one_child_drop, c);
        else /* does not parse: the start reports it */
            one_child_altered(c, ctx, ph_buf_term(&c->spec));
        elist_free(&d);
    }
    hooks_run(h->hooks, ctx, NULL, (ph_term){0}, 0, start_hooks_over, start_hooks_drop, sh);
}

/* --- the lock (ProcessHub §6.4) -------------------------------------------- */

void hub_lock(hub *h, ph_ctx *ctx)
{
    ph_buf b;
    h->locked++;
    if (!hooks_has(h->hooks, "priority_state_updated_hook") || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{10, #{reset_after => ~u, local_priority_set => true}}",
                 (unsigned long long)h->cfg.deadlock_recovery_timeout) == 0)
        fire(h, ctx, "priority_state_updated_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

static void unlock_now(void *arg, ph_ctx *ctx, ph_term data)
{
    hub *h = arg;
    ph_buf b;
    (void)data;
    if (h->locked > 0)
        h->locked--;
    if (!hooks_has(h->hooks, "priority_state_updated_hook") || ph_buf_init(&b) != 0)
        return;
    if (ph_build(&b, "{0, #{}}") == 0)
        fire(h, ctx, "priority_state_updated_hook", ph_buf_term(&b));
    ph_buf_free(&b);
}

void hub_unlock_after_hooks(hub *h, ph_ctx *ctx)
{
    hooks_run(h->hooks, ctx, NULL, (ph_term){0}, 0, unlock_now, NULL, h);
}

/* --- pre_children_redistribution_hook ---------------------------------- */

/* [Node] into out (reset first). */
static void encode_nodes(const uint32_t *nodes, int n, ph_buf *out)
{
    ph_buf_reset(out);
    for (int i = 0; i < n; i++) {
        ei_x_encode_list_header(out, 1);
        atom_encode(out, nodes[i]);
    }
    ei_x_encode_empty_list(out);
}

void fire_children_redistribution(hub *h, ph_ctx *ctx, uint32_t node, int up)
{
    if (!hooks_has(h->hooks, "pre_children_redistribution_hook"))
        return;
    uint32_t i = 0;
    reg_row *row;
    elist entries;
    ph_buf nodes, d, scratch;
    if (elist_init(&entries) != 0)
        return;
    ph_buf_init(&nodes);
    ph_buf_init(&d);
    ph_buf_init(&scratch);
    while ((row = registry_next(h->reg, &i)) != NULL) {
        uint32_t owners[MAX_REPLICAS];
        int k = hub_owners(h, reg_row_key(row), owners, MAX_REPLICAS);
        int has_self = 0, has_node = 0, listed_node = 0;
        ph_pid pid;
        for (int j = 0; j < k; j++) {
            has_self |= owners[j] == h->self_node;
            has_node |= owners[j] == node;
        }
        for (uint16_t j = 0; j < row->n_nodes; j++)
            listed_node |= row->nodes[j].node == node;
        int here = row_local_pid(h, row, &pid);
        encode_nodes(owners, k > 0 ? k : 0, &nodes);
        if (up && here && has_self && has_node) {
            /* kept here, and a replica is added on the new node */
            elist_add(&entries, "{~t, ~t, [{pid, ~t}]}", reg_row_key(row), ph_buf_term(&nodes),
                      pid_term(pid, &scratch));
        } else if (!up && here && listed_node) {
            /* a copy here of a child that also ran on the node that left */
            elist_add(&entries, "{~t, ~t, []}", reg_row_key(row), ph_buf_term(&nodes));
        }
    }
    if (entries.n && ph_build(&d, "{~t, {~a, ~a}}", elist_term(&entries, &scratch),
                              up ? "up" : "down", atom_text(node)) == 0)
        fire(h, ctx, "pre_children_redistribution_hook", ph_buf_term(&d));
    elist_free(&entries);
    ph_buf_free(&nodes);
    ph_buf_free(&d);
    ph_buf_free(&scratch);
}
