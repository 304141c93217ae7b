/* runtime.h - the actor runtime as a whole: node identity (name and
 * creation), start-up and orderly shutdown, and the few shared terms. */
#ifndef PH_RUNTIME_H
#define PH_RUNTIME_H

#include <processhub/worker.h>
#include <stdint.h>

typedef struct runtime_config {
    const char *node_name;  /* "name@host" */
    uint32_t creation;      /* fresh per start */
    unsigned schedulers;    /* scheduler threads */
    uint32_t max_processes; /* capacity of the process table */
    unsigned busy_poll_us;  /* idle poller's non-blocking checks before sleeping */
    int busy_poll_latency;  /* spin even where sleeping costs less CPU */
} runtime_config;

int runtime_init(const runtime_config *config);
/* Stops every process (terminate callbacks run), then the threads. */
void runtime_shutdown(void);

uint32_t runtime_self_node(void); /* atom of this node's name */
const char *runtime_node_name(void);
uint32_t runtime_creation(void);
int pid_is_local(ph_pid pid);

/* Versioned encodings of common atoms, e.g. for exit reasons. */
typedef struct term_bytes {
    const char *bytes;
    uint32_t len;
} term_bytes;
term_bytes runtime_atom_term(const char *atom); /* only for the atoms below */
#define RUNTIME_ATOMS "normal", "noproc", "killed", "kill", "noconnection", "shutdown"

/* Encodes a bare atom as a versioned term into b (reset first). */
int encode_versioned_atom(ph_buf *b, const char *atom);

#endif
