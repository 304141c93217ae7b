/* placement.c - where children start: split by ring owner, sent to the owners,
 * forwarded when views disagree, and the starts other members place here. */
#include "hub/hub_internal.h"
#include "strategies/distribution/dist_internal.h"
#include "strategies/migration/migration_ops.h"

/* A list of child specs split by ring owner: the local part, and one
 * list per remote member that owns some of them. */
typedef struct owner_split {
    elist local;
    elist *remote; /* remote[i] goes to nodes[i] */
    uint32_t *nodes;
    int n;
    elist existing; /* with check: ids already in the registry */
    elist unplaced; /* ids the strategy gives no live node (Guided: mapped elsewhere) */
} owner_split;

static void owner_split_free(owner_split *sp);
static int owner_split_run(hub *h, ph_term list, int check, int every_owner, owner_split *sp);
static void forward_misplaced(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                              ph_term opts, ph_term meta, ph_buf *out);
static void send_start_result(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to,
                              const ph_buf *result);
static void defer_start(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                        ph_term opts, const start_opts *o);

static void owner_split_free(owner_split *sp)
{
    elist_free(&sp->local);
    elist_free(&sp->existing);
    elist_free(&sp->unplaced);
    for (int i = 0; i < sp->n; i++)
        elist_free(&sp->remote[i]);
    free(sp->remote);
    free(sp->nodes);
}

/* Adds spec to the part of node: the local one, or that member's. */
static int split_add(hub *h, owner_split *sp, uint32_t node, ph_term spec, size_t share)
{
    elist *target = &sp->local;
    if (node != h->self_node && membership_find(&h->members, node)) {
        int i = 0;
        while (i < sp->n && sp->nodes[i] != node)
            i++;
        if (i == sp->n) {
            if (elist_init(&sp->remote[i]) != 0 || ph_buf_reserve(&sp->remote[i].b, share))
                return -1;
            sp->nodes[sp->n++] = node;
        }
        target = &sp->remote[i];
    }
    if (ph_buf_append_term(&target->b, spec) != 0)
        return -1;
    target->n++;
    return 0;
}

/* A part of the list to split, on the hub's thread or the helper's. */
typedef struct split_part {
    hub *h;
    list_walk w;
    int count; /* elements of the part */
    int check, every_owner;
    size_t share;
    /* On the helper: what it must not share with the hub's thread (the
     * hub's key scratch and its node-name cache) is its own. */
    int on_helper;
    ph_buf key;
    struct name_atom names[8];
    int n_names;
    struct term_trust trust;
    owner_split *sp;
    int rc;
} split_part;

/* hub_owners, for a part: on the helper, the ring's node names become
 * atoms through a cache of the part's own (the hub's may grow meanwhile). */
static int part_owners(split_part *p, ph_term id, uint32_t *out, int max)
{
    if (!p->on_helper)
        return hub_owners(p->h, id, out, max);
    const char *names[MAX_REPLICAS];
    if (max > MAX_REPLICAS)
        max = MAX_REPLICAS;
    int n = p->h->dist->place(p->h->dist_state, id, hub_replication_factor(p->h), names, max);
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < p->n_names && p->names[j].name != names[i])
            j++;
        if (j == p->n_names) {
            uint32_t atom = atom_intern(names[i]);
            if (p->n_names == (int)(sizeof p->names / sizeof p->names[0]))
                p->n_names = 0; /* more nodes than that: start over */
            j = p->n_names++;
            p->names[j] = (struct name_atom){names[i], atom};
        }
        out[i] = p->names[j].atom;
    }
    return n;
}

/* Splits the part's elements into p->sp (see owner_split_run). */
static int split_part_run(split_part *p)
{
    hub *h = p->h;
    owner_split *sp = p->sp;
    ph_buf *key = p->on_helper ? &p->key : &h->key_scratch;
    ph_term spec;
    for (int e = 0; e < p->count && list_next(&p->w, &spec) > 0; e++) {
        spec_info s;
        uint32_t owners[MAX_REPLICAS];
        int k = 0;
        if (parse_spec(spec, &s) == 0) {
            /* the registry's slot loads while the ring hashes the id */
            key->index = 0;
            int keyed = p->check && registry_key(s.id, key) == 0;
            uint32_t hash = keyed ? registry_hash(key->buff, (uint32_t)key->index) : 0;
            if (keyed)
                registry_prefetch(h->reg, hash);
            if (p->every_owner)
                k = part_owners(p, s.id, owners, MAX_REPLICAS);
            else if (!p->on_helper)
                k = (owners[0] = hub_owner(h, s.id)) != ATOM_NONE;
            else /* the ring: its first owner */
                k = part_owners(p, s.id, owners, 1) > 0 && owners[0] != ATOM_NONE;
            if (keyed && registry_get_hashed(h->reg, key->buff, (uint32_t)key->index, hash))
                elist_add(&sp->existing, "~t", s.id);
        }
        if (k > 0 && !p->every_owner && h->cfg.replication_factor != 1) {
            /* a forward: here if this node is one of the owners */
            uint32_t all[MAX_REPLICAS];
            int n = part_owners(p, s.id, all, MAX_REPLICAS);
            for (int j = 0; j < n; j++)
                if (all[j] == h->self_node)
                    owners[0] = h->self_node;
        }
        if (k == 0 && p->every_owner) { /* a valid id with no node to run on */
            elist_add(&sp->unplaced, "~t", s.id);
            continue;
        }
        if (k <= 0) {
            k = 1;
            owners[0] = h->self_node;
        }
        for (int j = 0; j < k; j++)
            if (split_add(h, sp, owners[j], spec, p->share) != 0)
                return -1;
    }
    return 0;
}

static void split_part_job(void *arg)
{
    split_part *p = arg;
    struct term_trust saved = term_trust_push(p->trust.buf, p->trust.len);
    p->rc = split_part_run(p);
    term_trust_pop(saved);
}

static int owner_split_init(hub *h, owner_split *sp)
{
    memset(sp, 0, sizeof *sp);
    size_t most = (size_t)h->members.n + 1;
    sp->remote = calloc(most, sizeof *sp->remote);
    sp->nodes = calloc(most, sizeof *sp->nodes);
    if (elist_init(&sp->local) != 0 || elist_init(&sp->existing) != 0 ||
        elist_init(&sp->unplaced) != 0 || !sp->remote || !sp->nodes)
        return -1;
    return 0;
}

/* The second part's split after the first's, part by part. */
static int owner_split_merge(owner_split *sp, const owner_split *second)
{
    if (elist_append(&sp->local, &second->local) != 0 ||
        elist_append(&sp->existing, &second->existing) != 0 ||
        elist_append(&sp->unplaced, &second->unplaced) != 0)
        return -1;
    for (int i = 0; i < second->n; i++) {
        int j = 0;
        while (j < sp->n && sp->nodes[j] != second->nodes[i])
            j++;
        if (j == sp->n) { /* both have room for every member */
            if (elist_init(&sp->remote[j]) != 0)
                return -1;
            sp->nodes[sp->n++] = second->nodes[i];
        }
        if (elist_append(&sp->remote[j], &second->remote[i]) != 0)
            return -1;
    }
    return 0;
}

/* A list this long is split on two threads: the helper splits its second
 * half while the hub's thread splits the first (the asked node of a 100k
 * start worked alone for its first 60 ms, one core idle). */
#define SPLIT_PARALLEL_MIN 8192

/* Whether the helper may place children while the hub's thread does: the
 * ring is read-only while the hub's thread splits too; the other
 * strategies and sticky placement read or keep state of the hub's. */
static int split_parallel_ok(const hub *h, int n)
{
    return n >= SPLIT_PARALLEL_MIN && h->dist == &consistent_hashing_strategy &&
           !(h->dist_ext && h->dist_ext->sticky);
}

/* Splits a list of child specs by owner in one pass: with every_owner,
 * each child goes to each of its replication_factor owners (a start); else
 * to this node if it is one of them, or to the first (a forward). Children
 * without owners (or that do not parse) stay local: the start reports their
 * errors. With check, the ids already registered are collected in
 * existing. The parts keep the list's order. 0, or -1 when out of memory. */
static int owner_split_run(hub *h, ph_term list, int check, int every_owner, owner_split *sp)
{
    if (owner_split_init(h, sp) != 0)
        return -1;
    /* Each part gets about its share up front (child specs are some 60
     * bytes): no regrowth, and no walk of the whole list to measure it. */
    split_part first = {.h = h, .check = check, .every_owner = every_owner, .sp = sp};
    int n = list_begin(&first.w, list);
    size_t most = (size_t)h->members.n + 1;
    first.share = n > 0 ? (size_t)n * 64u / most * 5 / 4 : 0;
    first.count = n;
    if (!split_parallel_ok(h, n))
        return ph_buf_reserve(&sp->local.b, first.share) != 0 ? -1 : split_part_run(&first);

    owner_split second_sp;
    split_part second = first;
    second.on_helper = 1;
    second.sp = &second_sp;
    second.trust = term_trust_current();
    first.count = n / 2;
    second.count = n - n / 2;
    first.share /= 2;
    second.share = first.share;
    ph_term skipped;
    for (int e = 0; e < first.count; e++)
        if (list_next(&second.w, &skipped) <= 0)
            return -1;
    if (owner_split_init(h, &second_sp) != 0 || ph_buf_init(&second.key) != 0 ||
        ph_buf_reserve(&sp->local.b, first.share) != 0 ||
        ph_buf_reserve(&second_sp.local.b, second.share) != 0) {
        owner_split_free(&second_sp);
        ph_buf_free(&second.key);
        return -1;
    }
    unsigned long long ticket = 0;
    int helped = helper_submit(split_part_job, &second, &ticket) == 0;
    int rc = split_part_run(&first);
    if (helped)
        helper_wait(ticket);
    else
        split_part_job(&second);
    if (rc == 0)
        rc = second.rc != 0 ? -1 : owner_split_merge(sp, &second_sp);
    owner_split_free(&second_sp);
    ph_buf_free(&second.key);
    return rc;
}

/* {'$ph_hub', start, Id, ReplyTo, Specs, Opts} to the owner's hub, the
 * specs copied once, straight from the split. */
void send_start(hub *h, ph_ctx *ctx, uint32_t node, ph_term id, ph_pid reply_to, const elist *specs,
                ph_term opts)
{
    member *m = membership_find(&h->members, node);
    ph_buf msg;
    /* to this node itself: a start that waits for its hooks (start_placed) */
    ph_pid to = node == h->self_node ? ph_self(ctx) : m ? m->hub : (ph_pid){0};
    if ((!m && node != h->self_node) || ph_buf_init_versioned(&msg) != 0)
        return;
    if (ph_buf_reserve(&msg, (size_t)specs->b.index + 256u) == 0 &&
        hub_msg_begin(&msg, HM_START) == 0 && ph_buf_append_term(&msg, id) == 0 &&
        ph_encode_pid(&msg, reply_to) == 0 &&
        (specs->n == 0 || ei_x_encode_list_header(&msg, specs->n) == 0) &&
        ei_x_append_buf(&msg, specs->b.buff, specs->b.index) == 0 &&
        ei_x_encode_empty_list(&msg) == 0 && ph_buf_append_term(&msg, opts) == 0)
        send_own(ctx, to, &msg);
    ph_buf_free(&msg);
}

/* A start with members: children go to their ring owners. */
ph_result start_placed(hub *h, ph_ctx *ctx, ph_term list, ph_term opts_term, const start_opts *o,
                       const ph_from *from, ph_buf *reply)
{
    owner_split sp;
    pending_start *ps = NULL;
    ph_buf idb;
    if (owner_split_run(h, list, o->check_existing, 1, &sp) != 0 || ph_buf_init(&idb) != 0) {
        ph_build(reply, "{error, enomem}");
        owner_split_free(&sp);
        return PH_REPLY;
    }
    if (sp.existing.n) {
        /* the whole call is refused if any id exists anywhere in the cluster */
        ph_buf l;
        ph_buf_init(&l);
        elist_to(&l, &sp.existing);
        ph_build(reply, "{error, {already_started, ~t}}", ph_buf_term(&l));
        ph_buf_free(&l);
        ph_buf_free(&idb);
        owner_split_free(&sp);
        return PH_REPLY;
    }
    if (o->awaitable) {
        ps = calloc(1, sizeof *ps);
        if (!ps || elist_init(&ps->started) != 0 || elist_init(&ps->errors) != 0) {
            free(ps);
            ph_buf_free(&idb);
            owner_split_free(&sp);
            ph_build(reply, "{error, enomem}");
            return PH_REPLY;
        }
        ps->id = ph_make_ref();
        ps->from = ph_from_copy(from);
        ps->rollback = o->rollback;
        ps->formatted = o->async_wait;
        ps->has_sub = o->has_sub;
        ps->sub = o->sub;
        ps->first = o->first;
        ps->next = h->pending;
        h->pending = ps;
    }
    if (ps)
        ph_encode_ref(&idb, &ps->id);
    else
        ph_build(&idb, "undefined");
    /* Our ring's digest goes along: an owner with the same ring trusts
     * the placement instead of hashing every child again. */
    ph_buf ropts;
    ph_term owner_opts = opts_term;
    if (ph_buf_init(&ropts) == 0 &&
        opts_with(&ropts, opts_term, "{ring, ~i}", hub_view_digest(h)) == 0)
        owner_opts = ph_buf_term(&ropts);
    for (int i = 0; i < sp.n; i++) {
        send_start(h, ctx, sp.nodes[i], ph_buf_term(&idb), ph_self(ctx), &sp.remote[i], owner_opts);
        if (ps)
            pending_expect(ps, sp.nodes[i], 1);
    }
    ph_buf_free(&idb);
    if (sp.local.n && start_hooks_wait(h)) {
        /* The hooks' M/F/A handlers are awaited before these start: the
         * local part comes back as a start message (handle_remote_start),
         * answered like a member's. */
        ph_buf lid;
        if (ph_buf_init(&lid) == 0) {
            if (ps)
                ph_encode_ref(&lid, &ps->id);
            else
                ph_build(&lid, "undefined");
            send_start(h, ctx, h->self_node, ph_buf_term(&lid), ph_self(ctx), &sp.local,
                       owner_opts);
            if (ps)
                pending_expect(ps, h->self_node, 1);
            ph_buf_free(&lid);
        }
    } else if (sp.local.n) {
        ph_buf result, l;
        ph_buf_init(&result);
        ph_buf_init(&l);
        elist_to(&l, &sp.local);
        start_opts lo = *o;
        lo.check_existing = 0; /* checked above for the whole call */
        lo.rollback = 0;       /* decided when every part has answered */
        lo.has_sub = 0;        /* the whole call's result carries the number */
        start_batch(h, ctx, ph_buf_term(&l), &lo, &result);
        if (ps) {
            /* our own encoding: trusted like a delivered message */
            struct term_trust saved = term_trust_push(result.buff, result.index);
            merge_result(&ps->started, &ps->errors, ph_buf_term(&result));
            term_trust_pop(saved);
        }
        ph_buf_free(&result);
        ph_buf_free(&l);
    }
    ph_buf_free(&ropts);
    if (ps && sp.unplaced.n) {
        list_walk uw;
        ph_term cid;
        ph_buf ul;
        if (ph_buf_init(&ul) == 0) {
            elist_to(&ul, &sp.unplaced);
            list_begin(&uw, ph_buf_term(&ul));
            while (list_next(&uw, &cid) > 0)
                elist_add(&ps->errors, "{~t, ~a, no_node}", cid, atom_text(h->self_node));
            ph_buf_free(&ul);
        }
    }
    if (!ps) {
        ph_build(reply, "{ok, start_initiated}");
    } else if (ps->n_waiting == 0) {
        pending_reply(h, ctx, ps);
        pending_free(h, ps);
    } else {
        ph_buf t;
        if (ph_buf_init(&t) == 0 && ph_encode_ref(&t, &ps->id) == 0)
            send_self_after(ctx, (unsigned)o->timeout, "{'$ph_hub', ~a, ~t}",
                            hub_msg_name(HM_START_TIMEOUT), ph_buf_term(&t));
        ph_buf_free(&t);
    }
    owner_split_free(&sp);
    return ps ? PH_NOREPLY : PH_REPLY; /* ps: answered by pending_reply, now or later */
}

/* The children of a start placed here that this node's ring gives to other
 * members (the sender's ring disagreed: membership changed meanwhile) go on
 * to those owners, who answer reply_to themselves; reply_to first learns
 * which nodes will answer too. Returns the specs to start here in out. */
static void forward_misplaced(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                              ph_term opts, ph_term meta, ph_buf *out)
{
    owner_split sp;
    ph_buf fopts, note, data, scratch;
    if (owner_split_run(h, specs, 0, 0, &sp) != 0 || sp.n == 0 || ph_buf_init(&fopts) != 0) {
        ph_buf_append_term(out, specs); /* keep them all: a start reports errors */
        owner_split_free(&sp);
        return;
    }
    ph_buf_init(&note);
    ph_buf_init(&data);
    ph_buf_init(&scratch);
    elist nodes, hook;
    elist_init(&nodes);
    elist_init(&hook);
    opts_with(&fopts, opts, "{forwarded, true}");
    for (int i = 0; i < sp.n; i++)
        elist_add(&nodes, "~a", atom_text(sp.nodes[i]));
    if (ph_match(id, "undefined") != 1) {
        ph_build(&note, "{'$ph_hub', ~a, ~t, ~a, ~t}", hub_msg_name(HM_START_FORWARDED), id,
                 atom_text(h->self_node), elist_term(&nodes, &scratch));
        ph_send(ctx, reply_to, ph_buf_term(&note));
    }
    int want_hook = hooks_has(h->hooks, "forwarded_migration_hook");
    for (int i = 0; i < sp.n; i++) {
        send_start(h, ctx, sp.nodes[i], id, reply_to, &sp.remote[i], ph_buf_term(&fopts));
        if (!want_hook)
            continue;
        /* {Node, [child_data]} */
        elist children;
        list_walk w;
        ph_term spec;
        elist_init(&children);
        ph_buf_reset(&scratch);
        elist_to(&scratch, &sp.remote[i]);
        list_begin(&w, ph_buf_term(&scratch));
        while (list_next(&w, &spec) > 0)
            add_child_data(h, &children, sp.nodes[i], spec, meta);
        ph_buf_reset(&data);
        elist_add(&hook, "{~a, ~t}", atom_text(sp.nodes[i]), elist_term(&children, &data));
        elist_free(&children);
    }
    LOG_I("hub", "%s: %d member(s) own some children placed here; forwarded", h->cfg.hub_id, sp.n);
    if (want_hook)
        fire(h, ctx, "forwarded_migration_hook", elist_term(&hook, &data));
    elist_to(out, &sp.local);
    elist_free(&nodes);
    elist_free(&hook);
    ph_buf_free(&fopts);
    ph_buf_free(&note);
    ph_buf_free(&data);
    ph_buf_free(&scratch);
    owner_split_free(&sp);
}

/* {'$ph_hub', start, Id, ReplyTo, Specs, Opts}: children placed here. */
void handle_remote_start(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                         ph_term opts_term)
{
    start_opts o;
    ph_buf result, mine;
    ph_buf_init(&result);
    ph_buf_init(&mine);
    if (parse_opts(opts_term, &o, &result) == 0) {
        o.check_existing = 0; /* the caller checked; a duplicate still fails here */
        o.rollback = 0;
        ph_term here = specs;
        if (h->dist->children_init && !o.handoff) {
            /* the mapping this start carries (Guided) is remembered here too */
            ph_buf why;
            if (ph_buf_init(&why) == 0) {
                hub_children_init(h, specs, opts_term, &why);
                ph_buf_free(&why);
            }
        }
        if (o.handoff) {
            int refused = handoff_filter(h, specs, &mine);
            if (refused)
                LOG_I("hub",
                      "%s: %d child(ren) handed over by %s refused: stopped meanwhile, "
                      "or moving away from here",
                      h->cfg.hub_id, refused, atom_text(reply_to.node));
            if (mine.index) /* else all of them are accepted: specs as they came */
                here = ph_buf_term(&mine);
            /* a move (not an orphan: those carry no id) under a sticky
             * strategy: ours stays while the sender's copy is listed */
            if (h->dist_ext && h->dist_ext->sticky && ph_match(id, "undefined") != 1)
                moved_in_mark(h, here, reply_to.node,
                              monotonic_ms() + h->migration->move_timeout(h) +
                                  (uint64_t)(o.handover_wait > 0 ? o.handover_wait : 0));
            /* Placed by the sender's view: what this node does not own
             * goes on to its owner. Under the same view as ours (a join's
             * moves, the digest they carry) every child is ours already. */
            if (!(o.has_ring && o.ring == hub_view_digest(h)))
                schedule_reconcile(h, ctx, RECONCILE_MS);
        } else if (!o.forwarded && h->members.n > 0 &&
                   !(o.has_ring && o.ring == hub_view_digest(h))) {
            forward_misplaced(h, ctx, id, reply_to, specs, opts_term, o.metadata, &mine);
            here = ph_buf_term(&mine);
        }
        if (ph_match(here, "[]") == 1) {
            ph_build(&result,
                     "{ok, #{status => ok, started => [], errors => [], rollback => false}}");
        } else if (start_hooks_wait(h)) {
            defer_start(h, ctx, id, reply_to, here, opts_term, &o);
            ph_buf_free(&result);
            ph_buf_free(&mine);
            return;
        } else {
            start_batch(h, ctx, here, &o, &result);
        }
    }
    send_start_result(h, ctx, id, reply_to, &result);
    ph_buf_free(&result);
    ph_buf_free(&mine);
}

/* The answer of a start placed here: {'$ph_hub', start_result, Id, Node,
 * Result} to reply_to (none when Id is undefined). */
static void send_start_result(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to,
                              const ph_buf *result)
{
    ph_buf msg;
    /* The rows first: the caller may act on them (rollback) when the result comes. */
    flush_sync(h, ctx);
    if (ph_match(id, "undefined") != 1) {
        /* Versioned and built around the result's bytes: sent without a copy. */
        if (ph_buf_init_versioned(&msg) != 0)
            return;
        if (ph_buf_reserve(&msg, (size_t)result->index + 256u) == 0 &&
            hub_msg_begin(&msg, HM_START_RESULT) == 0 && ph_buf_append_term(&msg, id) == 0 &&
            atom_encode(&msg, h->self_node) == 0 &&
            ph_buf_append_term(&msg, ph_buf_term(result)) == 0)
            send_own(ctx, reply_to, &msg); /* encoded here: not walked again */
        ph_buf_free(&msg);
    }
}

/* A start placed here that waits for its hooks' M/F/A handlers. */
typedef struct deferred_start {
    ph_buf id, opts;
    ph_pid reply_to;
} deferred_start;

static void deferred_drop(void *arg)
{
    deferred_start *d = arg;
    ph_buf_free(&d->id);
    ph_buf_free(&d->opts);
    free(d);
}

/* The hooks ran: the children start, those with the same metadata in one
 * batch (an alter handler may give a child metadata of its own). */
static void deferred_run(hub *h, ph_ctx *ctx, ph_term specs, ph_term metas, void *arg)
{
    deferred_start *d = arg;
    start_opts o;
    ph_buf result, group;
    elist started, errors;
    list_walk ws, wm;
    ph_term spec, meta, group_meta = {0};
    ph_buf_init(&result);
    ph_buf_init(&group);
    elist_init(&started);
    elist_init(&errors);
    if (parse_opts(ph_buf_term(&d->opts), &o, &result) == 0) {
        o.check_existing = 0;
        o.rollback = 0;
        o.hooks_done = 1;
        list_begin(&ws, specs);
        list_begin(&wm, metas);
        elist part;
        elist_init(&part);
        for (;;) {
            int more = list_next(&ws, &spec) > 0 && list_next(&wm, &meta) > 0;
            if (part.n && (!more || !ph_term_equal(meta, group_meta))) {
                ph_buf_reset(&group);
                ph_buf_reset(&result);
                elist_to(&group, &part);
                o.metadata = group_meta;
                start_batch(h, ctx, ph_buf_term(&group), &o, &result);
                merge_result(&started, &errors, ph_buf_term(&result));
                elist_free(&part);
                elist_init(&part);
            }
            if (!more)
                break;
            group_meta = meta;
            elist_add(&part, "~t", spec);
        }
        elist_free(&part);
        ph_buf_reset(&result);
        encode_start_result(&result, &started, &errors, 0, -1, -1);
    }
    send_start_result(h, ctx, ph_buf_term(&d->id), d->reply_to, &result);
    ph_buf_free(&result);
    ph_buf_free(&group);
    elist_free(&started);
    elist_free(&errors);
    deferred_drop(d);
}

static void defer_start(hub *h, ph_ctx *ctx, ph_term id, ph_pid reply_to, ph_term specs,
                        ph_term opts, const start_opts *o)
{
    deferred_start *d = calloc(1, sizeof *d);
    elist metas;
    list_walk w;
    ph_term spec;
    ph_buf ml;
    if (!d || ph_buf_init(&d->id) != 0 || ph_buf_init(&d->opts) != 0 ||
        ph_buf_append_term(&d->id, id) != 0 || ph_buf_append_term(&d->opts, opts) != 0 ||
        elist_init(&metas) != 0) {
        LOG_E("hub", "%s: out of memory deferring a start to its hooks", h->cfg.hub_id);
        if (d)
            deferred_drop(d);
        return;
    }
    d->reply_to = reply_to;
    list_begin(&w, specs);
    while (list_next(&w, &spec) > 0)
        elist_add(&metas, "~t", o->metadata);
    ph_buf_init(&ml);
    elist_to(&ml, &metas);
    run_start_hooks(h, ctx, specs, ph_buf_term(&ml), opts, deferred_run, deferred_drop, d);
    ph_buf_free(&ml);
    elist_free(&metas);
}
