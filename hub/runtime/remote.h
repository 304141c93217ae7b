/*
 * remote.h - what the runtime asks of the layer that reaches other nodes:
 * deliver a signal to a process there, batch the frames a scheduler writes,
 * list the connected nodes. The distribution layer (ei_glue/) registers its
 * table when it starts; without one (a runtime linked alone, as in the unit
 * tests) a signal to another node is dropped as if that node were down.
 */
#ifndef PH_REMOTE_H
#define PH_REMOTE_H

#include <processhub/worker.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct remote_ops {
    /* Frames written by this thread between begin and end are flushed
     * once, at end (one writev per connection for a batch of replies). */
    void (*batch_begin)(void);
    void (*batch_end)(void);
    /* Flushes the frames of the batch so far; the batch goes on. */
    void (*batch_flush)(void);
    /* Each returns 0, or -1 when the signal could not be queued (links and
     * monitors waiting on that node are then resolved with noconnection). */
    int (*send)(ph_pid from, ph_pid to, const char *msg, uint32_t len);
    int (*reg_send)(ph_pid from, uint32_t node, uint32_t name, const char *msg, uint32_t len);
    int (*alias_send)(ph_pid from, const ph_ref *alias, const char *msg, uint32_t len);
    /* The same with the message in pieces (their bytes in order make one
     * versioned term), written as they are: a big reply is not first
     * copied into one buffer. At most REMOTE_MAX_PIECES. */
    int (*send_pieces)(ph_pid from, ph_pid to, const struct iovec *msg, int n);
    int (*alias_send_pieces)(ph_pid from, const ph_ref *alias, const struct iovec *msg, int n);
    int (*link)(ph_pid from, ph_pid to);
    int (*unlink_id)(ph_pid from, ph_pid to, uint64_t id);
    int (*unlink_id_ack)(ph_pid from, ph_pid to, uint64_t id);
    int (*exit)(ph_pid from, ph_pid to, const char *reason, uint32_t len, int exit2);
    int (*monitor)(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref);
    int (*demonitor)(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name,
                     const ph_ref *ref);
    int (*monitor_exit)(ph_pid watched, uint32_t name, ph_pid watcher, const ph_ref *ref,
                        const char *reason, uint32_t len);
    /* Calls fn for every node with an established connection. */
    void (*for_each_node)(void (*fn)(uint32_t node, void *arg), void *arg);
} remote_ops;

#define REMOTE_MAX_PIECES 4

/* Registers the table (NULL: none). The table must outlive its use. */
void remote_set_ops(const remote_ops *ops);
/* The registered table, or NULL. */
const remote_ops *remote(void);

/* Sends now what this thread's batch holds (a message the peer should act
 * on before this thread's long run of work ends). */
void remote_flush(void);

/* Every connected node, through the registered table (none without one). */
void remote_for_each_node(void (*fn)(uint32_t node, void *arg), void *arg);

#endif
