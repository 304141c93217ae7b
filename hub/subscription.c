/*
 * subscription.c - registry subscriptions (docs/api.md, "Registry
 * subscription"): a BEAM pid asks for the registry and gets the current rows,
 * then every change, as numbered messages; the subscriber is monitored and
 * dropped when it dies.
 *
 * While anyone subscribes, the registry's observer notes the key of every
 * row that changes; after each request or message (subscription_flush, next
 * to flush_sync, and before an awaited start's reply) the current state of
 * those rows goes out: the whole row, or its id among the gone ones when the
 * row is gone or an orphan (queries leave orphans out too). Sending the state rather than the
 * operations makes a row that changed twice in one turn cost one entry, and keeps the stream right
 * whatever path changed the registry.
 *
 * An awaited start with registry_omit (subscription_seq_omitting) leaves the
 * rows it started out of its caller's subscription when its turn changed
 * those and nothing else: the caller builds them from the result.
 */
#include "hub/hub_internal.h"

/* Entries per message: a 100k start streams as pipelined messages of this
 * many rows, so the subscriber applies the first ones while the rest come. */
#define SUB_CHUNK 5000

typedef struct subscriber {
    ph_pid pid;
    ph_ref ref;   /* the monitor's reference, also the subscription's id */
    uint64_t seq; /* the number of the last message sent */
} subscriber;

/* A message's entries: the rows (puts) and the ids of the rows gone. */
typedef struct {
    ph_buf rows, gone;
    int n_rows, n_gone;
} batch;

struct subscriptions {
    subscriber *subs;
    int n, cap;
    ph_buf dirty;          /* keys changed since the last flush: u16 length, then the key bytes */
    uint32_t last_len;     /* the last key noted (a row changed twice in a row: noted once) */
    uint32_t last_at;      /* its offset in dirty */
    int lost;              /* a change could not be noted: the subscribers must resync */
    uint64_t test_gap;     /* PHNODE_TEST_SUBSCRIPTION_GAP: every test_gap-th changes message */
    uint64_t test_changes; /* is not sent (0: all are); changes messages counted here */
    /* Kept between flushes while anyone subscribes: a 100k start fills
     * them to about a megabyte per message, and fresh buffers of that size
     * cost a page fault per page every time. */
    batch bt;
    ph_buf msg;
    int have_bufs;
};

static void bufs_free(struct subscriptions *s);

static void note_key(void *arg, const char *key, uint32_t key_len)
{
    struct subscriptions *s = arg;
    if (s->dirty.index > 0 && s->last_len == key_len &&
        memcmp(s->dirty.buff + s->last_at, key, key_len) == 0)
        return;
    if (key_len > 0xffff || ph_buf_reserve(&s->dirty, key_len + 2u) != 0) {
        s->lost = 1; /* out of memory (keys are < 64k): the flush makes a gap */
        return;
    }
    unsigned char len[2] = {(unsigned char)(key_len >> 8), (unsigned char)key_len};
    memcpy(s->dirty.buff + s->dirty.index, len, 2);
    s->last_at = (uint32_t)s->dirty.index + 2;
    memcpy(s->dirty.buff + s->last_at, key, key_len);
    s->dirty.index += (int)key_len + 2;
    s->last_len = key_len;
}

static struct subscriptions *subs_get(hub *h)
{
    if (h->subs)
        return h->subs;
    struct subscriptions *s = calloc(1, sizeof *s);
    if (!s || ph_buf_init(&s->dirty) != 0) {
        free(s);
        return NULL;
    }
    const char *gap = getenv("PHNODE_TEST_SUBSCRIPTION_GAP");
    s->test_gap = gap ? strtoull(gap, NULL, 10) : 0;
    h->subs = s;
    return s;
}

void subscription_free(hub *h)
{
    if (!h->subs)
        return;
    registry_observe(h->reg, NULL, NULL);
    ph_buf_free(&h->subs->dirty);
    bufs_free(h->subs);
    free(h->subs->subs);
    free(h->subs);
    h->subs = NULL;
}

/* {Cid, [{Node, Pid}], SpecBin, Meta}: the subscriber's cache row as is
 * (it inserts a message's rows into ETS in one call, without rebuilding
 * them). The row's terms were checked when it was stored, so they are
 * copied as bytes. The spec travels as a binary holding its external format
 * (the subscriber decodes it when it is asked for): decoding 100k spec maps
 * costs a BEAM more than the rest of the stream together. */
static int append_row(ph_buf *b, const reg_row *row)
{
    uint32_t bin_len = row->spec_len + 1; /* the version byte, then the spec */
    unsigned char head[6] = {ERL_BINARY_EXT,
                             (unsigned char)(bin_len >> 24),
                             (unsigned char)(bin_len >> 16),
                             (unsigned char)(bin_len >> 8),
                             (unsigned char)bin_len,
                             131};
    return ph_buf_reserve(b, 64u + row->key_len + row->spec_len + row->meta_len) == 0 &&
                   ei_x_encode_tuple_header(b, 4) == 0 &&
                   ei_x_append_buf(b, row->data, (int)row->key_len) == 0 &&
                   registry_encode_nodes(b, row) == 0 &&
                   ei_x_append_buf(b, (const char *)head, (int)sizeof head) == 0 &&
                   ei_x_append_buf(b, row->data + row->key_len, (int)row->spec_len) == 0 &&
                   ei_x_append_buf(b, row->data + row->key_len + row->spec_len,
                                   (int)row->meta_len) == 0
               ? 0
               : -1;
}

static int batch_init(batch *bt)
{
    memset(bt, 0, sizeof *bt);
    if (ph_buf_init(&bt->rows) != 0)
        return -1;
    if (ph_buf_init(&bt->gone) != 0) {
        ph_buf_free(&bt->rows);
        return -1;
    }
    return 0;
}

static void batch_reset(batch *bt)
{
    ph_buf_reset(&bt->rows);
    ph_buf_reset(&bt->gone);
    bt->n_rows = bt->n_gone = 0;
}

static void batch_free(batch *bt)
{
    ph_buf_free(&bt->rows);
    ph_buf_free(&bt->gone);
}

/* Encodes [Entries] from buf holding n of them. */
static int append_list(ph_buf *b, const ph_buf *items, int n)
{
    if (n > 0 &&
        (ei_x_encode_list_header(b, n) != 0 || ei_x_append_buf(b, items->buff, items->index) != 0))
        return -1;
    return ei_x_encode_empty_list(b) == 0 ? 0 : -1;
}

/* {phnode_registry, Ref, Seq, Kind, Rows, GoneIds}. */
static void send_items(hub *h, ph_ctx *ctx, subscriber *sub, const char *kind, const batch *bt)
{
    ph_buf *b = &h->subs->msg;
    sub->seq++;
    if (h->subs->test_gap && strcmp(kind, "changes") == 0 &&
        ++h->subs->test_changes % h->subs->test_gap == 0) {
        LOG_W("hub", "%s: PHNODE_TEST_SUBSCRIPTION_GAP: message %llu not sent", h->cfg.hub_id,
              (unsigned long long)sub->seq);
        return;
    }
    ph_buf_reset(b); /* the version byte stays */
    int ok = ph_buf_reserve(b, (size_t)bt->rows.index + (size_t)bt->gone.index + 128) == 0 &&
             ei_x_encode_tuple_header(b, 6) == 0 && ei_x_encode_atom(b, "phnode_registry") == 0 &&
             ph_encode_ref(b, &sub->ref) == 0 &&
             ei_x_encode_ulonglong(b, (unsigned long long)sub->seq) == 0 &&
             ei_x_encode_atom(b, kind) == 0 && append_list(b, &bt->rows, bt->n_rows) == 0 &&
             append_list(b, &bt->gone, bt->n_gone) == 0;
    if (ok)
        send_own(ctx, sub->pid, b);
    else
        LOG_E("hub",
              "%s: out of memory: registry subscription message %llu lost (the "
              "subscriber sees the gap and resubscribes)",
              h->cfg.hub_id, (unsigned long long)sub->seq);
}

/* The kept buffers, made on first use after nobody subscribed. */
static batch *bufs(struct subscriptions *s)
{
    if (!s->have_bufs) {
        if (batch_init(&s->bt) != 0)
            return NULL;
        if (ph_buf_init_versioned(&s->msg) != 0) {
            batch_free(&s->bt);
            return NULL;
        }
        s->have_bufs = 1;
    }
    batch_reset(&s->bt);
    return &s->bt;
}

static void bufs_free(struct subscriptions *s)
{
    if (!s->have_bufs)
        return;
    batch_free(&s->bt);
    ph_buf_free(&s->msg);
    s->have_bufs = 0;
}

/* The current rows in messages of SUB_CHUNK: kind snapshot, the last one
 * snapshot_done (possibly empty). The hub does nothing else meanwhile, so
 * the snapshot is one consistent state of the registry. */
static void send_snapshot(hub *h, ph_ctx *ctx, subscriber *sub)
{
    batch *bt = bufs(h->subs);
    if (!bt) {
        LOG_E("hub", "%s: out of memory: no registry snapshot sent (the subscriber resubscribes)",
              h->cfg.hub_id);
        sub->seq++; /* a number no message carries: the next one shows the gap */
        return;
    }
    uint32_t i = 0;
    reg_row *row;
    while ((row = registry_next(h->reg, &i)) != NULL) {
        if (row->n_nodes == 0)
            continue; /* an orphan: not running anywhere */
        if (append_row(&bt->rows, row) != 0)
            LOG_E("hub", "%s: out of memory: a row left out of a registry snapshot", h->cfg.hub_id);
        else
            bt->n_rows++;
        if (bt->n_rows == SUB_CHUNK) {
            send_items(h, ctx, sub, "snapshot", bt);
            batch_reset(bt);
        }
    }
    send_items(h, ctx, sub, "snapshot_done", bt);
}

static subscriber *find_sub(struct subscriptions *s, const ph_ref *ref)
{
    for (int i = 0; s && i < s->n; i++)
        if (ph_ref_equal(&s->subs[i].ref, ref))
            return &s->subs[i];
    return NULL;
}

static void remove_sub(hub *h, subscriber *sub)
{
    struct subscriptions *s = h->subs;
    *sub = s->subs[--s->n];
    if (s->n == 0) {
        /* nobody listens: changes are no longer noted */
        registry_observe(h->reg, NULL, NULL);
        ph_buf_reset(&s->dirty);
        bufs_free(s);
    }
}

static ph_result subscribe(hub *h, ph_ctx *ctx, ph_term pid_term, ph_term opts, ph_buf *reply)
{
    ph_pid pid;
    list_walk w;
    if (ph_decode_pid(pid_term, &pid) != 0) {
        ph_build(reply, "{error, {bad_pid, ~t}}", pid_term);
        return PH_REPLY;
    }
    if (ph_term_type(opts, NULL) == ERL_SMALL_TUPLE_EXT || list_begin(&w, opts) < 0) {
        ph_build(reply, "{error, {bad_options, ~t}}", opts);
        return PH_REPLY;
    }
    struct subscriptions *s = subs_get(h);
    if (s && s->n == s->cap) {
        int cap = s->cap * 2 + 4;
        subscriber *grown = realloc(s->subs, (size_t)cap * sizeof *grown);
        if (grown) {
            s->subs = grown;
            s->cap = cap;
        }
    }
    if (!s || s->n == s->cap) {
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    /* Changes of this turn not yet flushed go to the old subscribers only:
     * the snapshot below already has them. */
    subscription_flush(h, ctx);
    subscriber *sub = &s->subs[s->n];
    memset(sub, 0, sizeof *sub);
    sub->pid = pid;
    if (ph_monitor(ctx, pid, &sub->ref) != 0) {
        ph_build(reply, "{error, enomem}");
        return PH_REPLY;
    }
    s->n++;
    registry_observe(h->reg, note_key, s);
    send_snapshot(h, ctx, sub);
    if (ei_x_encode_tuple_header(reply, 2) != 0 || ei_x_encode_atom(reply, "ok") != 0 ||
        ph_encode_ref(reply, &sub->ref) != 0)
        return PH_NOREPLY; /* out of memory: the caller's call times out */
    return PH_REPLY;
}

int subscription_request(hub *h, ph_ctx *ctx, ph_term req, ph_buf *reply, ph_result *r)
{
    ph_term a, b;
    ph_ref ref;
    *r = PH_REPLY;
    if (ph_match(req, "{subscribe_registry, ~t}", &a) == 1) {
        ph_buf none;
        if (ph_buf_init(&none) != 0 || ph_build(&none, "[]") != 0) {
            ph_buf_free(&none);
            ph_build(reply, "{error, enomem}");
            return 1;
        }
        *r = subscribe(h, ctx, a, ph_buf_term(&none), reply);
        ph_buf_free(&none);
        return 1;
    }
    if (ph_match(req, "{subscribe_registry, ~t, ~t}", &a, &b) == 1) {
        *r = subscribe(h, ctx, a, b, reply);
        return 1;
    }
    if (ph_match(req, "{unsubscribe_registry, ~t}", &a) == 1) {
        subscriber *sub = ph_decode_ref(a, &ref) == 0 ? find_sub(h->subs, &ref) : NULL;
        if (sub) {
            ph_demonitor(ctx, &sub->ref);
            remove_sub(h, sub);
        }
        ph_build(reply, "ok");
        return 1;
    }
    if (ph_match(req, "{registry_seq, ~t}", &a) == 1) {
        /* flushed first: the number covers every change made before this request */
        subscription_flush(h, ctx);
        subscriber *sub = ph_decode_ref(a, &ref) == 0 ? find_sub(h->subs, &ref) : NULL;
        if (sub)
            ph_build(reply, "{ok, ~u}", (unsigned long long)sub->seq);
        else
            ph_build(reply, "{error, not_subscribed}");
        return 1;
    }
    return 0;
}

int subscription_down(hub *h, const ph_ref *ref)
{
    subscriber *sub = find_sub(h->subs, ref);
    if (!sub)
        return 0;
    remove_sub(h, sub);
    return 1;
}

long long subscription_seq(hub *h, ph_ctx *ctx, const ph_ref *ref)
{
    subscription_flush(h, ctx);
    subscriber *sub = find_sub(h->subs, ref);
    return sub ? (long long)sub->seq : -1;
}

long long subscription_last_seq(hub *h, const ph_ref *ref)
{
    subscriber *sub = find_sub(h->subs, ref);
    return sub ? (long long)sub->seq : -1;
}

/* A number no message carries: the subscribers (but skip) see the gap and
 * resubscribe. */
static void make_gap(struct subscriptions *s, int skip)
{
    for (int i = 0; i < s->n; i++)
        if (i != skip)
            s->subs[i].seq++;
}

/* The changes noted, to every subscriber but skip (-1: none skipped). */
static void flush_to(hub *h, ph_ctx *ctx, int skip)
{
    struct subscriptions *s = h->subs;
    batch *bt = bufs(s);
    if (!bt) {
        LOG_E("hub", "%s: out of memory: registry changes not sent; subscribers will resync",
              h->cfg.hub_id);
        make_gap(s, skip);
        return;
    }
    const char *p = s->dirty.buff, *end = s->dirty.buff + s->dirty.index;
    int dropped = 0;
    while (p < end) {
        uint32_t len = ((uint32_t)(unsigned char)p[0] << 8) | (unsigned char)p[1];
        const char *key = p + 2;
        p = key + len;
        reg_row *row = registry_get(h->reg, key, len);
        if (row && row->n_nodes > 0) {
            if (append_row(&bt->rows, row) == 0)
                bt->n_rows++;
            else
                dropped++;
        } else if (ph_buf_reserve(&bt->gone, len + 8u) == 0 &&
                   ei_x_append_buf(&bt->gone, key, (int)len) == 0) {
            bt->n_gone++;
        } else {
            dropped++;
        }
        if (bt->n_rows + bt->n_gone == SUB_CHUNK || (p >= end && bt->n_rows + bt->n_gone > 0)) {
            for (int i = 0; i < s->n; i++)
                if (i != skip)
                    send_items(h, ctx, &s->subs[i], "changes", bt);
            batch_reset(bt);
        }
    }
    if (dropped) {
        /* out of memory for some entries: every subscriber resyncs rather
         * than miss them */
        LOG_E("hub",
              "%s: out of memory: %d registry changes left out of the stream; "
              "subscribers will resync",
              h->cfg.hub_id, dropped);
        make_gap(s, skip);
    }
}

/* 0 when there is something to flush (after a lost note made its gap). */
static int flush_begin(hub *h)
{
    struct subscriptions *s = h->subs;
    if (s && s->lost) {
        /* A number no message carries: every subscriber sees the gap and
         * resubscribes, rather than keep a row it was never told about. */
        LOG_E("hub", "%s: out of memory: registry changes not noted; subscribers will resync",
              h->cfg.hub_id);
        make_gap(s, -1);
        s->lost = 0;
    }
    return !s || s->n == 0 || s->dirty.index == 0 ? -1 : 0;
}

void subscription_flush(hub *h, ph_ctx *ctx)
{
    if (flush_begin(h) != 0)
        return;
    flush_to(h, ctx, -1);
    ph_buf_reset(&h->subs->dirty);
}

/* 1 when the changes noted are keys, in their order, and nothing else:
 * every row this turn changed is one the start began (and left as it
 * was: a later change to the last one would be noted again, or not at all
 * if it came right after it, hence the caller's check of that row). */
static int dirty_is(const ph_buf *dirty, const elist *keys)
{
    const char *p = dirty->buff, *end = dirty->buff + dirty->index;
    int at = 0;
    for (int k = 0; k < keys->n; k++) {
        int from = at;
        if (p + 2 > end || ei_skip_term(keys->b.buff, &at) != 0)
            return 0;
        uint32_t len = ((uint32_t)(unsigned char)p[0] << 8) | (unsigned char)p[1];
        if (len != (uint32_t)(at - from) || p + 2 + len > end ||
            memcmp(p + 2, keys->b.buff + from, len) != 0)
            return 0;
        p += 2 + len;
    }
    return p == end && at == keys->b.index;
}

/* The row of the last of keys, if it runs here alone. */
static int last_alone(hub *h, const elist *keys)
{
    int at = 0, from = 0;
    for (int k = 0; k < keys->n; k++) {
        from = at;
        if (ei_skip_term(keys->b.buff, &at) != 0)
            return 0;
    }
    reg_row *row = registry_get(h->reg, keys->b.buff + from, (uint32_t)(at - from));
    return row && row->n_nodes == 1 && row->nodes[0].node == h->self_node;
}

long long subscription_seq_omitting(hub *h, ph_ctx *ctx, const ph_ref *ref, const elist *keys,
                                    int alone, long long *omitted)
{
    subscriber *sub = find_sub(h->subs, ref);
    *omitted = -1;
    /* Left out only when this turn changed the start's rows and nothing
     * else, each running here alone: otherwise the rows come as always. */
    if (!sub || keys->n == 0 || !alone || flush_begin(h) != 0 || !dirty_is(&h->subs->dirty, keys) ||
        !last_alone(h, keys))
        return subscription_seq(h, ctx, ref);
    if (h->subs->n > 1)
        flush_to(h, ctx, (int)(sub - h->subs->subs));
    ph_buf_reset(&h->subs->dirty);
    *omitted = keys->n;
    return (long long)sub->seq;
}
