/*
 * route.h - the one place where a signal from any process (local, or
 * decoded from the network) finds its target. A local target gets the
 * signal in its mailbox; a remote one goes to the distribution layer.
 * Signals aimed at a local process that does not exist are answered here
 * the way the BEAM answers them: LINK -> EXIT noproc, MONITOR -> DOWN
 * noproc, UNLINK_ID -> UNLINK_ID_ACK; plain messages are dropped.
 *
 * Payloads and reasons are versioned external-format terms; callers keep
 * ownership of the bytes (they are copied when needed).
 */
#ifndef PH_ROUTE_H
#define PH_ROUTE_H

#include <processhub/worker.h>
#include <stdint.h>

void route_message(ph_pid from, ph_pid to, const char *msg, uint32_t len);
/* To a registered name on node (a node atom; this node or remote). */
void route_reg_send(ph_pid from, uint32_t node, uint32_t name, const char *msg, uint32_t len);
/* A message from the network to a local pid or registered name, which the
 * reader validated whole: delivered without a second walk. */
void route_checked_message(ph_pid from, ph_pid to, const char *msg, uint32_t len);
void route_checked_reg_send(ph_pid from, uint32_t name, const char *msg, uint32_t len);
/* The same, with the message already a checked SIG_MESSAGE signal (made
 * from the block it was read into: no copy). Takes the signal; freed when
 * there is no such process. */
struct proc_signal;
void route_checked_signal(ph_pid to, struct proc_signal *s);
void route_checked_reg_signal(uint32_t name, struct proc_signal *s);
void route_alias_send(ph_pid from, const ph_ref *alias, const char *msg, uint32_t len);
/* A message in pieces (at most REMOTE_MAX_PIECES, remote.h): to another
 * node they are written as they are; a local target gets one copy. */
struct iovec;
void route_message_pieces(ph_pid from, ph_pid to, const struct iovec *msg, int n);
void route_alias_send_pieces(ph_pid from, const ph_ref *alias, const struct iovec *msg, int n);
void route_link(ph_pid from, ph_pid to);
void route_unlink(ph_pid from, ph_pid to, uint64_t id);
void route_unlink_ack(ph_pid from, ph_pid to, uint64_t id);
void route_exit(ph_pid from, ph_pid to, const char *reason, uint32_t len, int exit2);
/* name == ATOM_NONE: monitor by pid (target); else by name on node. */
void route_monitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name, const ph_ref *ref);
void route_demonitor(ph_pid watcher, ph_pid target, uint32_t node, uint32_t name,
                     const ph_ref *ref);
/* The watched process (by pid, or name@node when name != ATOM_NONE) ended. */
void route_down(ph_pid watched, uint32_t name, ph_pid watcher, const ph_ref *ref,
                const char *reason, uint32_t len);
/* The connection to node is gone: every local process with a link or
 * monitor toward it hears about it. */
void route_nodedown(uint32_t node);

#endif
