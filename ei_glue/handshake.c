/*
 * handshake.c - the distribution handshake, done by ei on helper threads
 * because ei_accept/ei_connect block: one acceptor thread for incoming
 * connections and one short-lived thread per outgoing connection attempt.
 * A finished handshake hands its socket to connection_adopt; a failed one
 * is classified (handshake_diag.h), counted and logged with the peer.
 */
#include "ei_glue/connection.h"
#include "ei_glue/handshake_diag.h"
#include "hub/runtime/atoms.h"
#include "hub/runtime/log.h"
#include "hub/runtime/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_TIMEOUT_MS 5000
#define CONNECT_ATTEMPTS 3
#define RETRY_DELAY_US (200 * 1000)

static ei_cnode *cnode;
static int listen_fd = -1;
static unsigned connect_timeout;
static pthread_t acceptor;
static _Atomic int accepting;
static _Atomic int connectors; /* running connector threads */

#define HS_HELP "Distribution handshakes that failed, by reason."
#define HS_NAME "phnode_dist_handshake_failures_total"
METRIC_COUNTER(m_hs_not_running, HS_NAME, "reason=\"not_running\"", HS_HELP);
METRIC_COUNTER(m_hs_bad_cookie, HS_NAME, "reason=\"bad_cookie\"", HS_HELP);
METRIC_COUNTER(m_hs_garbage, HS_NAME, "reason=\"garbage\"", HS_HELP);
METRIC_COUNTER(m_hs_timeout, HS_NAME, "reason=\"timeout\"", HS_HELP);
METRIC_COUNTER(m_hs_refused, HS_NAME, "reason=\"refused\"", HS_HELP);
METRIC_COUNTER(m_hs_closed, HS_NAME, "reason=\"closed\"", HS_HELP);
METRIC_COUNTER(m_hs_other, HS_NAME, "reason=\"other\"", HS_HELP);

static void count_failure(handshake_failure kind)
{
    static metric *const by_kind[HS_N_FAILURES] = {
        [HS_NOT_RUNNING] = &m_hs_not_running,
        [HS_BAD_COOKIE] = &m_hs_bad_cookie,
        [HS_GARBAGE] = &m_hs_garbage,
        [HS_TIMEOUT] = &m_hs_timeout,
        [HS_REFUSED] = &m_hs_refused,
        [HS_CLOSED] = &m_hs_closed,
        [HS_OTHER] = &m_hs_other,
    };
    if ((unsigned)kind < HS_N_FAILURES && by_kind[kind])
        metric_inc(by_kind[kind]);
}

static void log_failure(log_level level, const char *direction, const handshake_report *r,
                        const char *suffix)
{
    log_field f[] = {{"peer", r->node}, {"peer_addr", r->peer}, {"reason", r->reason}};
    log_write_fields(level, "handshake", f, 3, "%s handshake failed: %s%s%s%s", direction,
                     handshake_failure_text(r->kind), r->detail[0] ? ": " : "", r->detail, suffix);
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    while (atomic_load(&accepting)) {
        ErlConnect peer;
        handshake_diag_reset();
        int fd = ei_accept_tmo(cnode, listen_fd, &peer, ACCEPT_TIMEOUT_MS);
        if (!atomic_load(&accepting)) {
            if (fd >= 0)
                ei_close_connection(fd);
            break;
        }
        if (fd < 0) {
            /* Timeouts with nothing accepted happen on every idle period;
             * anything else is a failed handshake (a wrong cookie, garbage
             * such as a port scanner's, a peer that went silent). */
            handshake_report r;
            handshake_diag_classify(1, erl_errno, &r);
            if (r.kind != HS_IDLE) {
                count_failure(r.kind);
                log_failure(LOG_WARN, "incoming", &r, "");
            }
            continue;
        }
        uint32_t node = atom_intern(peer.nodename);
        if (node == ATOM_NONE) {
            ei_close_connection(fd);
            continue;
        }
        connection_adopt(fd, node, 1);
    }
    return NULL;
}

static void *connector_main(void *arg)
{
    uint32_t node = (uint32_t)(uintptr_t)arg;
    char name[MAXATOMLEN_UTF8];
    snprintf(name, sizeof name, "%s", atom_text(node));
    /* A refused handshake is often the peer dialing us at the same moment
     * (it answers "nok" and its own connection wins): give that connection
     * time to arrive before dropping the messages that wait. */
    /* A node that is not running (yet: a cluster starting up) or that
     * loses a simultaneous connect ("nok") is routine: those attempts are
     * logged at debug level; the others are warnings. */
    int fd = -1, routine = 1;
    for (int attempt = 0; attempt < CONNECT_ATTEMPTS && fd < 0; attempt++) {
        if (attempt > 0) {
            usleep(RETRY_DELAY_US);
            if (connection_is_up(node) || !atomic_load(&accepting))
                break;
        }
        handshake_diag_reset();
        fd = ei_connect_tmo(cnode, name, connect_timeout);
        if (fd < 0) {
            handshake_report r;
            handshake_diag_classify(0, erl_errno, &r);
            snprintf(r.node, sizeof r.node, "%.255s", name);
            count_failure(r.kind);
            int quiet =
                r.kind == HS_NOT_RUNNING || (r.kind == HS_REFUSED && strcmp(r.detail, "nok") == 0);
            routine &= quiet;
            char suffix[32];
            snprintf(suffix, sizeof suffix, " (attempt %d of %d)", attempt + 1, CONNECT_ATTEMPTS);
            if (!quiet)
                log_failure(LOG_WARN, "outgoing", &r, suffix);
            else if (log_enabled(LOG_DEBUG))
                log_failure(LOG_DEBUG, "outgoing", &r, suffix);
        }
    }
    if (fd >= 0)
        connection_adopt(fd, node, 0);
    else
        connection_connect_failed(node, routine);
    atomic_fetch_sub(&connectors, 1);
    return NULL;
}

int handshake_connect_async(uint32_t node)
{
    if (!cnode)
        return -1;
    if (strchr(atom_text(node), '@') == NULL) {
        LOG_W("handshake", "not a node name: '%s'", atom_text(node));
        return -1;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&connectors, 1);
    int rc = pthread_create(&t, &attr, connector_main, (void *)(uintptr_t)node);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&connectors, 1);
        LOG_E("handshake", "cannot start a connector thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

int handshake_start(ei_cnode *ec, int lfd, unsigned connect_timeout_ms)
{
    cnode = ec;
    listen_fd = lfd;
    connect_timeout = connect_timeout_ms;
    atomic_store(&accepting, 1);
    if (pthread_create(&acceptor, NULL, acceptor_main, NULL) != 0) {
        atomic_store(&accepting, 0);
        return -1;
    }
    return 0;
}

void handshake_stop(void)
{
    if (atomic_exchange(&accepting, 0)) {
        shutdown(listen_fd, SHUT_RDWR); /* wakes the acceptor's poll */
        pthread_join(acceptor, NULL);
    }
    /* Connector threads finish within their timeout; wait for them so none
     * adopts a connection after the I/O thread is gone. */
    for (int i = 0; i < 1000 && atomic_load(&connectors) > 0; i++)
        usleep(10000);
}
