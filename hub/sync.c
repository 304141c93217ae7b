/* sync.c - the registry across the cluster: collecting this node's changes
 * and handing them to the synchronization strategy
 * (strategies/synchronization/), applying the members' changes and repairs. */
#include "hub/hub_internal.h"

#include "strategies/synchronization/sync_ops.h"

/* --- publishing registry changes to the other members ---------------- */

/* Appends {Cid, Spec, Pid, Meta, Stamp} of row to l. */
void append_row_entry(elist *l, const reg_row *row, ph_pid pid)
{
    /* The row's terms were checked when it was stored: copied as bytes. */
    ph_buf *b = &l->b;
    if (ph_buf_reserve(b, 128u + row->key_len + row->spec_len + row->meta_len) == 0 &&
        ei_x_encode_tuple_header(b, 5) == 0 &&
        ei_x_append_buf(b, row->data, (int)(row->key_len + row->spec_len)) == 0 &&
        ph_encode_pid(b, pid) == 0 &&
        ei_x_append_buf(b, row->data + row->key_len + row->spec_len, (int)row->meta_len) == 0 &&
        ei_x_encode_ulonglong(b, (unsigned long long)row->stamp) == 0)
        l->n++;
}

void note_registered(hub *h, const reg_row *row, ph_pid pid)
{
    if (h->members.n > 0)
        append_row_entry(&h->sync_registered, row, pid);
}

void note_unregistered(hub *h, ph_term cid)
{
    if (h->members.n == 0)
        return;
    if (ph_buf_append_term(&h->sync_unregistered.b, cid) == 0)
        h->sync_unregistered.n++;
}

/* Sends a message the hub encoded itself into the versioned buffer b:
 * well-formed by construction, so ph_send finds its end with the quick
 * walk instead of validating it (sync and start messages are megabytes). */
void send_own(ph_ctx *ctx, ph_pid to, const ph_buf *b)
{
    struct term_trust saved = term_trust_push(b->buff, b->index);
    ph_send(ctx, to, ph_buf_term(b));
    term_trust_pop(saved);
}

/* {'$ph_hub', Kind, Node, List} to one member, or to all (node 0). */
void send_sync(hub *h, ph_ctx *ctx, uint32_t only, hub_msg_kind kind, const elist *l)
{
    /* Sent in pieces: the message's head, the list's elements from l
     * itself, its tail. The list (megabytes after a big start) is neither
     * copied into a message nor into each member's frame. */
    static const char nil = ERL_NIL_EXT;
    ph_buf head;
    if (ph_buf_init_versioned(&head) != 0)
        return;
    if (hub_msg_begin(&head, kind) == 0 && atom_encode(&head, h->self_node) == 0 &&
        (l->n == 0 || ei_x_encode_list_header(&head, l->n) == 0)) {
        struct iovec pieces[3] = {{head.buff, (size_t)head.index},
                                  {l->b.buff, l->n ? (size_t)l->b.index : 0},
                                  {(void *)&nil, 1}};
        for (int i = 0; i < h->members.n; i++)
            if (!only || h->members.members[i].node == only) {
                route_message_pieces(ph_self(ctx), h->members.members[i].hub, pieces, 3);
                metric_inc(&hm_sync_sent);
            }
    }
    ph_buf_free(&head);
}

void flush_sync(hub *h, ph_ctx *ctx)
{
    if (h->test_drop_syncs > 0 && (h->sync_registered.n || h->sync_unregistered.n)) {
        /* test-only: lose this update, for the periodic repair to fix */
        h->test_drop_syncs--;
        LOG_W("hub", "%s: PHNODE_TEST_DROP_SYNC: dropped a registry update", h->cfg.hub_id);
        ph_buf_reset(&h->sync_registered.b);
        ph_buf_reset(&h->sync_unregistered.b);
        h->sync_registered.n = h->sync_unregistered.n = 0;
        return;
    }
    if (h->sync_registered.n || h->sync_unregistered.n)
        sync_strategy(h)->propagate(h, ctx, &h->sync_registered, &h->sync_unregistered);
    ph_buf_reset(&h->sync_registered.b);
    ph_buf_reset(&h->sync_unregistered.b);
    h->sync_registered.n = h->sync_unregistered.n = 0;
}

/* Removes this node from the child's registry row (remove hook). */
void unregister_local(hub *h, ph_ctx *ctx, const char *key, uint32_t key_len)
{
    reg_row *row = registry_get(h->reg, key, key_len);
    if (row)
        unregister_local_row(h, ctx, row);
}

/* The same for a row in hand; 1 if the row went with it (it named no
 * other node), else 0. */
int unregister_local_row(hub *h, ph_ctx *ctx, reg_row *row)
{
    note_unregistered(h, reg_row_key(row));
    if (!hooks_has(h->hooks, "registry_pid_remove_hook")) /* the common case: no copy */
        return registry_remove_node(h->reg, row, h->self_node);
    ph_buf k;
    if (ph_buf_init(&k) != 0)
        return 0;
    ph_buf_append_term(&k, reg_row_key(row));
    int gone = registry_remove_node(h->reg, row, h->self_node);
    fire_remove(h, ctx, ph_buf_term(&k), h->self_node);
    ph_buf_free(&k);
    return gone;
}

/* {Cid, Spec, Pid, Meta} of every child this node runs. */
void sync_local_rows(hub *h, elist *l)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    if (h->partitioned) /* its rows name children stopped here (partition.c) */
        return;
    /* Reserved at the size of the last such list: one allocation instead
     * of a chain of doublings (each a copy, and a hole in the heap). */
    if (h->local_rows_bytes)
        (void)ph_buf_reserve(&l->b, h->local_rows_bytes + h->local_rows_bytes / 8); /* a hint */
    while ((row = registry_next(h->reg, &i)) != NULL)
        if (row_local_pid(h, row, &pid))
            append_row_entry(l, row, pid);
    h->local_rows_bytes = (size_t)l->b.index;
}

/* The rows this node runs, to a member that just joined (it learns the
 * whole registry from all members this way). With detach they go as a
 * repair: the member also drops the rows it believes we run and we do
 * not (it kept us as a member while we had lost it). */
void send_local_registry(hub *h, ph_ctx *ctx, uint32_t node, int detach)
{
    elist l;
    if (elist_init(&l) != 0)
        return;
    sync_local_rows(h, &l);
    send_rows_to_member(h, ctx, node, detach, &l);
    elist_free(&l);
}

/* The same with the list of our rows l built by the caller. */
void send_rows_to_member(hub *h, ph_ctx *ctx, uint32_t node, int detach, const elist *l)
{
    if (detach && !h->partitioned)
        send_sync(h, ctx, node, HM_REPAIR, l);
    else if (l->n)
        send_sync(h, ctx, node, HM_REGISTERED, l);
    const sync_ops *ops = sync_strategy(h);
    if (ops->joined)
        ops->joined(h, ctx, node);
}

/* The periodic repair (every sync_interval), as the strategy does it. */
void send_repair(hub *h, ph_ctx *ctx)
{
    sync_strategy(h)->tick(h, ctx);
    send_self_after(ctx, h->cfg.sync_interval, "{'$ph_hub', ~a}", hub_msg_name(HM_REPAIR_TICK));
}

/* Every element is {Cid, Spec, Pid, Meta, Stamp} (or without the stamp,
 * from an older node) with a valid id and a pid of node. */
int rows_well_formed(uint32_t node, ph_term list)
{
    list_walk w;
    ph_term e, cid, p;
    ph_pid pid;
    unsigned long long stamp;
    int type;
    if (list_begin(&w, list) < 0)
        return 0;
    while (list_next(&w, &e) > 0) {
        if ((ph_match(e, "{~t, _, ~t, _, ~u}", &cid, &p, &stamp) != 1 &&
             ph_match(e, "{~t, _, ~t, _}", &cid, &p) != 1) ||
            ph_decode_pid(p, &pid) != 0 || pid.node != node)
            return 0;
        type = ph_term_type(cid, NULL);
        if (type != ERL_BINARY_EXT && type != ERL_ATOM_EXT && type != ERL_SMALL_ATOM_EXT &&
            type != ERL_ATOM_UTF8_EXT && type != ERL_SMALL_ATOM_UTF8_EXT)
            return 0;
    }
    return 1;
}

void apply_repair(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    /* A repair detaches every row it does not name: only a whole, sound
     * list may do that. */
    if (!rows_well_formed(node, list)) {
        LOG_W("hub", "%s: ignored a malformed repair message for %s", h->cfg.hub_id,
              atom_text(node));
        return;
    }
    apply_registered(h, ctx, node, list); /* append */
    /* detach: rows on node that the list does not name */
    registry *seen = registry_new();
    list_walk w;
    ph_term e, cid;
    ph_buf key;
    if (!seen || ph_buf_init(&key) != 0) {
        registry_free(seen);
        return;
    }
    list_begin(&w, list);
    while (list_next(&w, &e) > 0) {
        ph_buf_reset(&key);
        if ((ph_match(e, "{~t, _, _, _, _}", &cid) == 1 ||
             ph_match(e, "{~t, _, _, _}", &cid) == 1) &&
            registry_key(cid, &key) == 0)
            registry_put(seen, key.buff, (uint32_t)key.index, cid, cid, NULL, 0);
    }
    elist stale;
    elist_init(&stale);
    uint32_t it = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &it)) != NULL) {
        int on_node = 0;
        for (uint16_t j = 0; j < row->n_nodes; j++)
            on_node |= row->nodes[j].node == node;
        if (on_node && !registry_get(seen, row->data, row->key_len))
            elist_add(&stale, "~t", reg_row_key(row));
    }
    if (stale.n) {
        ph_buf l;
        ph_buf_init(&l);
        elist_to(&l, &stale);
        LOG_I("hub", "%s: repair with %s detached %d stale row(s)", h->cfg.hub_id, atom_text(node),
              stale.n);
        apply_unregistered(h, ctx, node, ph_buf_term(&l));
        ph_buf_free(&l);
    }
    elist_free(&stale);
    ph_buf_free(&key);
    registry_free(seen);
}

/* A message of the synchronization strategy's own (gossip_*). */
void sync_message(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    const sync_ops *ops = sync_strategy(h);
    if (ops->message)
        ops->message(h, ctx, m);
    else
        LOG_D("hub", "%s: ignored %s (synchronization is %s)", h->cfg.hub_id, hub_msg_name(m->kind),
              ops->type);
}

/* One row of a member's registered message, {Cid, Spec, Pid, Meta, Stamp},
 * with its registry key and hash. */
typedef struct published_row {
    ph_term spec, meta;
    uint32_t spec_len, meta_len; /* their encodings' lengths */
    ph_pid pid;
    uint64_t stamp; /* 0 from a node that sends none */
    ph_buf key;
    uint32_t hash;
} published_row;

/* Steps over the fields of the row tuple at e into x; the index past the
 * row, or -1 when it is not a row (any shape of the list's elements is
 * stepped over by the caller). */
static int read_published(ph_term e, published_row *x, ph_term *cid, ph_term *pid)
{
    int index = e.index, arity;
    if (ei_decode_tuple_header(e.buf, &index, &arity) != 0 || (arity != 4 && arity != 5))
        return -1;
    *cid = (ph_term){e.buf, index};
    if (term_skip_valid(e.buf, &index) != 0)
        return -1;
    x->spec = (ph_term){e.buf, index};
    if (term_skip_valid(e.buf, &index) != 0)
        return -1;
    x->spec_len = (uint32_t)(index - x->spec.index);
    *pid = (ph_term){e.buf, index};
    if (term_skip_valid(e.buf, &index) != 0)
        return -1;
    x->meta = (ph_term){e.buf, index};
    if (term_skip_valid(e.buf, &index) != 0)
        return -1;
    x->meta_len = (uint32_t)(index - x->meta.index);
    unsigned long long stamp = 0;
    if (arity == 5 && ei_decode_ulonglong(e.buf, &index, &stamp) != 0)
        return -1;
    x->stamp = stamp;
    return index;
}

/* The next well-formed row of node's list in x; 0 at the end. Each row is
 * walked once: its fields are stepped over in place, and the walk goes on
 * after the last. */
static int next_published(list_walk *w, uint32_t node, published_row *x)
{
    ph_term e, cid, p;
    while (list_at(w, &e) > 0) {
        int end = read_published(e, x, &cid, &p);
        if (end < 0) {
            end = e.index;
            if (term_skip_valid(e.buf, &end) != 0)
                return 0; /* cannot happen in a validated message: the walk ends */
            list_past(w, end);
            continue;
        }
        list_past(w, end);
        x->key.index = 0;
        if (ph_decode_pid(p, &x->pid) != 0 || x->pid.node != node ||
            registry_key(cid, &x->key) != 0)
            continue;
        x->hash = registry_hash(x->key.buff, (uint32_t)x->key.index);
        return 1;
    }
    return 0;
}

/* A copy node runs of a line started before a stop this node holds (a
 * tomb, or a stop kept for members that missed it): the copy is sent the
 * stop (a restart or a hand-off made where the stop had not arrived). A
 * kept stop older than the copy's line is dropped: the id was started
 * again since, and the stop must not reach the new line's copies. */
static void late_copy_check(hub *h, elist *late, const reg_row *row, uint64_t stamp)
{
    uint64_t stop = tomb_stamp(h, row->data, row->key_len);
    if (registry_count(h->unconfirmed_stops)) {
        reg_row *k = registry_get(h->unconfirmed_stops, row->data, row->key_len);
        if (k && k->stamp < stamp)
            registry_delete(h->unconfirmed_stops, k);
        else if (k && k->stamp > stop)
            stop = k->stamp;
    }
    if (stop > stamp)
        elist_add(late, "{~t, ~u}", reg_row_key(row), (unsigned long long)stop);
}

static void apply_published(hub *h, ph_ctx *ctx, uint32_t node, const published_row *x, elist *late)
{
    reg_row *row = registry_get_hashed(h->reg, x->key.buff, (uint32_t)x->key.index, x->hash);
    ph_pid mine;
    /* one copy too many: one of them goes; unless ours is moving to the
     * node that published it (a join's moves): ours stops when it answers */
    if (row && row_local_pid(h, row, &mine) && row->n_nodes >= hub_replication_factor(h) &&
        moving_target(h, x->key.buff, (uint32_t)x->key.index) != node)
        schedule_reconcile(h, ctx, RECONCILE_MS);
    /* ProcessHub's hooks (§5.1, §12): a new copy gives {Cid, [{Node, Pid}]}
     * (bulk_insert's diff); a new pid of a copy on the same node is a
     * restart there: the full list and child_process_pid_update_hook */
    int had_node = 0, same = 0;
    for (uint16_t i = 0; row && i < row->n_nodes; i++)
        if (row->nodes[i].node == node) {
            had_node = 1;
            same = ph_pid_equal(row->nodes[i].pid, x->pid);
        }
    if (row)
        registry_set_node(h->reg, row, node, x->pid);
    else {
        reg_node_pid np = {node, x->pid};
        row = registry_put_sized(h->reg, x->key.buff, (uint32_t)x->key.index, x->hash, x->spec,
                                 x->spec_len, x->meta, x->meta_len, &np, 1);
    }
    if (!row)
        return;
    hub_stamp_seen(h, x->stamp);
    if (x->stamp > row->stamp) /* copies of two lines: the later one's */
        row->stamp = x->stamp;
    late_copy_check(h, late, row, x->stamp);
    if (same)
        return;
    if (had_node) {
        fire_insert(h, ctx, row);
        fire_pid_update(h, ctx, node, x->pid);
    } else {
        fire_insert_one(h, ctx, reg_row_key(row), node, x->pid);
    }
}

/* A member's rows as it published them. Rows are read REG_AHEAD_SLOT ahead
 * of the one applied, so that their registry slots, then their rows, load
 * meanwhile. */
void apply_registered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    list_walk w;
    published_row rows[REG_AHEAD_SLOT];
    elist late;
    int n = list_begin_trusted(&w, list), ready = 0;
    if (node == h->self_node || n < 0)
        return;
    if (elist_init(&late) != 0)
        return;
    for (; ready < REG_AHEAD_SLOT; ready++)
        if (ph_buf_init(&rows[ready].key) != 0)
            goto out;
    if (registry_reserve(h->reg, (uint32_t)n) != 0)
        LOG_W("hub", "%s: out of memory sizing the registry for %d rows", h->cfg.hub_id, n);
    /* rows[(cur + k) % REG_AHEAD_SLOT], k < have: read, not yet applied */
    int cur = 0, have = 0, more = 1;
    for (;;) {
        while (more && have < REG_AHEAD_SLOT) {
            published_row *x = &rows[(cur + have) % REG_AHEAD_SLOT];
            if (!(more = next_published(&w, node, x)))
                break;
            registry_prefetch(h->reg, x->hash);
            have++;
        }
        if (!have)
            break;
        if (have > REG_AHEAD_ROW)
            registry_prefetch_row(h->reg, rows[(cur + REG_AHEAD_ROW) % REG_AHEAD_SLOT].hash);
        apply_published(h, ctx, node, &rows[cur], &late);
        cur = (cur + 1) % REG_AHEAD_SLOT;
        have--;
    }
    if (late.n) {
        LOG_I("hub", "%s: %s registered %d cop(ies) started before their stop: sent the stop",
              h->cfg.hub_id, atom_text(node), late.n);
        send_stop_late_to(h, ctx, node, &late);
    }
out:
    elist_free(&late);
    for (int i = 0; i < ready; i++)
        ph_buf_free(&rows[i].key);
}

void apply_unregistered(hub *h, ph_ctx *ctx, uint32_t node, ph_term list)
{
    list_walk w, ahead;
    ph_term cid, next;
    ph_buf key;
    reg_ahead hint; /* ids whose slots, then rows, are asked for ahead */
    if (node == h->self_node || list_begin(&w, list) < 0 || ph_buf_init(&key) != 0)
        return;
    if (reg_ahead_init(&hint) != 0) {
        ph_buf_free(&key);
        return;
    }
    list_begin(&ahead, list);
    for (int i = 0; i < REG_AHEAD_SLOT; i++)
        reg_ahead_next(&hint, h->reg, list_next(&ahead, &next) > 0 ? &next : NULL);
    while (list_next(&w, &cid) > 0) {
        reg_ahead_next(&hint, h->reg, list_next(&ahead, &next) > 0 ? &next : NULL);
        ph_buf_reset(&key);
        reg_row *row = registry_key(cid, &key) == 0
                           ? registry_get(h->reg, key.buff, (uint32_t)key.index)
                           : NULL;
        if (!row)
            continue;
        registry_remove_node(h->reg, row, node);
        fire_remove(h, ctx, cid, node);
    }
    reg_ahead_free(&hint);
    ph_buf_free(&key);
}

/* A member left: its children leave every row (they ran there). With
 * keep_orphans a row left without a node stays, as an orphan for its new
 * owner to restart; without, it goes. each (when given) is called with
 * every row that stays and had a copy there, and with every orphan. */
void drop_node_rows(hub *h, ph_ctx *ctx, uint32_t node, int keep_orphans, row_fn each, void *arg)
{
    uint32_t i = 0;
    reg_row *row;
    ph_buf key;
    int copy_key = hooks_has(h->hooks, "registry_pid_remove_hook");
    if (ph_buf_init(&key) != 0)
        return;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        int hosted = 0;
        for (uint16_t j = 0; j < row->n_nodes; j++)
            hosted |= row->nodes[j].node == node;
        if (!hosted) {
            if (each && row->n_nodes == 0)
                each(h, ctx, arg, row);
            continue;
        }
        if (copy_key) {
            ph_buf_reset(&key);
            ph_buf_append_term(&key, reg_row_key(row));
        }
        int deleted = 0;
        if (keep_orphans)
            registry_orphan_node(h->reg, row, node);
        else
            deleted = registry_remove_node(h->reg, row, node); /* iteration goes on */
        if (copy_key)
            fire_remove(h, ctx, ph_buf_term(&key), node);
        if (each && !deleted)
            each(h, ctx, arg, row);
    }
    ph_buf_free(&key);
}
