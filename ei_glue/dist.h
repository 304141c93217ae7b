/*
 * dist.h - what the runtime asks of the distribution layer: deliver a
 * signal to a process on another node. Each call encodes one control
 * message and queues it on the connection to that node, connecting first
 * if needed (as the BEAM does on a send). Ordering between two processes is
 * kept. When the node cannot be reached, links and monitors that were
 * waiting for it are resolved locally with reason noconnection.
 */
#ifndef PH_DIST_H
#define PH_DIST_H

#include <processhub/worker.h>
#include <stdint.h>

/* Frames written by this thread between begin and end are flushed once, at
 * end (one writev per connection for a whole batch of replies). */
void dist_batch_begin(void);
void dist_batch_end(void);

int dist_send(ph_pid from, ph_pid to, const char *msg, uint32_t len);
int dist_reg_send(ph_pid from, uint32_t node, uint32_t name, const char *msg, uint32_t len);
int dist_alias_send(ph_pid from, const ph_ref *alias, const char *msg, uint32_t len);
int dist_link(ph_pid from, ph_pid to);
int dist_unlink_id(ph_pid from, ph_pid to, uint64_t id);
int dist_unlink_id_ack(ph_pid from, ph_pid to, uint64_t id);
int dist_exit(ph_pid from, ph_pid to, const char *reason, uint32_t len, int exit2);
int dist_monitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref);
int dist_demonitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref);
int dist_monitor_exit(ph_pid watched, uint32_t name, ph_pid watcher, const ph_ref *ref,
                      const char *reason, uint32_t len);

#endif
