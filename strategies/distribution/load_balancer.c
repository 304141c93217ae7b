/* load_balancer.c - the CentralizedLoadBalancer distribution strategy: the
 * members and their start times, this node's metrics, every member's score
 * history, the leader, the scoreboard in use, and placement from it. The
 * arithmetic is lb_score.c; the messages are docs/protocol.md's lb_report
 * and lb_scores; docs/strategies.md describes the whole. */
#include "strategies/distribution/load_balancer.h"

#include "hub/protocol.h"
#include "hub/registry.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/runtime_metrics.h"
#include "hub/runtime/process.h"
#include "hub/runtime/runtime.h"
#include "hub/runtime/timers.h"
#include "strategies/distribution/lb_score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct lb_node {
    uint32_t atom;
    uint64_t hash;    /* lb_hash of its name */
    uint64_t started; /* wall-clock ms when its hub started; 0: not told yet */
    lb_history hist;  /* its scores, as reported */
    int scored;       /* the scoreboard in use has it: */
    int score_pm;     /* its score there, in thousandths */
} lb_node;

typedef struct lb {
    lb_node *nodes; /* this node and the members, sorted by name */
    int n, cap;
    uint32_t self;
    uint64_t started;
    int max_history;
    int nodeup_redistribution;
    double decay;
    unsigned push_interval;
    uint32_t leader;     /* as last computed */
    uint32_t board_from; /* whose scoreboard is in use; ATOM_NONE: none yet */
    double *capacity;    /* per node, from the scoreboard (cap entries) */
    uint64_t *hashes;    /* per node, for lb_pick */
    uint64_t digest;
    uint64_t last_busy_us, last_wall_us; /* for this node's scheduler utilisation */
    ph_buf key;
} lb;

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- options --------------------------------------------------------------- */

static int opt_number(ph_term v, double *out)
{
    long i;
    if (ph_match(v, "~f", out) == 1)
        return 0;
    if (ph_match(v, "~i", &i) == 1) {
        *out = (double)i;
        return 0;
    }
    return -1;
}

static int read_options(lb *l, ph_term config, char *err, size_t err_size)
{
    ph_iter it;
    ph_term k, v;
    const char *key;
    size_t len;
    if (ph_iter_begin(&it, config) < 0) {
        snprintf(err, err_size, "distribution_strategy must be an object");
        return -1;
    }
    while (ph_iter_next(&it, &k) > 0 && ph_iter_next(&it, &v) > 0) {
        char name[64];
        double d;
        if (ph_match(k, "~b", &key, &len) != 1 || len >= sizeof name)
            continue;
        memcpy(name, key, len);
        name[len] = 0;
        if (strcmp(name, "type") == 0)
            continue;
        if (strcmp(name, "max_history_size") == 0) {
            if (opt_number(v, &d) != 0 || d != (double)(int)d || d < 1 || d > LB_MAX_HISTORY) {
                snprintf(err, err_size,
                         "distribution_strategy.max_history_size must be an integer from 1 to %d",
                         LB_MAX_HISTORY);
                return -1;
            }
            l->max_history = (int)d;
        } else if (strcmp(name, "weight_decay_factor") == 0) {
            if (opt_number(v, &d) != 0 || !(d > 0 && d <= 1)) {
                snprintf(err, err_size,
                         "distribution_strategy.weight_decay_factor must be a number in (0, 1]");
                return -1;
            }
            l->decay = d;
        } else if (strcmp(name, "push_interval") == 0) {
            if (opt_number(v, &d) != 0 || d != (double)(long)d || d < 50 || d > 86400000) {
                snprintf(err, err_size,
                         "distribution_strategy.push_interval must be an integer of ms from 50 "
                         "to 86400000");
                return -1;
            }
            l->push_interval = (unsigned)d;
        } else if (strcmp(name, "nodeup_redistribution") == 0) {
            int on;
            if (ph_match(v, "~B", &on) != 1) {
                snprintf(err, err_size,
                         "distribution_strategy.nodeup_redistribution must be true or false");
                return -1;
            }
            l->nodeup_redistribution = on;
        } else {
            snprintf(err, err_size,
                     "distribution_strategy: unknown option \"%s\" for centralized_load_balancer "
                     "(max_history_size, weight_decay_factor, push_interval, "
                     "nodeup_redistribution)",
                     name);
            return -1;
        }
    }
    return 0;
}

/* --- the members ------------------------------------------------------------ */

static void *lb_init(ph_term config, char *err, size_t err_size)
{
    lb *l = calloc(1, sizeof *l);
    if (!l || ph_buf_init(&l->key) != 0) {
        free(l);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    l->max_history = 30;
    l->decay = 0.9;
    l->push_interval = 10000;
    l->self = runtime_self_node();
    l->started = wall_ms();
    l->leader = l->board_from = ATOM_NONE;
    if (read_options(l, config, err, err_size) != 0) {
        ph_buf_free(&l->key);
        free(l);
        return NULL;
    }
    return l;
}

static void lb_free(void *st)
{
    lb *l = st;
    for (int i = 0; i < l->n; i++)
        lb_history_free(&l->nodes[i].hist);
    free(l->nodes);
    free(l->capacity);
    free(l->hashes);
    ph_buf_free(&l->key);
    free(l);
}

static int find(const lb *l, uint32_t atom)
{
    for (int i = 0; i < l->n; i++)
        if (l->nodes[i].atom == atom)
            return i;
    return -1;
}

/* After any change of the nodes or the scoreboard: each node's capacity (a
 * node the scoreboard lacks gets the mean of those it has, or 1 when it has
 * none: an even spread) and the digest of what placement depends on. */
static void recompute(lb *l)
{
    double sum = 0;
    int known = 0;
    for (int i = 0; i < l->n; i++)
        if (l->nodes[i].scored) {
            sum += lb_capacity(l->nodes[i].score_pm / 1000.0);
            known++;
        }
    double mean = known ? sum / known : 1.0;
    uint64_t d = 0x6c62272e07bb0142ULL;
    for (int i = 0; i < l->n; i++) {
        lb_node *e = &l->nodes[i];
        l->capacity[i] = e->scored ? lb_capacity(e->score_pm / 1000.0) : mean;
        l->hashes[i] = e->hash;
        uint64_t part[3] = {e->hash, (uint64_t)e->scored, (uint64_t)e->score_pm};
        d = lb_hash(part, sizeof part) ^ (d * 0x100000001b3ULL);
    }
    l->digest = d;
}

/* The leader among the nodes, logged when it changes. */
static uint32_t update_leader(lb *l)
{
    uint64_t *started = malloc((size_t)(l->n ? l->n : 1) * sizeof *started);
    const char **names = malloc((size_t)(l->n ? l->n : 1) * sizeof *names);
    if (!started || !names) {
        free(started);
        free(names);
        return l->leader; /* out of memory: the last one stands */
    }
    for (int i = 0; i < l->n; i++) {
        started[i] = l->nodes[i].started;
        names[i] = atom_text(l->nodes[i].atom);
    }
    int k = lb_leader(started, names, l->n);
    free(started);
    free(names);
    uint32_t leader = k >= 0 ? l->nodes[k].atom : ATOM_NONE;
    if (leader != l->leader && leader != ATOM_NONE)
        LOG_I("hub", "load balancer: the leader is %s%s", atom_text(leader),
              leader == l->self ? " (this node)" : "");
    l->leader = leader;
    return leader;
}

static int lb_added(void *st, const char *node)
{
    lb *l = st;
    uint32_t atom = atom_intern(node);
    if (atom == ATOM_NONE)
        return -1;
    if (find(l, atom) >= 0)
        return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        lb_node *nodes = realloc(l->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return -1;
        l->nodes = nodes;
        double *c = realloc(l->capacity, (size_t)cap * sizeof *c);
        if (!c)
            return -1;
        l->capacity = c;
        uint64_t *h = realloc(l->hashes, (size_t)cap * sizeof *h);
        if (!h)
            return -1;
        l->hashes = h;
        l->cap = cap;
    }
    lb_node e = {.atom = atom, .hash = lb_hash(node, strlen(node))};
    if (lb_history_init(&e.hist, l->max_history) != 0)
        return -1;
    if (atom == l->self)
        e.started = l->started;
    int at = 0;
    while (at < l->n && strcmp(atom_text(l->nodes[at].atom), node) < 0)
        at++;
    memmove(&l->nodes[at + 1], &l->nodes[at], (size_t)(l->n - at) * sizeof *l->nodes);
    l->nodes[at] = e;
    l->n++;
    recompute(l);
    update_leader(l);
    return 0;
}

static int lb_removed(void *st, const char *node)
{
    lb *l = st;
    int i = find(l, atom_intern(node));
    if (i < 0)
        return -1;
    lb_history_free(&l->nodes[i].hist);
    memmove(&l->nodes[i], &l->nodes[i + 1], (size_t)(l->n - i - 1) * sizeof *l->nodes);
    l->n--;
    recompute(l);
    update_leader(l); /* the last scoreboard stays in use until the new leader's comes */
    return 0;
}

/* --- placement ------------------------------------------------------------- */

static int lb_place(void *st, ph_term id, int rf, const char **out, int max)
{
    lb *l = st;
    (void)rf; /* one copy: the hub refuses any other replication factor */
    if (max < 1 || l->n < 1)
        return 0;
    l->key.index = 0;
    if (registry_key(id, &l->key) != 0)
        return -1;
    int k = lb_pick(lb_hash(l->key.buff, (size_t)l->key.index), l->hashes, l->capacity, l->n);
    if (k < 0)
        return 0;
    out[0] = atom_text(l->nodes[k].atom);
    return 1;
}

static uint64_t lb_digest(void *st)
{
    return ((lb *)st)->digest;
}

/* --- this node's metrics ------------------------------------------------------ */

static void sample_self(lb *l, lb_sample *s)
{
    unsigned n = scheduler_count();
    uint64_t busy = 0, now = monotonic_us();
    for (unsigned i = 0; i < n; i++)
        busy += scheduler_busy_us(i);
    s->sched = 0;
    if (l->last_wall_us && now > l->last_wall_us && n && busy >= l->last_busy_us)
        s->sched = (double)(busy - l->last_busy_us) / ((double)(now - l->last_wall_us) * n);
    l->last_busy_us = busy;
    l->last_wall_us = now;
    s->runq = scheduler_runq_length();
    s->procs = process_count();
    long rss = process_resident_bytes();
    s->mem = rss > 0 ? (uint64_t)rss : 0;
}

/* --- messages ------------------------------------------------------------------ */

/* {'$ph_hub', lb_report, Self, {Started, {SchedPpm, RunQ, Procs, Mem} | none}} */
static void send_report(lb *l, const dist_io *io, uint32_t to, const lb_sample *s)
{
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return;
    int ok = hub_msg_begin(&b, HM_LB_REPORT) == 0 && ph_build(&b, "~a", atom_text(l->self)) == 0;
    if (ok && s)
        ok = ph_build(&b, "{~u, {~u, ~u, ~u, ~u}}", (unsigned long long)l->started,
                      (unsigned long long)(s->sched * 1e6 + 0.5), (unsigned long long)s->runq,
                      (unsigned long long)s->procs, (unsigned long long)s->mem) == 0;
    else if (ok)
        ok = ph_build(&b, "{~u, none}", (unsigned long long)l->started) == 0;
    if (ok)
        io->send(io->arg, to, ph_buf_term(&b));
    ph_buf_free(&b);
}

static void apply_board_entry(lb *l, uint32_t node, int pm)
{
    int i = find(l, node);
    if (i >= 0) {
        l->nodes[i].scored = 1;
        l->nodes[i].score_pm = pm;
    }
}

/* The scoreboard from the leader: [{Node, ScoreThousandths}]. A malformed
 * one is dropped whole. */
static void take_scores(lb *l, uint32_t from, ph_term data)
{
    ph_iter it;
    ph_term e;
    char name[PH_ATOM_BUF];
    unsigned long long pm;
    if (ph_iter_begin(&it, data) < 0) {
        LOG_W("hub", "load balancer: a scoreboard from %s that is not a list; dropped",
              atom_text(from));
        return;
    }
    while (ph_iter_next(&it, &e) > 0)
        if (ph_match(e, "{~a, ~u}", name, &pm) != 1 || pm > 1000) {
            LOG_W("hub", "load balancer: a malformed scoreboard from %s; dropped", atom_text(from));
            return;
        }
    for (int i = 0; i < l->n; i++)
        l->nodes[i].scored = 0;
    ph_iter_begin(&it, data);
    while (ph_iter_next(&it, &e) > 0 && ph_match(e, "{~a, ~u}", name, &pm) == 1)
        apply_board_entry(l, atom_intern(name), (int)pm);
    if (l->board_from != from)
        LOG_I("hub", "load balancer: placing by %s's scoreboard", atom_text(from));
    l->board_from = from;
    recompute(l);
}

/* #{Node => Score}: the scoreboard in use. */
static int encode_board(const lb *l, ph_buf *out)
{
    int scored = 0;
    for (int i = 0; i < l->n; i++)
        scored += l->nodes[i].scored;
    if (ei_x_encode_map_header(out, scored) != 0)
        return -1;
    for (int i = 0; i < l->n; i++) {
        if (!l->nodes[i].scored)
            continue;
        if (ph_build(out, "~a", atom_text(l->nodes[i].atom)) != 0 ||
            ph_build(out, "~f", l->nodes[i].score_pm / 1000.0) != 0)
            return -1;
    }
    return 0;
}

/* ProcessHub's scoreboard_updated, on the leader when a node's score is
 * updated from its report: {PreviousScoreboard, ReportingNode}. */
static void fire_scoreboard_updated(const lb *l, const dist_io *io, uint32_t from)
{
    ph_buf b;
    if (!io->fire || update_leader((lb *)l) != l->self || ph_buf_init(&b) != 0)
        return;
    if (ei_x_encode_tuple_header(&b, 2) == 0 && encode_board(l, &b) == 0 &&
        ph_build(&b, "~a", atom_text(from)) == 0)
        io->fire(io->arg, "scoreboard_updated", ph_buf_term(&b));
    ph_buf_free(&b);
}

static void take_report(lb *l, const dist_io *io, uint32_t from, ph_term data)
{
    unsigned long long started, sched, runq, procs, mem;
    ph_term metrics;
    int i = find(l, from);
    if (i < 0 || from == l->self)
        return;
    if (ph_match(data, "{~u, ~t}", &started, &metrics) != 1 || started == 0 ||
        (ph_match(metrics, "none") != 1 &&
         ph_match(metrics, "{~u, ~u, ~u, ~u}", &sched, &runq, &procs, &mem) != 1)) {
        LOG_W("hub", "load balancer: a malformed report from %s; dropped", atom_text(from));
        return;
    }
    lb_node *e = &l->nodes[i];
    int was_unknown = e->started == 0;
    e->started = started;
    if (ph_match(metrics, "none") != 1) {
        lb_sample s = {.sched = (double)sched / 1e6, .runq = runq, .procs = procs, .mem = mem};
        lb_history_push(&e->hist, lb_score(&s));
        fire_scoreboard_updated(l, io, from);
    }
    if (was_unknown) {
        update_leader(l);
        send_report(l, io, from, NULL); /* it may not know our start yet either */
    }
}

static void lb_message(void *st, const dist_io *io, int kind, const char *node, ph_term data)
{
    lb *l = st;
    uint32_t from = atom_intern(node);
    if (kind == HM_LB_REPORT) {
        take_report(l, io, from, data);
    } else if (kind == HM_LB_SCORES) {
        if (from == update_leader(l) && from != l->self)
            take_scores(l, from, data);
        /* a scoreboard from a node that is not our leader (the views of
         * the start times differ for a moment) is ignored */
    }
}

static void lb_joined(void *st, const dist_io *io, const char *node)
{
    lb *l = st;
    send_report(l, io, atom_intern(node), NULL);
}

static int lb_redistributes(void *st)
{
    return ((lb *)st)->nodeup_redistribution;
}

static int lb_newer_than_self(void *st, const char *node)
{
    lb *l = st;
    int i = find(l, atom_intern(node));
    if (i < 0 || !l->nodes[i].started)
        return 0;
    return l->nodes[i].started > l->started ||
           (l->nodes[i].started == l->started && strcmp(node, atom_text(l->self)) > 0);
}

static int all_started_known(const lb *l)
{
    for (int i = 0; i < l->n; i++)
        if (!l->nodes[i].started)
            return 0;
    return 1;
}

/* Every push_interval: this node's metrics to every member; the leader
 * (once it knows every member's start) scores and pushes the scoreboard. */
static unsigned lb_tick(void *st, const dist_io *io)
{
    lb *l = st;
    lb_sample s;
    sample_self(l, &s);
    int me = find(l, l->self);
    if (me >= 0) {
        lb_history_push(&l->nodes[me].hist, lb_score(&s));
        fire_scoreboard_updated(l, io, l->self);
    }
    send_report(l, io, ATOM_NONE, &s);
    if (update_leader(l) != l->self || !all_started_known(l))
        return l->push_interval;
    ph_buf b;
    if (ph_buf_init(&b) != 0)
        return l->push_interval;
    int ok = hub_msg_begin(&b, HM_LB_SCORES) == 0 && ph_build(&b, "~a", atom_text(l->self)) == 0;
    for (int i = 0; ok && i < l->n; i++) {
        double score = lb_history_score(&l->nodes[i].hist, l->decay);
        if (score < 0)
            continue; /* no report yet: it gets the mean capacity */
        ok = ei_x_encode_list_header(&b, 1) == 0 &&
             ph_build(&b, "{~a, ~u}", atom_text(l->nodes[i].atom),
                      (unsigned long long)(score * 1000 + 0.5)) == 0;
    }
    ok = ok && ei_x_encode_empty_list(&b) == 0;
    if (ok) {
        ph_term msg = ph_buf_term(&b);
        ph_term data;
        if (ph_match(msg, "{_, _, _, ~t}", &data) == 1)
            take_scores(l, l->self, data);
        io->send(io->arg, ATOM_NONE, msg);
    }
    ph_buf_free(&b);
    return l->push_interval;
}

/* #{leader => Node, scores => #{Node => Score}} */
static int lb_query(void *st, ph_buf *reply)
{
    lb *l = st;
    if (ei_x_encode_map_header(reply, 2) != 0 || ph_build(reply, "leader") != 0 ||
        ph_build(reply, "~a", atom_text(update_leader(l))) != 0 || ph_build(reply, "scores") != 0)
        return -1;
    return encode_board(l, reply);
}

const ph_distribution_ops load_balancer_strategy = {
    .api_version = PH_DISTRIBUTION_API,
    .type = "centralized_load_balancer",
    .init = lb_init,
    .free = lb_free,
    .node_added = lb_added,
    .node_removed = lb_removed,
    .place = lb_place,
    .digest = lb_digest,
};

const dist_internal load_balancer_internal = {
    .ops = &load_balancer_strategy,
    .sticky = 1,
    .single_copy = 1,
    .tick = lb_tick,
    .joined = lb_joined,
    .message = lb_message,
    .query = lb_query,
    .redistributes_on_join = lb_redistributes,
    .newer_than_self = lb_newer_than_self,
};
