/*
 * hub.h - the hub on this node: the process registered as hub_id that
 * answers ProcessHub's API (docs/api.md), keeps the registry, supervises
 * the children started here and fires the hooks.
 */
#ifndef PH_HUB_H
#define PH_HUB_H

#include <processhub/term.h>
#include <stdint.h>

/* redundancy_strategy.redundancy_signal: the roles a replica is told about. */
enum hub_signal { SIGNAL_NONE, SIGNAL_ACTIVE, SIGNAL_PASSIVE, SIGNAL_ALL };

typedef struct hub_config {
    char hub_id[256];
    ph_buf child_specs; /* a list of child spec maps ([] when none) */
    ph_buf hooks;       /* [{HookKey, Node, Handler}]: M/F/A handlers from the config */
    ph_buf seeds;       /* [Node]: hub nodes to join (--join, "join") */
    unsigned hubs_discover_interval;
    unsigned deadlock_recovery_timeout;
    unsigned storage_purge_interval;
    unsigned migr_base_timeout;
    unsigned dsup_max_restarts;
    unsigned dsup_max_seconds;
    unsigned dsup_shutdown_timeout;
    unsigned sync_interval; /* synchronization_strategy.sync_interval (ms) */
    unsigned hook_timeout;  /* ms an M/F/A hook handler is awaited (0: HOOKS_CALL_TIMEOUT_MS) */
    /* synchronization_strategy: "type" ("" means pubsub); gossip's
     * recipients (0 means 3) and restricted_init (stored negated, so that
     * the zeroed default is ProcessHub's true) */
    char sync_type[16];
    unsigned sync_recipients;
    int sync_unrestricted_init;
    /* distribution_strategy as given: its "type" and the whole object as a
     * map with binary keys (the strategy reads its own options) */
    char distribution_type[64];
    ph_buf distribution;
    /* redundancy_strategy: singularity is replication_factor 1 */
    int replication_factor; /* >= 1, or 0 for "cluster_size" */
    int active_passive;     /* replication_model == active_passive */
    int redundancy_signal;  /* a hub_signal: which roles each replica is told */
    int beam_discovery;     /* ask connected BEAM nodes which hidden nodes they see */
    /* migration_strategy: cold_swap (hot_swap 0) or hot_swap and its
     * options, as %HotSwap{} (times in ms) */
    int hot_swap;
    int handover;                     /* hand the state over (ProcessHub's default: false) */
    int confirm_handover;             /* the new copies confirm; the old ones stop then */
    unsigned retention;               /* how long an old copy waits for its handover */
    unsigned handover_data_wait;      /* how long a new copy (or a leaving hub) waits for a state */
    unsigned child_migration_timeout; /* how long a move waits for the new owner's start */
    /* partition_tolerance_strategy (docs/strategies.md): "type" ("" means
     * divergence) and the options of the quorum strategies */
    char partition_type[24];
    long quorum_size;              /* static_quorum: nodes; dynamic_quorum: percent */
    int startup_confirm;           /* static_quorum */
    unsigned threshold_time;       /* dynamic_quorum, seconds (default 30) */
    unsigned initial_cluster_size; /* majority_quorum (default 1) */
    int track_max_size;            /* majority_quorum (default true) */
} hub_config;

/* Defaults of %ProcessHub{}, hub_id my_hub and no static children. */
int hub_config_defaults(hub_config *c);
void hub_config_free(hub_config *c);

/* Registers the hub's module with c as its configuration, for a
 * supervisor to spawn it (hub_module_name(), registered as c->hub_id, args
 * []). A hub killed with reason kill leaves its children running and the
 * next hub spawned re-adopts them. */
int hub_prepare(const hub_config *c);
const char *hub_module_name(void);
/* hub_prepare, then starts the hub process unsupervised (static children
 * first). 0, or -1 with the reason logged (e.g. a static child failed to
 * start). */
int hub_start(const hub_config *c);
/* The distribution is up: the hub announces itself to its seeds now and
 * every hubs_discover_interval from then on. */
void hub_network_ready(const hub_config *c);
/* Graceful leave (SIGTERM): the members restart this node's children on
 * their new owners. Returns 0 once every member confirmed, -1 after
 * migr_base_timeout or when no hub runs. The children keep running until
 * the runtime shuts down. */
int hub_leave(const hub_config *c);

#endif
