/* start_batch.c - a batch of starts, big ones prepared on two threads. */
#include "hub/hub_internal.h"

/* Batches this big start on two threads. */
#define PARALLEL_MIN 4096
/* How many rows ahead the insertion loop asks for registry slots. */
#define PREFETCH_AHEAD 8

/* --- big batches on two threads --------------------------------------------
 *
 * Spawning a child and building its registry row and supervision record
 * touch nothing of the hub's: for a big batch they run on the hub's thread
 * and a helper thread at once (the second core is otherwise idle while the
 * caller waits). What touches the hub's tables, fires hooks or builds the
 * result stays on the hub's thread, in the batch's order. */

typedef struct prep {
    ph_term spec;
    uint32_t key_off, key_len; /* its registry key, in the batch's key buffer */
    uint32_t dup_of;
    uint8_t state;
    ph_pid pid;
    reg_row *row;
    /* The row the id has already (of a child moving here, or whose node
     * left), and whether the child's copy is added to it in place: same
     * spec and metadata, so no new row is built (a join moves a third of
     * the children to the newcomer, whose registry has their rows). */
    reg_row *old;
    uint32_t hash; /* the key's registry_hash */
    uint8_t in_place;
    child *rec;
    ph_buf *reason;
} prep;

typedef struct prep_job {
    prep *items;
    uint32_t from, to;
    const char *keys;
    ph_ctx *ctx; /* the hub's: spawned children are supervised by it */
    ph_term metadata;
    uint32_t self_node;
    struct term_trust trust;
} prep_job;

/* 1 when term a is exactly the len bytes at b. */
static int same_term_bytes(ph_term a, const char *b, uint32_t len)
{
    int end = ph_term_end(a);
    return end >= 0 && (uint32_t)(end - a.index) == len && memcmp(a.buf + a.index, b, len) == 0;
}

/* Starts the PREP_SPAWN items of [from, to) and builds their rows and
 * records. Runs on either thread (the hub's tables are not changed while
 * both run, so an item's old row may be read). */
static void prepare_range(const prep_job *j)
{
    struct term_trust saved = term_trust_push(j->trust.buf, j->trust.len);
    ph_buf reason;
    if (ph_buf_init(&reason) != 0) {
        term_trust_pop(saved);
        return; /* the items stay PREP_SPAWN: the hub starts them itself */
    }
    for (uint32_t i = j->from; i < j->to; i++) {
        prep *it = &j->items[i];
        spec_info s;
        if (it->state != PREP_SPAWN || parse_spec(it->spec, &s) != 0)
            continue;
        reason.index = 0;
        if (spawn_child(j->ctx, &s, &it->pid, &reason) != 0) {
            it->reason = malloc(sizeof *it->reason);
            if (it->reason && ph_buf_init(it->reason) == 0)
                ph_buf_append_term(it->reason, ph_buf_term(&reason));
            it->state = PREP_FAILED;
            continue;
        }
        const char *key = j->keys + it->key_off;
        const reg_row *old = it->old;
        it->in_place =
            old && same_term_bytes(it->spec, old->data + old->key_len, old->spec_len) &&
            same_term_bytes(j->metadata, old->data + old->key_len + old->spec_len, old->meta_len);
        if (!it->in_place) {
            reg_node_pid np = {j->self_node, it->pid};
            it->row = registry_row_new(key, it->key_len, it->spec, j->metadata, &np, 1);
        }
        it->rec = child_new(it->pid, key, it->key_len, &s);
        it->state = (it->row || it->in_place) && it->rec ? PREP_STARTED : PREP_NOMEM;
    }
    ph_buf_free(&reason);
    term_trust_pop(saved);
}

/* prepare_range as a helper job. */
static void prepare_job(void *arg)
{
    prepare_range(arg);
}

/* Index of the batch's first item with the key of item i, via an open
 * addressing table of item indexes + 1 (cap a power of two). */
static uint32_t batch_first_with_key(uint32_t *table, uint32_t cap, const prep *items,
                                     const char *keys, uint32_t i)
{
    const prep *it = &items[i];
    uint32_t hash = 2166136261u;
    for (uint32_t k = 0; k < it->key_len; k++)
        hash = (hash ^ (unsigned char)keys[it->key_off + k]) * 16777619u;
    for (uint32_t slot = hash & (cap - 1);; slot = (slot + 1) & (cap - 1)) {
        if (!table[slot]) {
            table[slot] = i + 1;
            return i;
        }
        const prep *o = &items[table[slot] - 1];
        if (o->key_len == it->key_len &&
            memcmp(keys + o->key_off, keys + it->key_off, it->key_len) == 0)
            return table[slot] - 1;
    }
}

typedef struct batch {
    prep *items;
    uint32_t m;
    ph_buf keys;
} batch;

static void batch_free(batch *b)
{
    for (uint32_t i = 0; i < b->m; i++)
        if (b->items[i].reason) {
            ph_buf_free(b->items[i].reason);
            free(b->items[i].reason);
        }
    free(b->items);
    ph_buf_free(&b->keys);
}

/* Step 1 of a big batch, on the hub's thread: parse, and find what must not
 * start. With check, the ids already registered (on any node) go to
 * existing; with keep_old, an id's row is remembered (prep.old). -1 when
 * out of memory (nothing done). */
static int batch_prepare(hub *h, ph_term list, uint32_t n, int check, int keep_old, elist *existing,
                         batch *b)
{
    uint32_t cap = 1;
    while (cap < 2 * n)
        cap <<= 1;
    memset(b, 0, sizeof *b);
    b->items = calloc(n, sizeof *b->items);
    uint32_t *table = calloc(cap, sizeof *table);
    if (!b->items || !table || ph_buf_init(&b->keys) != 0 ||
        ph_buf_reserve(&b->keys, (size_t)n * 16u)) {
        free(table);
        batch_free(b);
        return -1;
    }
    prep *items = b->items;
    ph_buf *keys = &b->keys;
    list_walk w;
    ph_term spec;
    uint32_t m = 0;
    list_begin(&w, list);
    while (m < n && list_next(&w, &spec) > 0) {
        prep *it = &items[m];
        spec_info s;
        it->spec = spec;
        it->key_off = (uint32_t)keys->index;
        if (parse_spec(spec, &s) != 0 || registry_key(s.id, keys) != 0) {
            keys->index = (int)it->key_off;
            it->state = PREP_BAD_SPEC;
        } else {
            it->key_len = (uint32_t)keys->index - it->key_off;
            const char *key = keys->buff + it->key_off;
            /* the registry's slot loads while the batch's own table is probed */
            uint32_t hash = it->hash = registry_hash(key, it->key_len);
            registry_prefetch(h->reg, hash);
            uint32_t first = batch_first_with_key(table, cap, items, keys->buff, m);
            reg_row *row = registry_get_hashed(h->reg, key, it->key_len, hash);
            if (row && check)
                elist_add(existing, "~t", s.id);
            if (row && row_local_pid(h, row, &it->pid))
                it->state = PREP_RUNNING;
            else if (first != m) {
                it->state = PREP_DUP;
                it->dup_of = first;
            } else {
                it->state = PREP_SPAWN;
                it->old = keep_old ? row : NULL;
            }
        }
        m++;
    }
    b->m = m;
    free(table);
    return 0;
}

/* Steps 2 and 3 of a big batch: the same results in the same order as
 * start_one for each child. */
static void batch_run(hub *h, ph_ctx *ctx, batch *b, const start_opts *o, start_result *r)
{
    prep *items = b->items;
    uint32_t m = b->m;
    /* 2. On both threads: start them, build rows and records. */
    prep_job mine = {items, 0,           m / 2,        b->keys.buff,
                     ctx,   o->metadata, h->self_node, term_trust_current()};
    prep_job theirs = mine;
    theirs.from = m / 2;
    theirs.to = m;
    unsigned long long ticket = 0;
    int helped = helper_submit(prepare_job, &theirs, &ticket) == 0;
    prepare_range(&mine);
    if (helped)
        helper_wait(ticket);
    else
        prepare_range(&theirs);
    /* 3. On the hub's thread, in order: tables, hooks, sync, result. */
    for (uint32_t i = 0; i < m; i++) {
        prep *it = &items[i];
        if (i + PREFETCH_AHEAD < m && items[i + PREFETCH_AHEAD].state == PREP_STARTED) {
            const prep *ahead = &items[i + PREFETCH_AHEAD];
            if (ahead->row)
                registry_prefetch(h->reg, ahead->row->hash);
            else
                __builtin_prefetch(ahead->old);
            children_prefetch(h, ahead->pid);
        }
        spec_info s;
        ph_term id =
            it->state == PREP_BAD_SPEC || parse_spec(it->spec, &s) != 0 ? (ph_term){NULL, 0} : s.id;
        switch (it->state) {
        case PREP_BAD_SPEC:
            note_bad_spec(h, r, it->spec);
            break;
        case PREP_RUNNING:
            note_already_started(h, r, id, it->pid);
            break;
        case PREP_DUP: {
            /* as if started one after the other: the first one's fate */
            const prep *first = &items[it->dup_of];
            if (first->state == PREP_STARTED || first->state == PREP_RUNNING)
                note_already_started(h, r, id, first->pid);
            else if (first->state == PREP_FAILED && first->reason)
                note_failed(h, o, r, id, ph_buf_term(first->reason));
            else
                elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            break;
        }
        case PREP_FAILED:
            if (it->reason)
                note_failed(h, o, r, id, ph_buf_term(it->reason));
            else
                elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            break;
        case PREP_SPAWN: /* the helper could not even start: do it here */
            start_one(h, ctx, it->spec, o, r);
            break;
        case PREP_STARTED: {
            if (it->in_place) {
                /* the old row gains this node's copy; its other copies stay */
                const char *key = b->keys.buff + it->key_off;
                reg_row *old = registry_get_hashed(h->reg, key, it->key_len, it->hash);
                if (old == it->old && registry_set_node(h->reg, old, h->self_node, it->pid) == 0 &&
                    child_insert(h, it->rec) == 0) {
                    it->rec = NULL;
                    note_started(h, ctx, o, r, old, id, it->pid);
                    break;
                }
                if (old != it->old) { /* changed meanwhile (a hook): a row of its own */
                    reg_node_pid np = {h->self_node, it->pid};
                    it->row = registry_row_new(key, it->key_len, it->spec, o->metadata, &np, 1);
                }
                if (!it->row) {
                    /* no room: the copy is taken out of the row again */
                    if (old == it->old)
                        registry_orphan_node(h->reg, old, h->self_node);
                    goto no_memory;
                }
            }
            /* copies on other nodes (replicas, a child moving here) stay listed */
            reg_row *old =
                registry_get_hashed(h->reg, it->row->data, it->row->key_len, it->row->hash);
            reg_node_pid few[8], *others = few;
            int n_others = 0;
            if (old && old->n_nodes > 8 && !(others = malloc(old->n_nodes * sizeof *others)))
                others = few; /* out of memory: the next repair lists the rest */
            for (uint16_t x = 0; old && x < old->n_nodes; x++)
                if (old->nodes[x].node != h->self_node && (others != few || n_others < 8))
                    others[n_others++] = old->nodes[x];
            int inserted = registry_insert_row(h->reg, it->row) && child_insert(h, it->rec) == 0;
            for (int x = 0; inserted && x < n_others; x++)
                registry_set_node(h->reg, it->row, others[x].node, others[x].pid);
            if (others != few)
                free(others);
            if (inserted) {
                it->rec = NULL;
                note_started(h, ctx, o, r, it->row, id, it->pid);
                it->row = NULL;
                break;
            }
        }
            /* no room in the tables */
            /* fall through */
        case PREP_NOMEM:
        no_memory:
            LOG_E("hub", "out of memory registering a child");
            ph_exit(ctx, it->pid, (ph_term){"\x77\x04kill", 0});
            elist_add(&r->errors, "{~t, ~a, enomem}", id, atom_text(h->self_node));
            if (it->row && registry_get(h->reg, it->row->data, it->row->key_len) == it->row)
                registry_delete(h->reg, it->row); /* inserted: take it out again */
            else
                registry_row_free(it->row);
            free(it->rec);
            break;
        }
        if (o->parts && r->started.n - r->part_n >= START_PART_ENTRIES)
            start_part_send(h, ctx, o, r, START_PART_ENTRIES);
    }
}

int start_batch(hub *h, ph_ctx *ctx, ph_term list, const start_opts *o, ph_buf *result_out)
{
    list_walk it;
    ph_term spec;
    ph_buf scratch, key;
    start_result r;
    int n = list_begin(&it, list);
    if (n < 0) {
        ph_build(result_out, "{error, {bad_children, ~t}}", list);
        return -1;
    }
    if (n == 0) {
        ph_build(result_out, "{error, no_children}");
        return -1;
    }
    if (ph_buf_init(&scratch) != 0 || ph_buf_init(&key) != 0)
        return -1;
    /* Big batches start on two threads (see batch_run); C alter hooks must
     * see each child first, one at a time. */
    batch big;
    int parallel =
        n >= PARALLEL_MIN && (o->hooks_done || !hooks_has(h->hooks, "child_data_alter_hook"));
    if (parallel) {
        elist existing;
        elist_init(&existing);
        /* The old rows are kept (pointers) only if no hook runs before
         * the batch starts: a handler might change the registry. */
        int keep_old = o->hooks_done || !hooks_has(h->hooks, "pre_children_start_hook");
        parallel =
            batch_prepare(h, list, (uint32_t)n, o->check_existing, keep_old, &existing, &big) == 0;
        if (parallel && existing.n > 0) {
            ph_build(result_out, "{error, {already_started, ~t}}", elist_term(&existing, &scratch));
            elist_free(&existing);
            batch_free(&big);
            ph_buf_free(&scratch);
            ph_buf_free(&key);
            return -1;
        }
        elist_free(&existing);
    }
    if (o->check_existing && !parallel) {
        elist existing;
        elist_init(&existing);
        while (list_next(&it, &spec) > 0) {
            spec_info s;
            ph_buf_reset(&key);
            if (parse_spec(spec, &s) == 0 && registry_key(s.id, &key) == 0 &&
                registry_get(h->reg, key.buff, (uint32_t)key.index))
                elist_add(&existing, "~t", s.id);
        }
        if (existing.n > 0) {
            ph_build(result_out, "{error, {already_started, ~t}}", elist_term(&existing, &scratch));
            elist_free(&existing);
            ph_buf_free(&scratch);
            ph_buf_free(&key);
            return -1;
        }
        elist_free(&existing);
        list_begin(&it, list);
    }
    result_init(&r);
    /* One rehash and one buffer for the whole batch, not one per doubling. */
    if (registry_reserve(h->reg, (uint32_t)n) != 0 || children_reserve(h, (uint32_t)n) != 0 ||
        ph_buf_reserve(&r.started.b, (size_t)n * 48u) != 0)
        LOG_W("hub", "%s: out of memory sizing for %d children", h->cfg.hub_id, n);
    ((start_opts *)o)->want_post = hooks_has(h->hooks, "post_children_start_hook") ||
                                   hooks_has(h->hooks, "process_startups_hook");
    if (!o->hooks_done && hooks_has(h->hooks, "pre_children_start_hook")) {
        elist data;
        elist_init(&data);
        while (list_next(&it, &spec) > 0)
            add_child_data(h, &data, h->self_node, spec, o->metadata);
        ph_buf d;
        ph_buf_init(&d);
        ph_build(&d, "#{children => ~t, start_opts => ~t}", elist_term(&data, &scratch), o->all);
        fire(h, ctx, "pre_children_start_hook", ph_buf_term(&d));
        ph_buf_free(&d);
        elist_free(&data);
        list_begin(&it, list);
    }
    if (parallel) {
        batch_run(h, ctx, &big, o, &r);
        batch_free(&big);
        goto started;
    }
    while (list_next(&it, &spec) > 0) {
        ph_term effective = spec;
        ph_buf altered;
        int have_altered = 0;
        if (!o->hooks_done && hooks_has(h->hooks, "child_data_alter_hook")) {
            /* C handlers may rewrite the child data before it starts. */
            elist d;
            if (elist_init(&d) == 0 &&
                add_child_data(h, &d, h->self_node, spec, o->metadata) == 0 &&
                ph_buf_init(&altered) == 0) {
                have_altered = 1;
                ph_term data = {d.b.buff, 0};
                hooks_dispatch(h->hooks, ctx, "child_data_alter_hook", &data, &altered);
                ph_term new_spec;
                if (data.buf == altered.buff && ph_map_get_atom(data, "child_spec", &new_spec) == 1)
                    effective = new_spec;
            }
            elist_free(&d);
        }
        start_one(h, ctx, effective, o, &r);
        if (have_altered)
            ph_buf_free(&altered);
    }
started:
    if (o->want_post) {
        fire(h, ctx, "post_children_start_hook", elist_term(&r.post, &scratch));
        if (r.startups.n)
            fire(h, ctx, "process_startups_hook", elist_term(&r.startups, &scratch));
    }
    int rollback = o->rollback && r.errors.n > 0;
    if (rollback) {
        /* Stop every child of this call that started (the keys are ids). */
        ph_buf keys;
        ph_buf_init(&keys);
        elist_to(&keys, &r.started_keys);
        stop_batch(h, ctx, ph_buf_term(&keys), NULL, STOP_ANYWHERE);
        ph_buf_free(&keys);
    }
    /* registry_seq: the rows of this call go to the subscriber before the
     * number is taken (its client then knows they are in its cache); with
     * registry_omit they are left out of its messages when the result (an
     * awaitable one, in its own shape) says all of them (the specs and
     * metadata as given: no alter hook ran) */
    long long seq = -1, omitted = -1;
    if (o->has_sub && o->omit_rows && o->awaitable && !o->async_wait && !rollback &&
        !o->hooks_done && !hooks_has(h->hooks, "child_data_alter_hook"))
        seq = subscription_seq_omitting(h, ctx, &o->sub, &r.started_keys, !r.not_alone, &omitted);
    else if (o->has_sub)
        seq = subscription_seq(h, ctx, &o->sub);
    if (r.parts_sent)
        encode_start_result_rest(result_out, &r, rollback, seq, omitted);
    else
        encode_start_result(result_out, &r.started, &r.errors, rollback, seq, omitted);
    result_free(&r);
    ph_buf_free(&scratch);
    ph_buf_free(&key);
    return r.errors.n ? 1 : 0;
}
