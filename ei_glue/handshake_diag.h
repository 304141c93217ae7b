/*
 * handshake_diag.h - tells failed distribution handshakes apart.
 *
 * ei reports a failed handshake as an errno (usually EIO). The socket
 * callbacks (socket_callbacks.c) record, per thread, the peer's address and
 * the first bytes each way of the socket being handshaken; after a failure
 * handshake_diag_classify reads that record and says what happened: a
 * wrong cookie, bytes that are not a handshake, a timeout, a node that is
 * not running, a status refusal, a peer that hung up. phnode's own
 * handshake (handshake.c) fills a handshake_report directly; the recording
 * below serves `phnode ctl`, which still connects through ei.
 */
#ifndef PH_HANDSHAKE_DIAG_H
#define PH_HANDSHAKE_DIAG_H

#include <stddef.h>

typedef enum handshake_failure {
    HS_IDLE = 0,    /* nothing was accepted (an idle accept timeout): not a failure */
    HS_NOT_RUNNING, /* outgoing: epmd does not know the node, or its port refused */
    HS_BAD_COOKIE,  /* the challenge digest did not match (either side's cookie) */
    HS_GARBAGE,     /* the peer's bytes are not a distribution handshake */
    HS_TIMEOUT,     /* the peer stopped sending in the middle of the handshake */
    HS_REFUSED,     /* the peer answered a status other than ok (nok, not_allowed, ...) */
    HS_CLOSED,      /* the peer closed the connection during the handshake */
    HS_OTHER,       /* anything else (see the errno) */
    HS_TLS,         /* the TLS handshake failed (certificate not verified, expired, ...) */
    HS_PLAINTEXT,   /* TLS is required and the peer spoke plain TCP */
    HS_CAPABILITY,  /* the peer lacks capability flags phnode needs */
    HS_OVERFLOW,    /* too many handshakes pending: the oldest was dropped */
    HS_N_FAILURES
} handshake_failure;

typedef struct handshake_report {
    handshake_failure kind;
    const char *reason; /* metric label: not_running, bad_cookie, ... */
    char peer[64];      /* "127.0.0.1:40123", or "" */
    char node[256];     /* the peer's node name when it sent one, or "" */
    char detail[128];   /* the refusal status, or strerror(err) */
} handshake_report;

/* Forgets this thread's record (before each connection attempt). */
void handshake_diag_reset(void);
/* Socket callback side (this thread). */
void handshake_diag_begin(const void *sockaddr, int len, int outgoing);
void handshake_diag_rx(const char *buf, size_t len);
void handshake_diag_tx(const char *buf, size_t len);
void handshake_diag_connect_error(int err);
void handshake_diag_done(void); /* the handshake completed */

/* After ei_accept_tmo / ei_connect_tmo failed on this thread with err
 * (erl_errno). */
void handshake_diag_classify(int incoming, int err, handshake_report *r);
/* One sentence for the log and for `phnode ctl`, e.g. "wrong cookie
 * (the challenge digest did not match)". */
const char *handshake_failure_text(handshake_failure kind);
const char *handshake_failure_reason(handshake_failure kind);

#endif
