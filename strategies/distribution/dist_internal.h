/*
 * dist_internal.h - what a distribution strategy compiled into phnode may
 * have beyond the public table (include/processhub/strategy.h, whose ABI
 * this leaves alone): messages to the other members and from them, a
 * periodic tick, an answer to a hub request, and "sticky" placement.
 * hub/strategy.c is the only caller.
 */
#ifndef PH_DIST_INTERNAL_H
#define PH_DIST_INTERNAL_H

#include <processhub/strategy.h>
#include <stdint.h>

/* How a strategy reaches the other members. */
typedef struct dist_io {
    /* Sends msg to the hub on node (an atom), or to every member with
     * ATOM_NONE. */
    void (*send)(void *arg, uint32_t node, ph_term msg);
    void *arg;
    /* Fires a hook of this node's hub with data (scoreboard_updated). */
    void (*fire)(void *arg, const char *key, ph_term data);
} dist_io;

typedef struct dist_internal {
    const ph_distribution_ops *ops;
    /* A child that runs on a member stays there: place() decides only where
     * new children and orphans go (the hub's owner of a running child is
     * the node it runs on; of a doubled one, where place() puts it if it
     * runs there, else the first by name). */
    int sticky;
    /* One copy per child: the hub refuses to start with a replication
     * factor other than 1. */
    int single_copy;
    /* Optional. Every call returns the ms until the next (0: no more); the
     * first comes when the distribution is up. */
    unsigned (*tick)(void *state, const dist_io *io);
    /* Optional: a member joined (node_added was called already). */
    void (*joined)(void *state, const dist_io *io, const char *node);
    /* Optional: a message of the strategy's kinds (hub/protocol.h) from the
     * member node (the hub checked it is one); data is unchecked. */
    void (*message)(void *state, const dist_io *io, int kind, const char *node, ph_term data);
    /* Optional: the strategy's state for a hub request; 0 or -1. */
    int (*query)(void *state, ph_buf *reply);
    /* Optional, with sticky: nonzero when a join moves to the newcomer the
     * running children that place() gives it. */
    int (*redistributes_on_join)(void *state);
    /* With redistributes_on_join: nonzero once node's hub is known to have
     * started after this one's (it is the newcomer, not this node). */
    int (*newer_than_self)(void *state, const char *node);
} dist_internal;

#endif
