/*
 * processhub/strategy.h - user-defined distribution strategies.
 *
 * A distribution strategy decides on which nodes each child runs, as
 * ProcessHub's Distribution.Base protocol does. It is a table of functions
 * chosen by the config's "type" when the hub starts:
 *
 *   "distribution_strategy": {"type": "by_name", "library": "/path/libbyname.so"}
 *
 * The shared object exports PH_DISTRIBUTION_SYMBOL, a pointer to its table;
 * its "type" must equal the config's. Every other field of the config object
 * reaches init() as a map with binary keys (JSON as Erlang terms).
 *
 * Every function runs on the hub's own thread, one call at a time, and must
 * not block: placement is a local decision on every node, so every node must
 * place alike given the same members (the hub compares digest()s to know
 * when two nodes agree). docs/strategies.md has a complete example.
 */
#ifndef PROCESSHUB_STRATEGY_H
#define PROCESSHUB_STRATEGY_H

#include <processhub/term.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this table's layout: a library built against another one
 * is refused when loaded (its functions would be read at the wrong
 * offsets). */
#define PH_DISTRIBUTION_API 1

typedef struct ph_distribution_ops {
    int api_version; /* PH_DISTRIBUTION_API */
    const char *type;
    /* The strategy's state from its config object (map, binary keys;
     * "type" and "library" included). NULL and a reason in err when the
     * config is wrong: the hub does not start and logs it. */
    void *(*init)(ph_term config, char *err, size_t err_size);
    void (*free)(void *state);
    /* A node joined the hub (this node's own one comes first, at start) or
     * left it. Node names are "name@host". 0, or -1 when out of memory. */
    int (*node_added)(void *state, const char *node);
    int (*node_removed)(void *state, const char *node);
    /* The nodes of a child id (an atom or binary), in order of preference:
     * writes at most max node names to out and returns how many, at most
     * replication_factor (fewer when there are fewer nodes). Names must stay
     * valid until the next node_added or node_removed. -1: an id it cannot
     * place (the start reports it). */
    int (*place)(void *state, ph_term child_id, int replication_factor, const char **out, int max);
    /* A fingerprint of what place() depends on besides the id (the node
     * set, a scoreboard): two nodes with equal digests place alike. */
    uint64_t (*digest)(void *state);
    /* Optional (NULL: nothing to check). Called with a start's child specs
     * and options before they are placed, on the node asked and on every
     * node the start reaches (ProcessHub's children_init): it may refuse
     * the whole start by appending the error term to error and returning
     * -1 (the caller gets {error, Error}), or remember what the options say
     * about placement (Guided's child_mapping). */
    int (*children_init)(void *state, ph_term specs, ph_term opts, int replication_factor,
                         ph_buf *error);
} ph_distribution_ops;

/* What a strategy library exports: const ph_distribution_ops *ph_distribution_strategy; */
#define PH_DISTRIBUTION_SYMBOL "ph_distribution_strategy"

/* Makes a strategy available by its type (from an embedding program or a
 * --worker-lib constructor). 0, or -1 if the type is taken. */
int ph_register_distribution(const ph_distribution_ops *ops);

#ifdef __cplusplus
}
#endif

#endif
