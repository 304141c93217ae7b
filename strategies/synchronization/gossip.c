/* gossip.c - the Gossip synchronization strategy (ProcessHub's §10.2, without
 * its quirks): a registry change spreads from member to member, each sending
 * it to at most `recipients` others; the periodic repair collects every
 * member's rows in a gossip round and spreads them the same way. */
#include "strategies/synchronization/sync_ops.h"

/* How long an update waits for an earlier one of the same node (a gap)
 * before it is applied anyway (the repair mends what was lost). */
#define HOLD_MS 1000
/* The timer that prunes the caches and ends the waits, while any exist. */
#define TICK_MS 200

/* --- small sets of node atoms -------------------------------------------- */

typedef struct nset {
    uint32_t *v;
    int n, cap;
} nset;

static int nset_has(const nset *s, uint32_t node)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i] == node)
            return 1;
    return 0;
}

static int nset_add(nset *s, uint32_t node)
{
    if (nset_has(s, node))
        return 0;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        uint32_t *v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = node;
    return 0;
}

/* Adds every atom of a list; -1 if it is not a proper list of atoms. */
static int nset_read(nset *s, ph_term list)
{
    list_walk w;
    ph_term e;
    char name[PH_ATOM_BUF];
    uint32_t node;
    if (list_begin(&w, list) < 0)
        return -1;
    while (list_next(&w, &e) > 0)
        if (ph_match(e, "~a", name) != 1 || (node = atom_intern(name)) == ATOM_NONE ||
            nset_add(s, node) != 0)
            return -1;
    return 0;
}

static int nset_encode(ph_buf *b, const nset *s)
{
    if (s->n && ei_x_encode_list_header(b, s->n) != 0)
        return -1;
    for (int i = 0; i < s->n; i++)
        if (atom_encode(b, s->v[i]) != 0)
            return -1;
    return ei_x_encode_empty_list(b) == 0 ? 0 : -1;
}

/* --- the state ------------------------------------------------------------- */

/* A gossip message this node has handled, by its ref, kept sync_interval:
 * a second copy is not applied again, and what it knows of who has it
 * (acks) and who was sent it (targeted) grows with every copy. */
typedef struct seen {
    struct seen *next_hash, *next_age;
    ph_ref ref;
    uint64_t expires_ms;
    int sent;    /* members this node sent it to */
    int applied; /* applied here */
    nset acks, targeted;
} seen;

/* One update of a member, by its number: waiting for its predecessors
 * (!applied), or applied and kept a while to replay over a repair snapshot
 * older than it. */
typedef struct update {
    struct update *next;
    uint64_t seq, at_ms;
    int applied;
    ph_buf data; /* {Registered, Unregistered} */
} update;

/* What this node knows of one member's updates. */
typedef struct origin {
    uint32_t node;
    uint32_t creation; /* the incarnation the numbers belong to */
    int has_base;      /* next is known (its gossip_seq, or a repair snapshot) */
    uint64_t next;     /* the number of its next update */
    uint64_t repaired_ts;
    update *updates; /* by seq, ascending */
} origin;

typedef struct gossip {
    unsigned recipients;
    int restricted_init;
    uint64_t seq; /* this node's last update */
    seen **buckets;
    uint32_t n_buckets, count;
    seen *oldest, *newest;
    origin *origins;
    int n_origins, cap_origins;
    uint64_t rng;
    int ticking;
} gossip;

static gossip *state(hub *h)
{
    return h->sync_state;
}

static uint32_t rand_below(gossip *g, uint32_t n)
{
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return (uint32_t)(g->rng % n);
}

static int gossip_init(hub *h, char *err, size_t err_size)
{
    gossip *g = calloc(1, sizeof *g);
    if (g)
        g->buckets = calloc(256, sizeof *g->buckets);
    if (!g || !g->buckets) {
        free(g);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    g->n_buckets = 256;
    g->recipients = h->cfg.sync_recipients ? h->cfg.sync_recipients : 3;
    g->restricted_init = !h->cfg.sync_unrestricted_init;
    g->rng = (monotonic_us() ^ ((uint64_t)h->self_node << 32)) | 1;
    h->sync_state = g;
    return 0;
}

static void seen_free(seen *s)
{
    free(s->acks.v);
    free(s->targeted.v);
    free(s);
}

static void update_free(update *u)
{
    ph_buf_free(&u->data);
    free(u);
}

static void gossip_free(hub *h)
{
    gossip *g = state(h);
    if (!g)
        return;
    while (g->oldest) {
        seen *s = g->oldest;
        g->oldest = s->next_age;
        seen_free(s);
    }
    for (int i = 0; i < g->n_origins; i++)
        while (g->origins[i].updates) {
            update *u = g->origins[i].updates;
            g->origins[i].updates = u->next;
            update_free(u);
        }
    free(g->origins);
    free(g->buckets);
    free(g);
    h->sync_state = NULL;
}

/* --- the cache of handled refs -------------------------------------------- */

static uint32_t ref_hash(const ph_ref *r)
{
    uint32_t x = r->node * 2654435761u ^ r->creation;
    for (uint32_t i = 0; i < r->len && i < 5; i++)
        x = (x ^ r->n[i]) * 2654435761u;
    return x;
}

static seen *seen_find(gossip *g, const ph_ref *r)
{
    for (seen *s = g->buckets[ref_hash(r) & (g->n_buckets - 1)]; s; s = s->next_hash)
        if (ph_ref_equal(&s->ref, r))
            return s;
    return NULL;
}

static void seen_grow(gossip *g)
{
    uint32_t n = g->n_buckets * 2;
    seen **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i < g->n_buckets; i++)
        for (seen *s = g->buckets[i], *next; s; s = next) {
            next = s->next_hash;
            uint32_t k = ref_hash(&s->ref) & (n - 1);
            s->next_hash = b[k];
            b[k] = s;
        }
    free(g->buckets);
    g->buckets = b;
    g->n_buckets = n;
}

static seen *seen_add(hub *h, const ph_ref *r)
{
    gossip *g = state(h);
    seen *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (g->count >= 2 * g->n_buckets)
        seen_grow(g);
    s->ref = *r;
    s->expires_ms = monotonic_ms() + h->cfg.sync_interval;
    uint32_t k = ref_hash(r) & (g->n_buckets - 1);
    s->next_hash = g->buckets[k];
    g->buckets[k] = s;
    if (g->newest)
        g->newest->next_age = s;
    else
        g->oldest = s;
    g->newest = s;
    g->count++;
    return s;
}

/* Drops the refs older than sync_interval (all expire in the order added). */
static void seen_prune(gossip *g, uint64_t now)
{
    while (g->oldest && g->oldest->expires_ms <= now) {
        seen *s = g->oldest;
        seen **p = &g->buckets[ref_hash(&s->ref) & (g->n_buckets - 1)];
        while (*p != s)
            p = &(*p)->next_hash;
        *p = s->next_hash;
        g->oldest = s->next_age;
        if (!g->oldest)
            g->newest = NULL;
        g->count--;
        seen_free(s);
    }
}

/* The cache entry of a message, new or merged with what it says: incoming
 * acks are kept whether or not this node had seen the ref (ProcessHub drops
 * them when it has no cache entry). NULL when out of memory. */
static seen *seen_merge(hub *h, const ph_ref *r, const nset *acks, const nset *targeted)
{
    seen *s = seen_find(state(h), r);
    if (!s && !(s = seen_add(h, r)))
        return NULL;
    for (int i = 0; i < acks->n; i++)
        nset_add(&s->acks, acks->v[i]);
    for (int i = 0; i < targeted->n; i++)
        nset_add(&s->targeted, targeted->v[i]);
    return s;
}

static void arm_tick(hub *h, ph_ctx *ctx)
{
    gossip *g = state(h);
    if (g->ticking)
        return;
    g->ticking = 1;
    send_self_after(ctx, TICK_MS, "{'$ph_hub', ~a}", hub_msg_name(HM_GOSSIP_TICK));
}

/* --- spreading a message ----------------------------------------------------- */

/* Sends the message of s to at most recipients members that have not got it
 * (not in acks, not targeted), less the ones this node sent it to already.
 * The members left over are shared out among the recipients: each is sent a
 * targeted list naming everyone but its own share, so each member is sent a
 * change once (when no member fails meanwhile) and no node sends one change
 * to more than recipients members. */
static void spread(hub *h, ph_ctx *ctx, hub_msg_kind kind, seen *s, uint32_t origin, uint64_t seq,
                   ph_term data)
{
    gossip *g = state(h);
    int n = h->members.n, k = 0;
    uint32_t *cand = n ? malloc((size_t)n * sizeof *cand) : NULL;
    if (!cand)
        return;
    for (int i = 0; i < n; i++) {
        uint32_t node = h->members.members[i].node;
        if (!nset_has(&s->acks, node) && !nset_has(&s->targeted, node))
            cand[k++] = node;
    }
    int budget = (int)g->recipients - s->sent;
    int picks = k < budget ? k : budget;
    if (picks <= 0) {
        free(cand);
        return;
    }
    for (int i = 0; i < k; i++) { /* shuffle: the first picks are the recipients */
        uint32_t j = (uint32_t)i + rand_below(g, (uint32_t)(k - i));
        uint32_t t = cand[i];
        cand[i] = cand[j];
        cand[j] = t;
    }
    for (int p = 0; p < picks; p++) {
        /* recipient p's share: the leftovers at p, p + picks, p + 2 picks... */
        nset targeted = {0};
        int ok = 1;
        for (int i = 0; i < s->targeted.n; i++)
            ok &= nset_add(&targeted, s->targeted.v[i]) == 0;
        for (int i = 0; i < k; i++)
            if (i < picks || (i - picks) % picks != p)
                ok &= nset_add(&targeted, cand[i]) == 0;
        ph_buf b;
        if (ok && ph_buf_init_versioned(&b) == 0) {
            member *m = membership_find(&h->members, cand[p]);
            if (ph_buf_reserve(&b, 512 + 64 * (size_t)(s->acks.n + targeted.n)) == 0 &&
                hub_msg_begin(&b, kind) == 0 && atom_encode(&b, h->self_node) == 0 &&
                ph_encode_ref(&b, &s->ref) == 0 && atom_encode(&b, origin) == 0 &&
                ei_x_encode_ulonglong(&b, seq) == 0 && nset_encode(&b, &s->acks) == 0 &&
                nset_encode(&b, &targeted) == 0 && ph_buf_append_term(&b, data) == 0 && m) {
                send_own(ctx, m->hub, &b);
                metric_inc(&hm_sync_sent);
                s->sent++;
                LOG_D("hub", "%s: %s %s#%llu to %s (%d targeted)", h->cfg.hub_id,
                      hub_msg_name(kind), atom_text(origin), (unsigned long long)seq,
                      atom_text(cand[p]), targeted.n);
            } else {
                LOG_W("hub", "%s: gossip: could not encode a message to %s", h->cfg.hub_id,
                      atom_text(cand[p]));
            }
            ph_buf_free(&b);
        }
        free(targeted.v);
    }
    for (int i = 0; i < k; i++) /* sent, or shared out to a recipient */
        nset_add(&s->targeted, cand[i]);
    free(cand);
}

/* --- updates: this node's changes, and the members' in their order --------- */

static void gossip_propagate(hub *h, ph_ctx *ctx, const elist *registered,
                             const elist *unregistered)
{
    gossip *g = state(h);
    if (h->members.n == 0)
        return;
    ph_ref ref = ph_make_ref();
    seen *s = seen_add(h, &ref);
    ph_buf data;
    if (!s || ph_buf_init(&data) != 0) {
        LOG_E("hub", "%s: gossip: out of memory, an update is left to the repair", h->cfg.hub_id);
        return;
    }
    g->seq++;
    s->applied = 1;
    nset_add(&s->acks, h->self_node);
    nset_add(&s->targeted, h->self_node);
    if (ph_buf_reserve(&data, (size_t)(registered->b.index + unregistered->b.index) + 64) == 0 &&
        ei_x_encode_tuple_header(&data, 2) == 0 && elist_to(&data, registered) == 0 &&
        elist_to(&data, unregistered) == 0)
        spread(h, ctx, HM_GOSSIP_UPDATE, s, h->self_node, g->seq, ph_buf_term(&data));
    ph_buf_free(&data);
    arm_tick(h, ctx);
}

static origin *origin_get(hub *h, uint32_t node)
{
    gossip *g = state(h);
    for (int i = 0; i < g->n_origins; i++)
        if (g->origins[i].node == node)
            return &g->origins[i];
    if (g->n_origins == g->cap_origins) {
        int cap = g->cap_origins ? 2 * g->cap_origins : 8;
        origin *o = realloc(g->origins, (size_t)cap * sizeof *o);
        if (!o)
            return NULL;
        g->origins = o;
        g->cap_origins = cap;
    }
    origin *o = &g->origins[g->n_origins++];
    memset(o, 0, sizeof *o);
    o->node = node;
    return o;
}

static void apply_update(hub *h, ph_ctx *ctx, uint32_t node, ph_term data)
{
    ph_term reg, unreg;
    if (ph_match(data, "{~t, ~t}", &reg, &unreg) != 1)
        return;
    apply_registered(h, ctx, node, reg);
    apply_unregistered(h, ctx, node, unreg);
}

/* Applies the waiting updates that are next in order. */
static void drain(hub *h, ph_ctx *ctx, origin *o)
{
    for (update *u = o->updates; u; u = u->next)
        if (!u->applied && u->seq == o->next) {
            apply_update(h, ctx, o->node, ph_buf_term(&u->data));
            u->applied = 1;
            u->at_ms = monotonic_ms();
            o->next++;
        }
}

/* Keeps an update (waiting, or applied for replay) in seq order. */
static update *keep_update(origin *o, uint64_t seq, ph_term data, int applied)
{
    update **p = &o->updates;
    while (*p && (*p)->seq < seq)
        p = &(*p)->next;
    if (*p && (*p)->seq == seq)
        return *p; /* a copy of one kept already */
    update *u = calloc(1, sizeof *u);
    if (!u || ph_buf_init(&u->data) != 0 || ph_buf_append_term(&u->data, data) != 0) {
        if (u && u->data.buff)
            ph_buf_free(&u->data);
        free(u);
        return NULL;
    }
    u->seq = seq;
    u->applied = applied;
    u->at_ms = monotonic_ms();
    u->next = *p;
    *p = u;
    return u;
}

/* A member's update number seq: applied in the member's order. One that
 * comes before its predecessors waits for them (up to HOLD_MS); one older
 * than what this node has (the member's rows when it joined, or a repair)
 * is dropped. Updates of a node that is not a member wait for its join
 * (which brings its rows). */
static void deliver(hub *h, ph_ctx *ctx, uint32_t node, const ph_ref *ref, uint64_t seq,
                    ph_term data)
{
    member *m = membership_find(&h->members, node);
    origin *o = origin_get(h, node);
    if (!o)
        return;
    if (m && o->creation != m->hub.creation) { /* a new incarnation: numbers restart */
        if (o->creation)
            while (o->updates) {
                update *u = o->updates;
                o->updates = u->next;
                update_free(u);
            }
        o->creation = m->hub.creation;
        o->has_base = 0;
        o->repaired_ts = 0;
    }
    if (m && ref->creation != m->hub.creation && ref->node == node)
        return; /* made by an earlier incarnation of the member */
    if (o->has_base && seq < o->next) {
        LOG_D("hub", "%s: gossip: dropped update %llu of %s (it has %llu)", h->cfg.hub_id,
              (unsigned long long)seq, atom_text(node), (unsigned long long)o->next);
        return;
    }
    if (m && o->has_base && seq == o->next) {
        apply_update(h, ctx, node, data);
        o->next++;
        keep_update(o, seq, data, 1);
        drain(h, ctx, o);
        return;
    }
    LOG_D("hub", "%s: gossip: update %llu of %s waits (base %d, next %llu, member %d)",
          h->cfg.hub_id, (unsigned long long)seq, atom_text(node), o->has_base,
          (unsigned long long)o->next, m != NULL);
    if (!keep_update(o, seq, data, 0))
        LOG_E("hub", "%s: gossip: out of memory, an update is left to the repair", h->cfg.hub_id);
    arm_tick(h, ctx);
}

/* --- reading a gossip message ------------------------------------------------ */

/* The sender must be a member and the node lists lists of atoms. */
static int read_common(hub *h, const hub_msg *m, nset *acks, nset *targeted)
{
    char text[160];
    if (!membership_find(&h->members, m->node)) {
        LOG_D("hub", "%s: ignored %s from %s, not a member", h->cfg.hub_id, hub_msg_name(m->kind),
              atom_text(m->node));
        return -1;
    }
    if (nset_read(acks, m->acks) != 0 || nset_read(targeted, m->targeted) != 0) {
        LOG_W("hub", "%s: dropped a malformed %s from %s: %s", h->cfg.hub_id, hub_msg_name(m->kind),
              atom_text(m->node), ph_term_format(m->acks, text, sizeof text));
        return -1;
    }
    return 0;
}

static void handle_update(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    nset acks = {0}, targeted = {0};
    ph_term reg, unreg;
    if (read_common(h, m, &acks, &targeted) != 0)
        goto out;
    if (ph_match(m->term, "{~t, ~t}", &reg, &unreg) != 1 ||
        (ph_term_type(reg, NULL) != ERL_LIST_EXT && ph_term_type(reg, NULL) != ERL_NIL_EXT) ||
        (ph_term_type(unreg, NULL) != ERL_LIST_EXT && ph_term_type(unreg, NULL) != ERL_NIL_EXT)) {
        LOG_W("hub", "%s: dropped a gossip_update from %s whose data is not {List, List}",
              h->cfg.hub_id, atom_text(m->node));
        goto out;
    }
    metric_inc(&hm_sync_received);
    seen *s = seen_merge(h, &m->ref, &acks, &targeted);
    if (!s)
        goto out;
    if (!s->applied) {
        s->applied = 1;
        if (m->origin != h->self_node)
            deliver(h, ctx, m->origin, &m->ref, m->seq, m->term);
        nset_add(&s->acks, h->self_node);
        nset_add(&s->targeted, h->self_node);
    }
    spread(h, ctx, HM_GOSSIP_UPDATE, s, m->origin, m->seq, m->term);
    arm_tick(h, ctx);
out:
    free(acks.v);
    free(targeted.v);
}

/* A member that just joined was sent our rows: the number of our last
 * update goes right after them, so it knows which of our updates the rows
 * hold already. */
static void gossip_joined(hub *h, ph_ctx *ctx, uint32_t node)
{
    member *m = membership_find(&h->members, node);
    ph_buf b;
    if (!m || ph_buf_init_versioned(&b) != 0)
        return;
    if (hub_msg_begin(&b, HM_GOSSIP_SEQ) == 0 && atom_encode(&b, h->self_node) == 0 &&
        ei_x_encode_ulonglong(&b, state(h)->seq) == 0)
        send_own(ctx, m->hub, &b);
    ph_buf_free(&b);
}

/* Sets what this node has of a member: every update up to seq. */
static void set_base(hub *h, ph_ctx *ctx, origin *o, uint64_t seq)
{
    if (!o->has_base || o->next < seq + 1)
        o->next = seq + 1;
    o->has_base = 1;
    drain(h, ctx, o);
}

static void handle_seq(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    member *e = membership_find(&h->members, m->node);
    origin *o = e ? origin_get(h, m->node) : NULL;
    if (!o)
        return;
    if (o->creation != e->hub.creation) {
        while (o->updates) {
            update *u = o->updates;
            o->updates = u->next;
            update_free(u);
        }
        o->creation = e->hub.creation;
        o->repaired_ts = 0;
    }
    o->has_base = 0; /* its rows just came: they hold every update up to seq */
    set_base(h, ctx, o, m->seq);
}

/* --- the repair: a gossip round ------------------------------------------------ */

/* Whether this node starts the rounds: with restricted_init only the member
 * whose name sorts first does. */
static int initiates(hub *h)
{
    if (!state(h)->restricted_init)
        return 1;
    const char *self = atom_text(h->self_node);
    for (int i = 0; i < h->members.n; i++)
        if (strcmp(atom_text(h->members.members[i].node), self) < 0)
            return 0;
    return 1;
}

/* {Node, Creation, Timestamp, Seq, Rows} of this node. */
static int add_own_entry(hub *h, elist *data)
{
    elist rows;
    if (elist_init(&rows) != 0)
        return -1;
    sync_local_rows(h, &rows);
    int rc = ei_x_encode_tuple_header(&data->b, 5) == 0 &&
                     atom_encode(&data->b, h->self_node) == 0 &&
                     ei_x_encode_ulonglong(&data->b, runtime_creation()) == 0 &&
                     ei_x_encode_ulonglong(&data->b, monotonic_us()) == 0 &&
                     ei_x_encode_ulonglong(&data->b, state(h)->seq) == 0 &&
                     elist_to(&data->b, &rows) == 0
                 ? 0
                 : -1;
    if (rc == 0)
        data->n++;
    elist_free(&rows);
    return rc;
}

/* The round's data to one member that has not contributed yet (the rows
 * travel from member to member until all have added theirs). */
static void pass_on(hub *h, ph_ctx *ctx, seen *s, uint32_t origin, ph_term data,
                    const nset *contributed)
{
    gossip *g = state(h);
    uint32_t *missing = malloc((size_t)h->members.n * sizeof *missing + 1);
    int k = 0;
    if (!missing)
        return;
    for (int i = 0; i < h->members.n; i++)
        if (!nset_has(contributed, h->members.members[i].node))
            missing[k++] = h->members.members[i].node;
    if (k) {
        member *m = membership_find(&h->members, missing[rand_below(g, (uint32_t)k)]);
        ph_buf b;
        if (m && ph_buf_init_versioned(&b) == 0) {
            if (hub_msg_begin(&b, HM_GOSSIP_SYNC) == 0 && atom_encode(&b, h->self_node) == 0 &&
                ph_encode_ref(&b, &s->ref) == 0 && atom_encode(&b, origin) == 0 &&
                ei_x_encode_ulonglong(&b, 0) == 0 && nset_encode(&b, &s->acks) == 0 &&
                nset_encode(&b, &s->targeted) == 0 && ph_buf_append_term(&b, data) == 0) {
                send_own(ctx, m->hub, &b);
                metric_inc(&hm_sync_sent);
            }
            ph_buf_free(&b);
        }
    }
    free(missing);
}

static void gossip_tick(hub *h, ph_ctx *ctx)
{
    if (h->members.n == 0 || !initiates(h))
        return;
    ph_ref ref = ph_make_ref();
    seen *s = seen_add(h, &ref);
    elist data;
    if (!s || elist_init(&data) != 0)
        return;
    nset self = {0};
    if (add_own_entry(h, &data) == 0 && nset_add(&self, h->self_node) == 0) {
        ph_buf l;
        if (ph_buf_init(&l) == 0) {
            if (elist_to(&l, &data) == 0)
                pass_on(h, ctx, s, h->self_node, ph_buf_term(&l), &self);
            ph_buf_free(&l);
        }
    }
    free(self.v);
    elist_free(&data);
    arm_tick(h, ctx);
}

/* Every entry {Node, Creation, Timestamp, Seq, Rows} well-formed; the
 * contributors in nodes. */
static int read_round(ph_term data, nset *nodes)
{
    list_walk w;
    ph_term e, rows;
    char name[PH_ATOM_BUF];
    unsigned long long creation, ts, seq;
    uint32_t node;
    if (list_begin(&w, data) < 0)
        return -1;
    while (list_next(&w, &e) > 0) {
        if (ph_match(e, "{~a, ~u, ~u, ~u, ~t}", name, &creation, &ts, &seq, &rows) != 1 ||
            (node = atom_intern(name)) == ATOM_NONE || !rows_well_formed(node, rows) ||
            nset_add(nodes, node) != 0)
            return -1;
    }
    return 0;
}

/* Every member's rows, as the round collected them: append + detach for
 * each member whose rows are newer than the last this node applied. Rows
 * older than updates of that member applied here have those updates
 * replayed over them. */
static void apply_round(hub *h, ph_ctx *ctx, ph_term data)
{
    list_walk w;
    ph_term e, rows;
    char name[PH_ATOM_BUF];
    unsigned long long creation, ts, seq;
    list_begin(&w, data);
    while (list_next(&w, &e) > 0) {
        if (ph_match(e, "{~a, ~u, ~u, ~u, ~t}", name, &creation, &ts, &seq, &rows) != 1)
            continue;
        uint32_t node = atom_intern(name);
        member *m = membership_find(&h->members, node);
        origin *o = m ? origin_get(h, node) : NULL;
        if (!o || m->hub.creation != creation || node == h->self_node)
            continue;
        if (o->creation != creation) {
            while (o->updates) {
                update *u = o->updates;
                o->updates = u->next;
                update_free(u);
            }
            o->creation = (uint32_t)creation;
            o->has_base = 0;
            o->repaired_ts = 0;
        }
        if (ts <= o->repaired_ts)
            continue;
        /* updates applied here after the snapshot: replayed, if all kept */
        uint64_t expect = seq + 1;
        int complete = 1;
        if (o->has_base && o->next > seq + 1) {
            for (update *u = o->updates; u && u->seq < o->next; u = u->next)
                if (u->seq > seq) {
                    complete &= u->applied && u->seq == expect;
                    expect = u->seq + 1;
                }
            complete &= expect == o->next;
        }
        if (!complete) {
            LOG_D("hub", "%s: gossip: repair rows of %s skipped (older than its updates here)",
                  h->cfg.hub_id, name);
            continue;
        }
        apply_repair(h, ctx, node, rows);
        for (update *u = o->updates; u && o->has_base; u = u->next)
            if (u->applied && u->seq > seq && u->seq < o->next)
                apply_update(h, ctx, node, ph_buf_term(&u->data));
        o->repaired_ts = ts;
        set_base(h, ctx, o, seq);
    }
}

static void handle_sync(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    nset acks = {0}, targeted = {0}, contributed = {0};
    elist data = {0};
    ph_buf l = {0};
    if (read_common(h, m, &acks, &targeted) != 0)
        goto out;
    if (read_round(m->term, &contributed) != 0) {
        LOG_W("hub", "%s: dropped a gossip_sync from %s with malformed rows", h->cfg.hub_id,
              atom_text(m->node));
        goto out;
    }
    metric_inc(&hm_sync_received);
    seen *s = seen_merge(h, &m->ref, &acks, &targeted);
    if (!s || elist_init(&data) != 0 || ph_buf_init(&l) != 0)
        goto out;
    ph_term round = m->term;
    if (!nset_has(&contributed, h->self_node)) {
        /* collecting: add our rows */
        if (add_own_entry(h, &data) != 0 || nset_add(&contributed, h->self_node) != 0)
            goto out;
        elist_extend(&data, m->term);
        if (elist_to(&l, &data) != 0)
            goto out;
        round = ph_buf_term(&l);
    }
    int complete = 1;
    for (int i = 0; i < h->members.n; i++)
        complete &= nset_has(&contributed, h->members.members[i].node);
    if (!complete) {
        if (round.buf != m->term.buf) /* passed on only when we added ours */
            pass_on(h, ctx, s, m->origin, round, &contributed);
        goto out;
    }
    if (!s->applied) {
        s->applied = 1;
        apply_round(h, ctx, round);
        nset_add(&s->acks, h->self_node);
        nset_add(&s->targeted, h->self_node);
    }
    spread(h, ctx, HM_GOSSIP_SYNC, s, m->origin, 0, round);
    arm_tick(h, ctx);
out:
    free(acks.v);
    free(targeted.v);
    free(contributed.v);
    if (data.b.buff)
        elist_free(&data);
    if (l.buff)
        ph_buf_free(&l);
}

/* --- the timer: caches pruned, waits ended ------------------------------------ */

static void timer(hub *h, ph_ctx *ctx)
{
    gossip *g = state(h);
    uint64_t now = monotonic_ms();
    int pending = 0;
    g->ticking = 0;
    seen_prune(g, now);
    for (int i = 0; i < g->n_origins; i++) {
        origin *o = &g->origins[i];
        member *m = membership_find(&h->members, o->node);
        update *first = NULL;
        for (update *u = o->updates; u && !first; u = u->next)
            if (!u->applied)
                first = u;
        if (first && now - first->at_ms >= HOLD_MS) {
            /* a gap that did not fill: the rest is applied in order (the
             * repair mends the missing ones); of a non-member, dropped */
            for (update *u = o->updates; u; u = u->next)
                if (!u->applied && m && (!o->has_base || u->seq >= o->next)) {
                    apply_update(h, ctx, o->node, ph_buf_term(&u->data));
                    o->next = u->seq + 1;
                    o->has_base = 1;
                    u->applied = 1;
                    u->at_ms = now;
                } else if (!u->applied) {
                    u->applied = 1; /* dropped: pruned below */
                    u->at_ms = 0;
                }
            LOG_I("hub", "%s: gossip: updates of %s applied past a gap", h->cfg.hub_id,
                  atom_text(o->node));
        }
        /* applied ones are kept for two sync_intervals, to replay over an
         * older repair snapshot */
        for (update **p = &o->updates; *p;) {
            update *u = *p;
            if (u->applied && now - u->at_ms >= 2ull * h->cfg.sync_interval) {
                *p = u->next;
                update_free(u);
            } else {
                pending = 1;
                p = &u->next;
            }
        }
    }
    if (pending || g->oldest)
        arm_tick(h, ctx);
}

static void gossip_message(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    switch (m->kind) {
    case HM_GOSSIP_UPDATE:
        handle_update(h, ctx, m);
        return;
    case HM_GOSSIP_SYNC:
        handle_sync(h, ctx, m);
        return;
    case HM_GOSSIP_SEQ:
        handle_seq(h, ctx, m);
        return;
    case HM_GOSSIP_TICK:
        timer(h, ctx);
        return;
    default:
        return;
    }
}

const sync_ops gossip_sync = {
    .type = "gossip",
    .init = gossip_init,
    .free = gossip_free,
    .propagate = gossip_propagate,
    .tick = gossip_tick,
    .joined = gossip_joined,
    .message = gossip_message,
};
