/* handshake_diag.c - records each handshake's first bytes per thread and
 * classifies failures; see handshake_diag.h. */
#include "ei_glue/handshake_diag.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define KEEP 512

typedef struct record {
    int active;   /* a socket is (was) being handshaken on this thread */
    int outgoing; /* we dialed */
    int to_epmd;  /* the socket went to epmd, not to the node */
    int connect_error;
    char peer[64];
    unsigned char rx[KEEP], tx[KEEP];
    size_t rx_len, tx_len;
} record;

static _Thread_local record rec;

static int epmd_port(void)
{
    const char *env = getenv("ERL_EPMD_PORT");
    int p = env ? atoi(env) : 0;
    return p > 0 && p < 65536 ? p : 4369;
}

void handshake_diag_reset(void)
{
    memset(&rec, 0, offsetof(record, rx));
    rec.rx_len = rec.tx_len = 0;
}

void handshake_diag_begin(const void *sockaddr, int len, int outgoing)
{
    memset(&rec, 0, offsetof(record, rx));
    rec.rx_len = rec.tx_len = 0;
    rec.active = 1;
    rec.outgoing = outgoing;
    const struct sockaddr *sa = sockaddr;
    if (sa && len >= (int)sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = sockaddr;
        char host[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof host))
            snprintf(rec.peer, sizeof rec.peer, "%s:%u", host, ntohs(in->sin_port));
        rec.to_epmd = outgoing && ntohs(in->sin_port) == epmd_port();
    }
}

static void keep(unsigned char *dst, size_t *dst_len, const char *buf, size_t len)
{
    size_t room = KEEP - *dst_len;
    if (len > room)
        len = room;
    memcpy(dst + *dst_len, buf, len);
    *dst_len += len;
}

void handshake_diag_rx(const char *buf, size_t len)
{
    if (rec.active)
        keep(rec.rx, &rec.rx_len, buf, len);
}

void handshake_diag_tx(const char *buf, size_t len)
{
    if (rec.active)
        keep(rec.tx, &rec.tx_len, buf, len);
}

void handshake_diag_connect_error(int err)
{
    rec.connect_error = err;
}

void handshake_diag_done(void)
{
    rec.active = 0;
}

/* The i-th packet (2-byte length + body) of a kept stream: its body and
 * length; 0 if it is not complete in what was kept. */
static int packet(const unsigned char *s, size_t len, int i, const unsigned char **body,
                  size_t *blen, size_t *claimed)
{
    size_t at = 0;
    for (int k = 0;; k++) {
        if (at + 2 > len)
            return 0;
        size_t n = ((size_t)s[at] << 8) | s[at + 1];
        if (k == i) {
            *claimed = n;
            *body = s + at + 2;
            *blen = len - at - 2 < n ? len - at - 2 : n;
            return 1;
        }
        at += 2 + n;
    }
}

/* The node name in a name packet ('n' old, 'N' new), or 0. */
static int name_from(const unsigned char *b, size_t n, size_t claimed, char *out, size_t size)
{
    const unsigned char *name;
    size_t len;
    if (n < claimed || n < 1)
        return 0;
    if (b[0] == 'n' && n >= 7) {
        name = b + 7;
        len = n - 7;
    } else if (b[0] == 'N' && n >= 15) {
        len = ((size_t)b[13] << 8) | b[14];
        name = b + 15;
        if (len > n - 15)
            return 0;
    } else {
        return 0;
    }
    if (len == 0 || len >= size)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (name[i] < 0x21 || name[i] > 0x7e)
            return 0;
    memcpy(out, name, len);
    out[len] = 0;
    return 1;
}

static int has_tag(const unsigned char *s, size_t len, char tag)
{
    const unsigned char *b;
    size_t n, claimed;
    for (int i = 0; packet(s, len, i, &b, &n, &claimed); i++)
        if (n >= 1 && n == claimed && b[0] == (unsigned char)tag)
            return 1;
    return 0;
}

static void classify_incoming(int err, handshake_report *r)
{
    const unsigned char *b;
    size_t n, claimed;
    if (rec.rx_len == 0) {
        r->kind = err == ETIMEDOUT ? HS_TIMEOUT : HS_CLOSED;
        return;
    }
    /* The first packet must be a name: 'n' or 'N', of a sane length. */
    if (rec.rx_len < 3 || !packet(rec.rx, rec.rx_len, 0, &b, &n, &claimed) ||
        (b[0] != 'n' && b[0] != 'N') || claimed < 7 || claimed > 512) {
        r->kind = rec.rx_len < 3 && err == ETIMEDOUT ? HS_TIMEOUT : HS_GARBAGE;
        return;
    }
    name_from(b, n, claimed, r->node, sizeof r->node);
    if (n < claimed) {
        r->kind = err == ETIMEDOUT ? HS_TIMEOUT : HS_CLOSED;
        return;
    }
    if (has_tag(rec.rx, rec.rx_len, 'r'))
        r->kind = HS_BAD_COOKIE; /* a complete reply whose digest ei refused */
    else
        r->kind = err == ETIMEDOUT ? HS_TIMEOUT : HS_CLOSED;
}

static void classify_outgoing(int err, handshake_report *r)
{
    const unsigned char *b;
    size_t n, claimed;
    if (rec.to_epmd || (!rec.active && rec.rx_len == 0 && rec.tx_len == 0) ||
        rec.connect_error == ECONNREFUSED) {
        r->kind = HS_NOT_RUNNING;
        return;
    }
    if (rec.connect_error) {
        r->kind = rec.connect_error == ETIMEDOUT ? HS_TIMEOUT : HS_OTHER;
        snprintf(r->detail, sizeof r->detail, "%s", strerror(rec.connect_error));
        return;
    }
    if (rec.rx_len == 0) {
        r->kind = err == ETIMEDOUT ? HS_TIMEOUT : HS_CLOSED;
        return;
    }
    if (!packet(rec.rx, rec.rx_len, 0, &b, &n, &claimed) || n < 1 || b[0] != 's' || claimed > 64) {
        r->kind = rec.rx_len < 3 && err == ETIMEDOUT ? HS_TIMEOUT : HS_GARBAGE;
        return;
    }
    if (n == claimed && !(n == 3 && memcmp(b + 1, "ok", 2) == 0) &&
        !(n == 16 && memcmp(b + 1, "ok_simultaneous", 15) == 0)) {
        r->kind = HS_REFUSED;
        snprintf(r->detail, sizeof r->detail, "%.*s", (int)(n - 1), (const char *)b + 1);
        return;
    }
    if (has_tag(rec.tx, rec.tx_len, 'r') && !has_tag(rec.rx, rec.rx_len, 'a') && err != ETIMEDOUT)
        r->kind = HS_BAD_COOKIE; /* the peer hung up on our digest */
    else
        r->kind = err == ETIMEDOUT ? HS_TIMEOUT : HS_CLOSED;
}

void handshake_diag_classify(int incoming, int err, handshake_report *r)
{
    memset(r, 0, sizeof *r);
    snprintf(r->peer, sizeof r->peer, "%s", rec.peer);
    if (incoming && !rec.active) {
        r->kind = err == ETIMEDOUT ? HS_IDLE : HS_OTHER;
    } else if (incoming) {
        classify_incoming(err, r);
    } else {
        classify_outgoing(err, r);
    }
    if (r->kind == HS_OTHER && !r->detail[0])
        snprintf(r->detail, sizeof r->detail, "%s", err ? strerror(err) : "unknown error");
    r->reason = handshake_failure_reason(r->kind);
    rec.active = 0;
}

const char *handshake_failure_reason(handshake_failure kind)
{
    static const char *const reasons[HS_N_FAILURES] = {
        "none",   "not_running", "bad_cookie", "garbage",   "timeout",    "refused",
        "closed", "other",       "tls",        "plaintext", "capability", "overflow",
    };
    return (unsigned)kind < HS_N_FAILURES ? reasons[kind] : "other";
}

const char *handshake_failure_text(handshake_failure kind)
{
    static const char *const texts[HS_N_FAILURES] = {
        "no connection",
        "node not running (not registered with epmd, or its port refused)",
        "wrong cookie (the challenge digest did not match)",
        "not a distribution handshake (garbage bytes)",
        "handshake timed out",
        "handshake refused by the peer",
        "the peer closed the connection during the handshake",
        "handshake failed",
        "TLS handshake failed",
        "plaintext connection refused: this node requires TLS distribution",
        "the peer lacks distribution capabilities this node needs",
        "too many handshakes pending: dropped the oldest",
    };
    return (unsigned)kind < HS_N_FAILURES ? texts[kind] : texts[HS_OTHER];
}
