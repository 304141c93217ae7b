/* guided.c - ProcessHub's Guided distribution strategy: each child runs on
 * the nodes its start named (child_mapping: %{id => [node]}); nothing moves
 * when members join, and a child whose mapped nodes are all gone leaves the
 * registry. See docs/strategies.md. */
#include "strategies/distribution/guided.h"

#include "hub/registry.h"
#include "hub/runtime/atoms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct guided {
    registry *mapping; /* child id -> its nodes (the row's node list, pids unused) */
    uint32_t *live;    /* member atoms, this node included */
    int n_live, cap_live;
    ph_buf key;
} guided;

static void *guided_init(ph_term config, char *err, size_t err_size)
{
    (void)config;
    guided *g = calloc(1, sizeof *g);
    if (!g || !(g->mapping = registry_new()) || ph_buf_init(&g->key) != 0) {
        if (g)
            registry_free(g->mapping);
        free(g);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    return g;
}

static void guided_free(void *st)
{
    guided *g = st;
    registry_free(g->mapping);
    ph_buf_free(&g->key);
    free(g->live);
    free(g);
}

static int guided_added(void *st, const char *node)
{
    guided *g = st;
    uint32_t atom = atom_intern(node);
    if (atom == ATOM_NONE)
        return -1;
    if (g->n_live == g->cap_live) {
        int cap = g->cap_live ? 2 * g->cap_live : 8;
        uint32_t *n = realloc(g->live, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        g->live = n;
        g->cap_live = cap;
    }
    g->live[g->n_live++] = atom;
    return 0;
}

static int guided_removed(void *st, const char *node)
{
    guided *g = st;
    uint32_t atom = atom_intern(node);
    for (int i = 0; i < g->n_live; i++)
        if (g->live[i] == atom) {
            g->live[i] = g->live[--g->n_live];
            return 0;
        }
    return -1;
}

static int is_live(const guided *g, uint32_t atom)
{
    for (int i = 0; i < g->n_live; i++)
        if (g->live[i] == atom)
            return 1;
    return 0;
}

/* The mapped nodes that are members, in the mapping's order; -1 for an id
 * this node was never told about (no opinion: the nodes that were place it). */
static int guided_place(void *st, ph_term id, int rf, const char **out, int max)
{
    guided *g = st;
    g->key.index = 0;
    if (registry_key(id, &g->key) != 0)
        return -1;
    reg_row *row = registry_get(g->mapping, g->key.buff, (uint32_t)g->key.index);
    if (!row)
        return -1;
    int n = 0;
    for (uint16_t i = 0; i < row->n_nodes && n < rf && n < max; i++)
        if (is_live(g, row->nodes[i].node))
            out[n++] = atom_text(row->nodes[i].node);
    return n;
}

static uint64_t guided_digest(void *st)
{
    (void)st;
    return 0; /* a mapping travels with its start: placement never needs forwarding */
}

static int refuse(ph_buf *error, const char *why)
{
    if (ph_build(error, "~a", why) != 0)
        return -2; /* out of memory: the caller reports enomem */
    return -1;
}

/* ProcessHub's checks, in its order: the option is there, it is a map,
 * every child's id is a key, every list is replication_factor long. Then
 * the mapping is remembered. */
static int guided_children_init(void *st, ph_term specs, ph_term opts, int rf, ph_buf *error)
{
    guided *g = st;
    ph_iter it, m;
    ph_term opt, mapping = {0}, spec, id, nodes, k, v;
    char key[PH_ATOM_BUF];
    int found = 0;
    if (ph_iter_begin(&it, opts) >= 0)
        while (ph_iter_next(&it, &opt) > 0)
            if (ph_match(opt, "{~a, ~t}", key, &v) == 1 && strcmp(key, "child_mapping") == 0) {
                mapping = v;
                found = 1;
            }
    if (!found)
        return refuse(error, "missing_child_mapping");
    if (ph_term_type(mapping, NULL) != ERL_MAP_EXT)
        return refuse(error, "invalid_child_mapping");
    if (ph_iter_begin(&it, specs) < 0)
        return refuse(error, "child_mapping_mismatch");
    while (ph_iter_next(&it, &spec) > 0)
        if (ph_term_type(spec, NULL) != ERL_MAP_EXT || ph_map_get_atom(spec, "id", &id) != 1 ||
            ph_map_get(mapping, id, &nodes) != 1)
            return refuse(error, "child_mapping_mismatch");
    if (ph_iter_begin(&m, mapping) < 0)
        return refuse(error, "invalid_child_mapping");
    while (ph_iter_next(&m, &k) > 0 && ph_iter_next(&m, &v) > 0) {
        ph_iter ni;
        int len = ph_iter_begin(&ni, v);
        if (len < 0)
            return refuse(error, "invalid_child_mapping");
        if (len != rf)
            return refuse(error, "child_replication_mismatch");
        while (ph_iter_next(&ni, &opt) > 0)
            if (ph_match(opt, "~a", key) != 1)
                return refuse(error, "invalid_child_mapping");
    }
    /* remembered: id -> [node] */
    ph_iter_begin(&m, mapping);
    while (ph_iter_next(&m, &k) > 0 && ph_iter_next(&m, &v) > 0) {
        reg_node_pid np[MAX_GUIDED_NODES];
        uint16_t n = 0;
        ph_iter ni;
        ph_iter_begin(&ni, v);
        while (ph_iter_next(&ni, &opt) > 0 && n < MAX_GUIDED_NODES)
            if (ph_match(opt, "~a", key) == 1 && (np[n].node = atom_intern(key)) != ATOM_NONE) {
                memset(&np[n].pid, 0, sizeof np[n].pid);
                n++;
            }
        g->key.index = 0;
        if (registry_key(k, &g->key) != 0)
            continue; /* not an id: no child of this start has it */
        if (!registry_put(g->mapping, g->key.buff, (uint32_t)g->key.index, k, k, np, n))
            return refuse(error, "enomem");
    }
    return 0;
}

const ph_distribution_ops guided_strategy = {
    .api_version = PH_DISTRIBUTION_API,
    .type = "guided",
    .init = guided_init,
    .free = guided_free,
    .node_added = guided_added,
    .node_removed = guided_removed,
    .place = guided_place,
    .digest = guided_digest,
    .children_init = guided_children_init,
};
