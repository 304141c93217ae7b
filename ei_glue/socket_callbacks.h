/*
 * socket_callbacks.h - the TCP transport that ei uses for epmd, listening
 * and handshakes (ei's "user supplied socket implementation").
 *
 * Going through these callbacks lets us add DFLAG_DIST_MONITOR_NAME to the
 * capability flags ei advertises: the BEAM then sends MONITOR_P and
 * DEMONITOR_P to this node, which is what gives C pids real monitor
 * semantics (Process.monitor DOWN reasons, :noproc from GenServer.call on a
 * dead pid). The MD5 digest of the handshake covers only the cookie and the
 * challenge, so rewriting the flags field is accepted by the peer.
 */
#ifndef PH_SOCKET_CALLBACKS_H
#define PH_SOCKET_CALLBACKS_H

#include <ei.h>

/* Flags added to every name/challenge packet ei sends. */
#define DFLAG_DIST_MONITOR_NAME 0x20ULL

extern ei_socket_callbacks tcp_socket_callbacks;

/* Connections made from now on (except to epmd) run inside TLS; needs
 * transport_tls_init. For `phnode ctl` against a node with TLS on. */
void socket_callbacks_enable_tls(void);
/* Why the last TLS handshake failed, or "". */
const char *socket_callbacks_tls_error(void);

#endif
