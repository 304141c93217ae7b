/* strategy.c - the strategies this hub runs and the questions the hub asks
 * them: the distribution strategy chosen by its config "type" when the hub
 * starts (built in, registered by ph_register_distribution, or loaded from
 * the config's "library"), the replication factor and the active replica
 * (redundancy). The rest of the hub reaches them only through here. */
#include "hub/hub_internal.h"

#include "strategies/distribution/guided.h"
#include "strategies/distribution/load_balancer.h"
#include "strategies/migration/migration_ops.h"
#include "strategies/synchronization/sync_ops.h"
#include "strategies/redundancy/replication.h"

#include <dlfcn.h>
#include <stdio.h>

/* --- the distribution strategies by type --------------------------------- */

#define MAX_DISTRIBUTIONS 32

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static const ph_distribution_ops *types[MAX_DISTRIBUTIONS];
static int n_types;

static const ph_distribution_ops *find_type(const char *type)
{
    const ph_distribution_ops *found = NULL;
    if (strcmp(type, consistent_hashing_strategy.type) == 0)
        return &consistent_hashing_strategy;
    if (strcmp(type, guided_strategy.type) == 0)
        return &guided_strategy;
    if (strcmp(type, load_balancer_strategy.type) == 0)
        return &load_balancer_strategy;
    pthread_mutex_lock(&types_lock);
    for (int i = 0; i < n_types && !found; i++)
        if (strcmp(types[i]->type, type) == 0)
            found = types[i];
    pthread_mutex_unlock(&types_lock);
    return found;
}

int ph_register_distribution(const ph_distribution_ops *ops)
{
    if (!ops || ops->api_version != PH_DISTRIBUTION_API || !ops->type || !ops->init || !ops->free ||
        !ops->node_added || !ops->node_removed || !ops->place || !ops->digest ||
        find_type(ops->type))
        return -1;
    int rc = -1;
    pthread_mutex_lock(&types_lock);
    if (n_types < MAX_DISTRIBUTIONS) {
        types[n_types++] = ops;
        rc = 0;
    }
    pthread_mutex_unlock(&types_lock);
    return rc;
}

/* The config's "library": a shared object exporting PH_DISTRIBUTION_SYMBOL. */
static const ph_distribution_ops *load_library(ph_term config, const char *type, char *err,
                                               size_t err_size)
{
    ph_buf key;
    ph_term v;
    const char *bytes;
    size_t len;
    char path[4096];
    if (ph_buf_init(&key) != 0 || ph_build(&key, "~s", "library") != 0) {
        ph_buf_free(&key);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    int found = ph_map_get(config, ph_buf_term(&key), &v) == 1;
    ph_buf_free(&key);
    if (!found) {
        snprintf(err, err_size,
                 "distribution_strategy: no strategy of type \"%s\" (and no \"library\" to load it "
                 "from)",
                 type);
        return NULL;
    }
    if (ph_match(v, "~b", &bytes, &len) != 1 || len == 0 || len >= sizeof path) {
        snprintf(err, err_size,
                 "distribution_strategy.library must be the path of a shared object");
        return NULL;
    }
    memcpy(path, bytes, len);
    path[len] = 0;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(err, err_size, "distribution_strategy: cannot load %s: %s", path, dlerror());
        return NULL;
    }
    const ph_distribution_ops *const *sym = dlsym(handle, PH_DISTRIBUTION_SYMBOL);
    if (!sym || !*sym) {
        snprintf(err, err_size, "distribution_strategy: %s exports no %s", path,
                 PH_DISTRIBUTION_SYMBOL);
        dlclose(handle);
        return NULL;
    }
    const ph_distribution_ops *ops = *sym;
    if (ops->api_version != PH_DISTRIBUTION_API) {
        snprintf(err, err_size,
                 "distribution_strategy: %s was built for strategy API %d, this phnode has %d "
                 "(rebuild it against include/processhub/strategy.h)",
                 path, ops->api_version, PH_DISTRIBUTION_API);
        dlclose(handle);
        return NULL;
    }
    if (!ops->type || strcmp(ops->type, type) != 0) {
        snprintf(err, err_size, "distribution_strategy: %s implements type \"%s\", not \"%s\"",
                 path, ops->type ? ops->type : "(none)", type);
        dlclose(handle);
        return NULL;
    }
    if (ph_register_distribution(ops) != 0) {
        snprintf(err, err_size, "distribution_strategy: %s: an incomplete strategy table", path);
        dlclose(handle);
        return NULL;
    }
    return ops; /* the library stays loaded for the life of the node */
}

int strategies_init(hub *h, const hub_config *cfg, char *err, size_t err_size)
{
    const char *type = cfg->distribution_type[0] ? cfg->distribution_type : "consistent_hashing";
    ph_buf empty;
    ph_term config;
    if (ph_buf_init(&empty) != 0)
        return -1;
    if (cfg->distribution.buff && cfg->distribution.index > 0) {
        config = ph_buf_term(&cfg->distribution);
    } else {
        ph_build(&empty, "#{}");
        config = ph_buf_term(&empty);
    }
    const ph_distribution_ops *ops = find_type(type);
    if (!ops)
        ops = load_library(config, type, err, err_size);
    const dist_internal *ext = ops == &load_balancer_strategy ? &load_balancer_internal : NULL;
    if (ext && ext->single_copy && cfg->replication_factor != 1) {
        ph_buf_free(&empty);
        snprintf(err, err_size,
                 "distribution_strategy %s runs one copy of each child: it cannot be combined "
                 "with redundancy_strategy replication (replication_factor must be 1)",
                 ops->type);
        return -1;
    }
    void *state = ops ? ops->init(config, err, err_size) : NULL;
    ph_buf_free(&empty);
    if (!state)
        return -1;
    h->dist = ops;
    h->dist_state = state;
    h->dist_ext = ext;
    h->dist_joined = ATOM_NONE;
    h->migration = migration_strategy(cfg);
    return strategy_node_added(h, h->self_node);
}

void strategies_free(hub *h)
{
    if (h->dist && h->dist_state)
        h->dist->free(h->dist_state);
    h->dist_state = NULL;
    if (h->owner_key.buff)
        ph_buf_free(&h->owner_key);
}

/* --- an internal strategy's messages, timer and query ----------------------- */

typedef struct io_arg {
    hub *h;
    ph_ctx *ctx; /* NULL outside the hub's callbacks (a join seen by cluster.c) */
} io_arg;

static void io_send(void *arg, uint32_t node, ph_term msg)
{
    io_arg *a = arg;
    if (node != ATOM_NONE) {
        ph_send_named(a->ctx, a->h->cfg.hub_id, atom_text(node), msg);
        return;
    }
    for (int i = 0; i < a->h->members.n; i++)
        ph_send_named(a->ctx, a->h->cfg.hub_id, atom_text(a->h->members.members[i].node), msg);
}

static void io_fire(void *arg, const char *key, ph_term data)
{
    io_arg *a = arg;
    fire(a->h, a->ctx, key, data);
}

/* The distribution is up (the hub's first announcement): the strategy's
 * tick starts. */
void strategy_network_up(hub *h, ph_ctx *ctx)
{
    if (!h->dist_ext || !h->dist_ext->tick || h->dist_ticking)
        return;
    h->dist_ticking = 1;
    send_self_after(ctx, 1, "{'$ph_hub', ~a}", hub_msg_name(HM_LB_TICK));
}

/* The strategy's timer and its messages from other members. */
void strategy_message(hub *h, ph_ctx *ctx, const hub_msg *m)
{
    io_arg a = {h, ctx};
    dist_io io = {io_send, &a, io_fire};
    const dist_internal *ext = h->dist_ext;
    if (m->kind == HM_LB_TICK) {
        unsigned ms = ext && ext->tick ? ext->tick(h->dist_state, &io) : 0;
        if (ms)
            send_self_after(ctx, ms, "{'$ph_hub', ~a}", hub_msg_name(HM_LB_TICK));
        else
            h->dist_ticking = 0;
        return;
    }
    if (!ext || !ext->message) {
        LOG_D("hub", "%s: a %s message without a load balancer here; ignored", h->cfg.hub_id,
              hub_msg_name(m->kind));
        return;
    }
    if (!membership_find(&h->members, m->node))
        return; /* not (yet) a member: it reports again once it is */
    ext->message(h->dist_state, &io, (int)m->kind, atom_text(m->node), m->term);
    if (m->kind == HM_LB_REPORT && m->node == h->dist_joined && ext->newer_than_self) {
        /* nodeup_redistribution: the member that joined reported its start.
         * If it is the newcomer (not this node, joining an older cluster),
         * the children here that the scoreboard gives it move there, in one
         * reconcile; every later one keeps children where they run. */
        h->dist_joined = ATOM_NONE;
        if (ext->newer_than_self(h->dist_state, atom_text(m->node))) {
            h->dist_redistributing = 1;
            h->dist_redistributing_to = m->node;
            reconcile(h, ctx, FILL_ORPHANS);
            h->dist_redistributing = 0;
        }
    }
}

/* The load_balancer request: the strategy's state, or {error, Reason}. */
int strategy_query(hub *h, ph_buf *reply)
{
    if (!h->dist_ext || !h->dist_ext->query)
        return ph_build(reply, "{error, {not_supported, ~a}}", "distribution_strategy");
    ph_buf tmp;
    if (ph_buf_init(&tmp) != 0)
        return -1;
    int rc = h->dist_ext->query(h->dist_state, &tmp);
    if (rc == 0)
        rc = ph_buf_append_term(reply, ph_buf_term(&tmp));
    else
        rc = ph_build(reply, "{error, enomem}");
    ph_buf_free(&tmp);
    return rc;
}

/* Node names the strategy returns point into its state: their atoms are
 * remembered by pointer until the nodes change. */
static uint32_t node_atom(hub *h, const char *name)
{
    for (int i = 0; i < h->n_names; i++)
        if (h->names[i].name == name)
            return h->names[i].atom;
    uint32_t atom = atom_intern(name);
    if (h->n_names < (int)(sizeof h->names / sizeof h->names[0]))
        h->names[h->n_names++] = (struct name_atom){name, atom};
    return atom;
}

int strategy_node_added(hub *h, uint32_t node)
{
    h->n_names = 0;
    metric_inc(&hm_ring_rebuilds);
    int rc = h->dist->node_added(h->dist_state, atom_text(node));
    if (rc == 0 && node != h->self_node && h->dist_ext && h->dist_ext->joined) {
        io_arg a = {h, NULL};
        dist_io io = {io_send, &a, io_fire};
        h->dist_ext->joined(h->dist_state, &io, atom_text(node));
    }
    if (rc == 0 && node != h->self_node && h->dist_ext && h->dist_ext->redistributes_on_join &&
        h->dist_ext->redistributes_on_join(h->dist_state))
        h->dist_joined = node; /* its share moves there once it reports its start */
    return rc;
}

int strategy_node_removed(hub *h, uint32_t node)
{
    h->n_names = 0;
    metric_inc(&hm_ring_rebuilds);
    return h->dist->node_removed(h->dist_state, atom_text(node));
}

/* --- questions --------------------------------------------------------- */

int hub_replication_factor(const hub *h)
{
    int nodes = h->members.n + (h->leaving ? 0 : 1);
    int rf = h->cfg.replication_factor ? h->cfg.replication_factor : nodes;
    return rf < 1 ? 1 : rf;
}

/* With a sticky strategy, a child that runs on a member is owned by that
 * member (of a doubled one, by the one place() gives it if it runs there,
 * else by the first of them by name, so every node keeps the same copy). ATOM_NONE: it runs
 * nowhere, or place() gives it to a member that just joined (nodeup_redistribution): place()
 * decides. */
static uint32_t sticky_owner(hub *h, ph_term id)
{
    if (!h->dist_ext || !h->dist_ext->sticky)
        return ATOM_NONE;
    if (!h->owner_key.buff && ph_buf_init(&h->owner_key) != 0)
        return ATOM_NONE;
    h->owner_key.index = 0;
    if (registry_key(id, &h->owner_key) != 0)
        return ATOM_NONE;
    reg_row *row = registry_get(h->reg, h->owner_key.buff, (uint32_t)h->owner_key.index);
    uint32_t best = ATOM_NONE, placed = ATOM_NONE;
    int live = 0;
    for (uint16_t i = 0; row && i < row->n_nodes; i++) {
        uint32_t n = row->nodes[i].node;
        if (n != h->self_node && !membership_find(&h->members, n))
            continue;
        live++;
        if (best == ATOM_NONE || strcmp(atom_text(n), atom_text(best)) < 0)
            best = n;
    }
    if (live > 1) {
        /* Doubled (a move in flight, two halves of a split that both ran
         * it). A move's target keeps the child: on the target, its copy
         * wins while the sender's is listed (the sender stops that one, or
         * undoes ours at its timeout); the sender does not move it again
         * meanwhile (the moving set). Else the copy where place() puts it
         * wins if it is one of them; else the first by name. */
        const char *name;
        if (moved_in_holds(h, row))
            return h->self_node;
        if (h->dist->place(h->dist_state, id, 1, &name, 1) == 1)
            placed = atom_intern(name);
        for (uint16_t i = 0; placed != ATOM_NONE && i < row->n_nodes; i++)
            if (row->nodes[i].node == placed &&
                (placed == h->self_node || membership_find(&h->members, placed)))
                return placed;
    }
    if (best != ATOM_NONE && h->dist_redistributing) {
        const char *name;
        if (h->dist->place(h->dist_state, id, 1, &name, 1) == 1 &&
            atom_intern(name) == h->dist_redistributing_to)
            return ATOM_NONE;
    }
    return best;
}

int hub_owners(hub *h, ph_term id, uint32_t *out, int max)
{
    const char *names[MAX_REPLICAS];
    if (max > MAX_REPLICAS)
        max = MAX_REPLICAS;
    uint32_t held = max > 0 ? sticky_owner(h, id) : ATOM_NONE;
    if (held != ATOM_NONE) {
        out[0] = held;
        return 1;
    }
    int n = h->dist->place(h->dist_state, id, hub_replication_factor(h), names, max);
    for (int i = 0; i < n; i++)
        out[i] = node_atom(h, names[i]);
    return n;
}

uint32_t hub_owner(hub *h, ph_term id)
{
    const char *name;
    uint32_t held = sticky_owner(h, id);
    if (held != ATOM_NONE)
        return held;
    return h->dist->place(h->dist_state, id, 1, &name, 1) == 1 ? node_atom(h, name) : ATOM_NONE;
}

int strategy_removal_is_local(const hub *h)
{
    /* a vnode ring: a node's removal hands its arcs to the next vnodes and
     * leaves every other id's owners as they were */
    return h->dist == &consistent_hashing_strategy;
}

long hub_view_digest(hub *h)
{
    uint64_t d = h->dist->digest(h->dist_state) ^
                 (0x9e3779b97f4a7c15ULL * (uint64_t)hub_replication_factor(h));
    return (long)(d >> 1); /* a non-negative long, for an option value */
}

/* --- redundancy: the active replica and its signal ------------------------ */

/* The node of the active replica of id among its owners (ProcessHub's
 * master_node), or ATOM_NONE. With active_active every replica is active. */
uint32_t hub_active_node(hub *h, ph_term id)
{
    uint32_t owners[MAX_REPLICAS];
    const char *names[MAX_REPLICAS];
    int k = hub_owners(h, id, owners, MAX_REPLICAS);
    for (int i = 0; i < k; i++)
        names[i] = atom_text(owners[i]);
    int m = replication_master(id, names, k);
    return m >= 0 ? owners[m] : ATOM_NONE;
}

/* Tells the copy of row running here its role when it changed (or was never
 * told), as redundancy_signal asks: {process_hub, redundancy_signal,
 * active | passive}. Only the replicas whose role changed hear again. */
void signal_role(hub *h, ph_ctx *ctx, const reg_row *row, ph_pid pid)
{
    if (h->cfg.redundancy_signal == SIGNAL_NONE)
        return;
    child *c = child_find(h, pid, NULL);
    if (!c || c->stopping)
        return;
    uint8_t role = 1;
    if (h->cfg.active_passive)
        role = hub_active_node(h, reg_row_key(row)) == h->self_node ? 1 : 2;
    if (role == c->mode)
        return;
    c->mode = role;
    int sig = h->cfg.redundancy_signal;
    if (sig == SIGNAL_ALL || (sig == SIGNAL_ACTIVE && role == 1) ||
        (sig == SIGNAL_PASSIVE && role == 2)) {
        ph_buf b;
        if (ph_buf_init(&b) == 0) {
            if (ph_build(&b, "{process_hub, redundancy_signal, ~a}",
                         role == 1 ? "active" : "passive") == 0)
                ph_send(ctx, pid, ph_buf_term(&b));
            ph_buf_free(&b);
        }
    }
}

/* After the members changed: every replica here whose role changed hears
 * of it (active_passive; in active_active roles never change). */
void signal_roles(hub *h, ph_ctx *ctx)
{
    uint32_t i = 0;
    reg_row *row;
    ph_pid pid;
    if (h->cfg.redundancy_signal == SIGNAL_NONE || !h->cfg.active_passive)
        return;
    while ((row = registry_next(h->reg, &i)) != NULL)
        if (row_local_pid(h, row, &pid))
            signal_role(h, ctx, row, pid);
}

/* The strategy's check of a start (Guided: child_mapping); 0, or -1 with
 * the whole start's error term in error. Also merges what the options
 * say about placement on a node the start reached. */
int hub_children_init(hub *h, ph_term specs, ph_term opts, ph_buf *error)
{
    if (!h->dist->children_init)
        return 0;
    int rc = h->dist->children_init(h->dist_state, specs, opts, hub_replication_factor(h), error);
    if (rc == 0)
        return 0;
    if (rc != -1) { /* the strategy could not even say why */
        ph_buf_reset(error);
        ph_build(error, "enomem");
    }
    return -1;
}

/* --- synchronization ------------------------------------------------------ */

/* The synchronization strategy of the config's "type", set up on first use
 * (hub_config.c accepted only known types and options, so only memory can
 * fail here: then PubSub, which keeps no state, stands in). */
const sync_ops *sync_strategy(hub *h)
{
    if (h->sync)
        return h->sync;
    const sync_ops *ops =
        strcmp(h->cfg.sync_type, gossip_sync.type) == 0 ? &gossip_sync : &pubsub_sync;
    char why[200] = "";
    if (ops->init(h, why, sizeof why) != 0) {
        LOG_E("hub", "%s: synchronization %s: %s; using pubsub", h->cfg.hub_id, ops->type, why);
        ops = &pubsub_sync;
        h->sync_state = NULL;
    }
    h->sync = ops;
    return ops;
}

void sync_strategy_free(hub *h)
{
    if (h->sync && h->sync->free)
        h->sync->free(h);
    h->sync = NULL;
    h->sync_state = NULL;
}

/* --- migration ------------------------------------------------------------- */

/* The migration strategy of the config's "type" (hub_config.c accepted
 * only cold_swap and hot_swap). */
const migration_ops *migration_strategy(const hub_config *cfg)
{
    return cfg->hot_swap ? &hot_swap_migration : &cold_swap_migration;
}
