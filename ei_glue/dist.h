/*
 * dist.h - the runtime's remote operations over the distribution: deliver a
 * signal to a process on another node. Each call encodes one control
 * message and queues it on the connection to that node, connecting first
 * if needed (as the BEAM does on a send). Ordering between two processes is
 * kept. When the node cannot be reached, links and monitors that were
 * waiting for it are resolved locally with reason noconnection.
 */
#ifndef PH_DIST_H
#define PH_DIST_H

#include "hub/runtime/remote.h"

/* The runtime's remote operations (hub/runtime/remote.h), each encoding
 * one control message; connections_init registers the table. */
extern const struct remote_ops dist_remote_ops;

#endif
