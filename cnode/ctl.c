/*
 * ctl.c - `phnode ctl`: connects to a running phnode as a hidden node (ei,
 * the distribution cookie), asks it through GenServer calls to its `phnode`
 * service, its hub and net_kernel (docs/api.md), prints tables or JSON.
 * Every failure is one line on stderr and a non-zero exit status.
 */
#include "cnode/ctl.h"

#include "cnode/ctl_term.h"
#include "cnode/hub_config.h"
#include "ei_glue/handshake_diag.h"
#include "ei_glue/transport.h"
#include "ei_glue/node.h"
#include "ei_glue/socket_callbacks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

typedef struct ctl {
    const char *target;
    const char *cookie;
    const char *node_filter; /* children --node */
    long limit;              /* children --limit; -1: all */
    int json;
    unsigned timeout_ms;
    ei_cnode ec;
    int fd;
    char hub_id[PH_ATOM_BUF];
    tls_options tls; /* tls.certfile set: connect with TLS distribution */
} ctl;

static void usage(void)
{
    fprintf(stderr,
            "usage: phnode ctl [-n NODE] [--cookie COOKIE] [--json] [--timeout MS] COMMAND\n"
            "  -n, --target NODE    the phnode to talk to (default: $PHNODE_NODE)\n"
            "  --cookie COOKIE      default: $HOME/.erlang.cookie\n"
            "  --json               JSON output for scripts\n"
            "  --timeout MS         connect and reply timeout (default 5000)\n"
            "  --tls-certfile FILE --tls-keyfile FILE --tls-cacertfile FILE\n"
            "                       reach a node with TLS distribution (verify_peer)\n"
            "commands:\n"
            "  status                            node, uptime, processes, hub, children\n"
            "  members                           the hub cluster's members\n"
            "  children [--node N] [--limit K]   children cluster-wide (id, node, pid)\n"
            "  lookup ID                         one child's spec and pid\n"
            "  start-child JSON-SPEC             e.g. "
            "'{\"id\":\"c1\",\"start\":{\"module\":\"counter\"}}'\n"
            "  stop-child ID\n"
            "  ping\n"
            "exit status: 0 ok, 1 refused or unknown id, 2 bad command line, 3 node unreachable\n");
}

static int failf(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "phnode ctl: %s\n", msg);
    return status;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- connecting --------------------------------------------------------- */

static int connect_node(ctl *c)
{
    const char *at = strchr(c->target, '@');
    if (!at || at == c->target || !at[1] || strlen(c->target) >= MAXNODELEN)
        return failf(EXIT_USAGE, "'%s' is not a node name (NAME@HOST)", c->target);
    char host[192], alive[32], full[MAXNODELEN + 1];
    snprintf(host, sizeof host, "%.191s", at + 1);
    snprintf(alive, sizeof alive, "phctl_%ld", (long)getpid());
    snprintf(full, sizeof full, "%s@%s", alive, host);
    struct in_addr addr = {.s_addr = htonl(INADDR_LOOPBACK)};
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) == 0 && res) {
        addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
        freeaddrinfo(res);
    }
    char cookie[1024], err[512];
    if (!c->cookie) {
        if (node_default_cookie(cookie, sizeof cookie, err, sizeof err) != 0)
            return failf(EXIT_USAGE, "%s", err);
        c->cookie = cookie;
    }
    if (ei_init() != 0)
        return failf(EXIT_UNREACHABLE, "ei_init failed");
    unsigned creation = (unsigned)(time(NULL) & 0x7fffffff) | 4;
    if (ei_connect_xinit_ussi(&c->ec, host, alive, full, (Erl_IpAddr)&addr, c->cookie, creation,
                              &tcp_socket_callbacks, sizeof tcp_socket_callbacks, NULL) < 0)
        return failf(EXIT_USAGE, "cannot set up a local node named %s", full);
    handshake_diag_reset();
    c->fd = ei_connect_tmo(&c->ec, (char *)c->target, c->timeout_ms);
    if (c->fd < 0) {
        handshake_report r;
        handshake_diag_classify(0, erl_errno, &r);
        const char *tls = socket_callbacks_tls_error();
        return failf(EXIT_UNREACHABLE, "cannot connect to %s: %s%s%s%s%s", c->target,
                     handshake_failure_text(r.kind), r.detail[0] ? ": " : "", r.detail,
                     tls[0] ? "; TLS: " : "", tls);
    }
    return EXIT_OK;
}

/* --- calling ------------------------------------------------------------ */

/* GenServer.call({name, target}, request): the reply term is copied into
 * reply (a fresh buffer the caller frees). */
static int call(ctl *c, const char *name, const ph_buf *request, ph_buf *reply)
{
    erlang_ref ref;
    ph_buf msg, tag;
    if (ph_buf_init(reply) != 0)
        return failf(EXIT_UNREACHABLE, "out of memory");
    if (ei_make_ref(&c->ec, &ref) != 0 || ph_buf_init_versioned(&msg) != 0)
        return failf(EXIT_UNREACHABLE, "out of memory");
    if (ph_buf_init(&tag) != 0 || ph_build(&tag, "~r", &ref) != 0 ||
        ph_build(&msg, "{'$gen_call', {~p, ~r}, ~t}", ei_self(&c->ec), &ref,
                 ph_buf_term(request)) != 0) {
        ph_buf_free(&msg);
        ph_buf_free(&tag);
        return failf(EXIT_UNREACHABLE, "cannot encode the request");
    }
    int rc = ei_reg_send_tmo(&c->ec, c->fd, (char *)name, msg.buff, msg.index, c->timeout_ms);
    ph_buf_free(&msg);
    if (rc < 0) {
        ph_buf_free(&tag);
        return failf(EXIT_UNREACHABLE, "%s closed the connection", c->target);
    }
    long deadline = now_ms() + c->timeout_ms;
    ph_buf in;
    if (ph_buf_init(&in) != 0) {
        ph_buf_free(&tag);
        return failf(EXIT_UNREACHABLE, "out of memory");
    }
    int status = -1;
    while (status < 0) {
        long left = deadline - now_ms();
        if (left <= 0) {
            status = failf(EXIT_UNREACHABLE, "no reply from %s on %s within %u ms", name, c->target,
                           c->timeout_ms);
            break;
        }
        erlang_msg m;
        in.index = 0;
        int got = ei_xreceive_msg_tmo(c->fd, &m, &in, (unsigned)left);
        if (got == ERL_TICK)
            continue;
        if (got == ERL_ERROR) {
            if (erl_errno == ETIMEDOUT)
                continue; /* the deadline check reports it */
            status = failf(EXIT_UNREACHABLE, "%s closed the connection", c->target);
            break;
        }
        if (m.msgtype != ERL_SEND && m.msgtype != ERL_REG_SEND)
            continue;
        ph_term t = ph_term_from_external(in.buff, in.index), r, value;
        if (t.buf && ph_match(t, "{~t, ~t}", &r, &value) == 1 &&
            ph_term_equal(r, ph_buf_term(&tag))) {
            if (ph_buf_append_term(reply, value) != 0)
                status = failf(EXIT_UNREACHABLE, "out of memory");
            else
                status = EXIT_OK;
        }
    }
    ph_buf_free(&in);
    ph_buf_free(&tag);
    if (status != EXIT_OK)
        ph_buf_free(reply);
    return status;
}

/* call() with a request built from a pattern. */
static int callf(ctl *c, const char *name, ph_buf *reply, const char *fmt, ...)
{
    ph_buf req;
    if (ph_buf_init(&req) != 0)
        return failf(EXIT_UNREACHABLE, "out of memory");
    va_list ap;
    va_start(ap, fmt);
    int rc = ph_vbuild(&req, fmt, ap);
    va_end(ap);
    if (rc != 0) {
        ph_buf_free(&req);
        return failf(EXIT_USAGE, "cannot encode the request");
    }
    rc = call(c, name, &req, reply);
    ph_buf_free(&req);
    return rc;
}

/* The hub's registered name, from the phnode service's status. */
static int node_status(ctl *c, ph_buf *status)
{
    int rc = callf(c, "phnode", status, "status");
    if (rc != EXIT_OK)
        return rc;
    ph_term hub;
    if (ph_map_get_atom(ph_buf_term(status), "hub_id", &hub) != 1 ||
        ph_match(hub, "~a", c->hub_id) != 1) {
        ph_buf_free(status);
        return failf(EXIT_REFUSED, "%s does not answer status (not a phnode of this version?)",
                     c->target);
    }
    return EXIT_OK;
}

/* node_status for the hub id alone: commands that talk to the hub. */
static int learn_hub_id(ctl *c)
{
    ph_buf st;
    int rc = node_status(c, &st);
    if (rc == EXIT_OK)
        ph_buf_free(&st);
    return rc;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s)
        printf("%s\n", s);
    free(s);
}

/* --- commands ----------------------------------------------------------- */

static int cmd_ping(ctl *c)
{
    long t0 = now_ms();
    ph_buf reply;
    int rc = callf(c, "net_kernel", &reply, "{is_auth, ~a}", ei_thisnodename(&c->ec));
    if (rc != EXIT_OK)
        return rc;
    long ms = now_ms() - t0;
    int yes = ph_match(ph_buf_term(&reply), "yes") == 1;
    ph_buf_free(&reply);
    if (!yes)
        return failf(EXIT_REFUSED, "%s answered the ping with something else than yes", c->target);
    if (c->json) {
        json_t *j =
            json_pack("{s:s, s:s, s:I}", "node", c->target, "result", "pong", "ms", (json_int_t)ms);
        print_json(j);
        json_decref(j);
    } else {
        printf("pong from %s in %ld ms\n", c->target, ms);
    }
    return EXIT_OK;
}

static long list_length(ph_term t)
{
    ph_iter it;
    return ph_iter_begin(&it, t);
}

static void format_uptime(long ms, char *out, size_t size)
{
    long s = ms / 1000;
    snprintf(out, size, "%ldd %02ldh %02ldm %02lds", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60);
}

static int cmd_status(ctl *c)
{
    ph_buf st, members, local, count, parted;
    int rc = node_status(c, &st);
    if (rc != EXIT_OK)
        return rc;
    json_t *j = ctl_term_to_json(ph_buf_term(&st));
    ph_buf_free(&st);
    if ((rc = callf(c, c->hub_id, &members, "{nodes, [include_local]}")) != EXIT_OK)
        goto out;
    if ((rc = callf(c, c->hub_id, &local, "{process_list, local}")) != EXIT_OK) {
        ph_buf_free(&members);
        goto out;
    }
    if ((rc = callf(c, c->hub_id, &count, "registry_count")) != EXIT_OK) {
        ph_buf_free(&members);
        ph_buf_free(&local);
        goto out;
    }
    if ((rc = callf(c, c->hub_id, &parted, "is_partitioned")) != EXIT_OK) {
        ph_buf_free(&members);
        ph_buf_free(&local);
        ph_buf_free(&count);
        goto out;
    }
    json_object_set_new(j, "node", json_string(c->target));
    json_t *mj = ctl_term_to_json(ph_buf_term(&members));
    json_object_set_new(j, "members", mj);
    json_object_set_new(j, "children_local", json_integer(list_length(ph_buf_term(&local))));
    long total = 0;
    if (ph_match(ph_buf_term(&count), "~i", &total) != 1)
        total = -1;
    json_object_set_new(j, "children_cluster", json_integer(total));
    json_object_set_new(j, "partitioned",
                        json_boolean(ph_match(ph_buf_term(&parted), "true") == 1));
    ph_buf_free(&members);
    ph_buf_free(&local);
    ph_buf_free(&count);
    ph_buf_free(&parted);
    if (c->json) {
        print_json(j);
    } else {
        char up[64];
        format_uptime((long)json_integer_value(json_object_get(j, "uptime_ms")), up, sizeof up);
        printf("%-16s %s\n", "node", c->target);
        printf("%-16s %s\n", "version", json_string_value(json_object_get(j, "version")));
        printf("%-16s %s\n", "uptime", up);
        printf("%-16s %lld\n", "creation",
               (long long)json_integer_value(json_object_get(j, "creation")));
        printf("%-16s %lld\n", "schedulers",
               (long long)json_integer_value(json_object_get(j, "schedulers")));
        printf("%-16s %lld\n", "connections",
               (long long)json_integer_value(json_object_get(j, "connections")));
        printf("%-16s %lld\n", "processes",
               (long long)json_integer_value(json_object_get(j, "processes")));
        printf("%-16s %.1f MiB\n", "memory",
               (double)json_integer_value(json_object_get(j, "memory_bytes")) / 1048576.0);
        printf("%-16s %s\n", "hub id", c->hub_id);
        printf("%-16s %zu:", "members", json_array_size(mj));
        size_t i;
        json_t *e;
        json_array_foreach(mj, i, e) printf(" %s", json_is_string(e) ? json_string_value(e) : "?");
        printf("\n");
        printf("%-16s %lld\n", "children here",
               (long long)json_integer_value(json_object_get(j, "children_local")));
        printf("%-16s %ld\n", "children total", total);
        printf("%-16s %s\n", "partitioned",
               json_is_true(json_object_get(j, "partitioned")) ? "yes" : "no");
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(j, "strategies"), k, v)
        {
            char label[64];
            snprintf(label, sizeof label, "strategy %s", k);
            printf("%-28s %s\n", label, json_is_string(v) ? json_string_value(v) : "?");
        }
    }
out:
    json_decref(j);
    return rc;
}

static int cmd_members(ctl *c)
{
    ph_buf members;
    int rc = learn_hub_id(c);
    if (rc != EXIT_OK)
        return rc;
    if ((rc = callf(c, c->hub_id, &members, "{nodes, [include_local]}")) != EXIT_OK)
        return rc;
    json_t *mj = ctl_term_to_json(ph_buf_term(&members));
    ph_buf_free(&members);
    if (c->json) {
        json_t *j =
            json_pack("{s:s, s:s, s:O}", "node", c->target, "hub_id", c->hub_id, "members", mj);
        print_json(j);
        json_decref(j);
    } else {
        printf("%-40s %s\n", "MEMBER", "");
        size_t i;
        json_t *e;
        json_array_foreach(mj, i, e)
        {
            const char *m = json_is_string(e) ? json_string_value(e) : "?";
            printf("%-40s %s\n", m, strcmp(m, c->target) == 0 ? "(this node)" : "");
        }
        printf("%zu member(s) of hub %s\n", json_array_size(mj), c->hub_id);
    }
    json_decref(mj);
    return EXIT_OK;
}

static int cmp_rows(const void *a, const void *b)
{
    json_t *const *x = a, *const *y = b;
    int r = strcmp(json_string_value(json_object_get(*x, "id")),
                   json_string_value(json_object_get(*y, "id")));
    return r ? r
             : strcmp(json_string_value(json_object_get(*x, "node")),
                      json_string_value(json_object_get(*y, "node")));
}

static int cmd_children(ctl *c)
{
    ph_buf list;
    int rc = learn_hub_id(c);
    if (rc != EXIT_OK)
        return rc;
    if ((rc = callf(c, c->hub_id, &list, "{process_list, global}")) != EXIT_OK)
        return rc;
    ph_iter it, pit;
    ph_term e, cid, pids, pair, node, pid;
    long n = ph_iter_begin(&it, ph_buf_term(&list));
    size_t cap = n > 0 ? (size_t)n + 1 : 1, count = 0;
    json_t **rows = calloc(cap, sizeof *rows);
    if (!rows || n < 0) {
        free(rows);
        ph_buf_free(&list);
        return failf(EXIT_REFUSED, "unexpected reply to process_list");
    }
    while (ph_iter_next(&it, &e) > 0) {
        if (ph_match(e, "{~t, ~t}", &cid, &pids) != 1 || ph_iter_begin(&pit, pids) < 0)
            continue;
        while (ph_iter_next(&pit, &pair) > 0) {
            if (ph_match(pair, "{~t, ~t}", &node, &pid) != 1)
                continue;
            char id_text[512], node_text[PH_ATOM_BUF], pid_text[512];
            ctl_term_text(cid, id_text, sizeof id_text);
            ctl_term_text(node, node_text, sizeof node_text);
            ctl_term_text(pid, pid_text, sizeof pid_text);
            if (c->node_filter && strcmp(c->node_filter, node_text) != 0)
                continue;
            if (count == cap) {
                json_t **more = realloc(rows, cap * 2 * sizeof *rows);
                if (!more)
                    break;
                rows = more;
                cap *= 2;
            }
            rows[count++] =
                json_pack("{s:s, s:s, s:s}", "id", id_text, "node", node_text, "pid", pid_text);
        }
    }
    ph_buf_free(&list);
    qsort(rows, count, sizeof *rows, cmp_rows);
    size_t shown = c->limit >= 0 && (size_t)c->limit < count ? (size_t)c->limit : count;
    if (c->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < shown; i++)
            json_array_append(arr, rows[i]);
        json_t *j = json_pack("{s:o, s:I}", "children", arr, "total", (json_int_t)count);
        print_json(j);
        json_decref(j);
    } else {
        printf("%-32s %-32s %s\n", "ID", "NODE", "PID");
        for (size_t i = 0; i < shown; i++)
            printf("%-32s %-32s %s\n", json_string_value(json_object_get(rows[i], "id")),
                   json_string_value(json_object_get(rows[i], "node")),
                   json_string_value(json_object_get(rows[i], "pid")));
        if (shown < count)
            printf("%zu of %zu children shown (--limit)\n", shown, count);
        else
            printf("%zu children\n", count);
    }
    for (size_t i = 0; i < count; i++)
        json_decref(rows[i]);
    free(rows);
    return EXIT_OK;
}

/* Finds the child: its id as a binary first, then as an atom. The lookup
 * reply ({Spec, [{Node, Pid}]}) is left in found; the encoded id in idbuf. */
static int find_child(ctl *c, const char *id, ph_buf *idbuf, ph_buf *found)
{
    for (int as_atom = 0; as_atom < 2; as_atom++) {
        if (as_atom && strlen(id) >= PH_ATOM_BUF)
            break;
        if (ph_buf_init(idbuf) != 0 ||
            (as_atom ? ph_build(idbuf, "~a", id) : ph_build(idbuf, "~s", id)) != 0) {
            ph_buf_free(idbuf);
            return failf(EXIT_USAGE, "cannot encode the id '%s'", id);
        }
        int rc = callf(c, c->hub_id, found, "{child_lookup, ~t}", ph_buf_term(idbuf));
        if (rc != EXIT_OK) {
            ph_buf_free(idbuf);
            return rc;
        }
        if (ph_match(ph_buf_term(found), "nil") != 1)
            return EXIT_OK;
        ph_buf_free(found);
        ph_buf_free(idbuf);
    }
    return failf(EXIT_REFUSED, "unknown child id '%s' in hub %s on %s", id, c->hub_id, c->target);
}

static json_t *placements(ph_term pids)
{
    json_t *arr = json_array();
    ph_iter it;
    ph_term pair, node, pid;
    if (ph_iter_begin(&it, pids) < 0)
        return arr;
    while (ph_iter_next(&it, &pair) > 0)
        if (ph_match(pair, "{~t, ~t}", &node, &pid) == 1) {
            char n[PH_ATOM_BUF], p[512];
            ctl_term_text(node, n, sizeof n);
            ctl_term_text(pid, p, sizeof p);
            json_array_append_new(arr, json_pack("{s:s, s:s}", "node", n, "pid", p));
        }
    return arr;
}

static int cmd_lookup(ctl *c, const char *id)
{
    ph_buf idbuf, found;
    int rc = learn_hub_id(c);
    if (rc != EXIT_OK)
        return rc;
    if ((rc = find_child(c, id, &idbuf, &found)) != EXIT_OK)
        return rc;
    ph_term spec, pids;
    if (ph_match(ph_buf_term(&found), "{~t, ~t}", &spec, &pids) != 1) {
        ph_buf_free(&found);
        ph_buf_free(&idbuf);
        return failf(EXIT_REFUSED, "unexpected reply to child_lookup");
    }
    json_t *j = json_pack("{s:s, s:o, s:o}", "id", id, "spec", ctl_term_to_json(spec), "pids",
                          placements(pids));
    if (c->json) {
        print_json(j);
    } else {
        char *spec_text = json_dumps(json_object_get(j, "spec"), JSON_COMPACT);
        printf("%-8s %s\n", "id", id);
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "pids"), i, e)
            printf("%-8s %s on %s\n", "pid", json_string_value(json_object_get(e, "pid")),
                   json_string_value(json_object_get(e, "node")));
        if (json_array_size(json_object_get(j, "pids")) == 0)
            printf("%-8s %s\n", "pid", "(not running: waiting for a restart)");
        printf("%-8s %s\n", "spec", spec_text ? spec_text : "?");
        free(spec_text);
    }
    json_decref(j);
    ph_buf_free(&found);
    ph_buf_free(&idbuf);
    return EXIT_OK;
}

/* Per-child errors of a start or stop result: [{Cid, Node, Reason}]. */
static int report_errors(ph_term errors, const char *what, const char *id)
{
    ph_iter it;
    ph_term e, cid, node, reason;
    if (ph_iter_begin(&it, errors) <= 0)
        return 0;
    while (ph_iter_next(&it, &e) > 0) {
        if (ph_match(e, "{~t, ~t, ~t}", &cid, &node, &reason) != 1)
            continue;
        char n[PH_ATOM_BUF], r[1024];
        ctl_term_text(node, n, sizeof n);
        ctl_term_text(reason, r, sizeof r);
        if (strcmp(r, "not_found") == 0)
            failf(EXIT_REFUSED, "unknown child id '%s'", id);
        else
            failf(EXIT_REFUSED, "%s %s failed on %s: %s", what, id, n, r);
        return 1;
    }
    return 0;
}

static int cmd_start_child(ctl *c, const char *spec_json)
{
    json_error_t jerr;
    json_t *spec = json_loads(spec_json, 0, &jerr);
    if (!spec)
        return failf(EXIT_USAGE, "start-child: the spec is not JSON: %s (column %d)", jerr.text,
                     jerr.column);
    ph_buf specbuf;
    char err[512];
    if (ph_buf_init(&specbuf) != 0 ||
        hub_config_encode_child_spec(&specbuf, spec, err, sizeof err) != 0) {
        ph_buf_free(&specbuf);
        json_decref(spec);
        return failf(EXIT_USAGE, "start-child: %s", err);
    }
    char id[512];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(spec, "id")));
    json_decref(spec);
    ph_buf reply;
    int rc = learn_hub_id(c);
    if (rc != EXIT_OK) {
        ph_buf_free(&specbuf);
        return rc;
    }
    rc = callf(c, c->hub_id, &reply, "{start_child, ~t, [{awaitable, true}]}",
               ph_buf_term(&specbuf));
    ph_buf_free(&specbuf);
    if (rc != EXIT_OK)
        return rc;
    ph_term result, reason, started, errors;
    rc = EXIT_OK;
    if (ph_match(ph_buf_term(&reply), "{error, ~t}", &reason) == 1) {
        char r[1024];
        ctl_term_text(reason, r, sizeof r);
        ph_term ids;
        if (ph_match(reason, "{already_started, ~t}", &ids) == 1)
            rc = failf(EXIT_REFUSED, "start-child %s: already started", id);
        else
            rc = failf(EXIT_REFUSED, "start-child %s refused: %s", id, r);
    } else if (ph_match(ph_buf_term(&reply), "{ok, ~t}", &result) != 1 ||
               ph_map_get_atom(result, "started", &started) != 1 ||
               ph_map_get_atom(result, "errors", &errors) != 1) {
        rc = failf(EXIT_REFUSED, "unexpected reply to start_child");
    } else if (report_errors(errors, "start-child", id)) {
        rc = EXIT_REFUSED;
    } else {
        ph_iter it;
        ph_term e, cid, pids;
        json_t *where = json_array();
        if (ph_iter_begin(&it, started) > 0 && ph_iter_next(&it, &e) > 0 &&
            ph_match(e, "{~t, ~t}", &cid, &pids) == 1) {
            json_decref(where);
            where = placements(pids);
        }
        if (c->json) {
            json_t *j = json_pack("{s:s, s:s, s:O}", "id", id, "status", "started", "pids", where);
            print_json(j);
            json_decref(j);
        } else {
            size_t i;
            json_t *p;
            json_array_foreach(where, i, p) printf("started %s on %s as %s\n", id,
                                                   json_string_value(json_object_get(p, "node")),
                                                   json_string_value(json_object_get(p, "pid")));
            if (json_array_size(where) == 0)
                printf("started %s\n", id);
        }
        json_decref(where);
    }
    ph_buf_free(&reply);
    return rc;
}

static int cmd_stop_child(ctl *c, const char *id)
{
    ph_buf idbuf, found, reply;
    int rc = learn_hub_id(c);
    if (rc != EXIT_OK)
        return rc;
    if ((rc = find_child(c, id, &idbuf, &found)) != EXIT_OK)
        return rc;
    ph_buf_free(&found);
    rc = callf(c, c->hub_id, &reply, "{stop_child, ~t, [{awaitable, true}]}", ph_buf_term(&idbuf));
    ph_buf_free(&idbuf);
    if (rc != EXIT_OK)
        return rc;
    ph_term result, stopped, errors;
    if (ph_match(ph_buf_term(&reply), "{ok, ~t}", &result) != 1 ||
        ph_map_get_atom(result, "stopped", &stopped) != 1 ||
        ph_map_get_atom(result, "errors", &errors) != 1) {
        char r[1024];
        ctl_term_text(ph_buf_term(&reply), r, sizeof r);
        ph_buf_free(&reply);
        return failf(EXIT_REFUSED, "stop-child %s refused: %s", id, r);
    }
    if (report_errors(errors, "stop-child", id)) {
        ph_buf_free(&reply);
        return EXIT_REFUSED;
    }
    json_t *sj = ctl_term_to_json(stopped);
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s}", "id", id, "status", "stopped");
        print_json(j);
        json_decref(j);
    } else {
        printf("stopped %s\n", id);
    }
    json_decref(sj);
    ph_buf_free(&reply);
    return EXIT_OK;
}

/* --- command line ------------------------------------------------------- */

static int parse_number(const char *flag, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return failf(
            EXIT_USAGE,
            "%s must be an integer between %ld and %ld, got '%s' (see 'phnode ctl --help')", flag,
            min, max, text);
    *out = v;
    return 0;
}

int ctl_main(int argc, char **argv)
{
    ctl c = {.limit = -1, .timeout_ms = 5000, .fd = -1};
    c.target = getenv("PHNODE_NODE");
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = !strcmp(a, "-n") || !strcmp(a, "--target") || !strcmp(a, "--cookie") ||
                    !strcmp(a, "--timeout") || !strcmp(a, "--node") || !strcmp(a, "--limit") ||
                    !strcmp(a, "--tls-certfile") || !strcmp(a, "--tls-keyfile") ||
                    !strcmp(a, "--tls-cacertfile");
        if (takes && !next)
            return failf(EXIT_USAGE, "%s needs a value (see 'phnode ctl --help')", a);
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return EXIT_OK;
        } else if (!strcmp(a, "--json")) {
            c.json = 1;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--target")) {
            c.target = next;
        } else if (!strcmp(a, "--cookie")) {
            c.cookie = next;
        } else if (!strcmp(a, "--node")) {
            c.node_filter = next;
        } else if (!strcmp(a, "--tls-certfile")) {
            c.tls.certfile = next;
        } else if (!strcmp(a, "--tls-keyfile")) {
            c.tls.keyfile = next;
        } else if (!strcmp(a, "--tls-cacertfile")) {
            c.tls.cacertfile = next;
        } else if (!strcmp(a, "--timeout") || !strcmp(a, "--limit")) {
            long v = 0;
            if (parse_number(a, next, a[2] == 't' ? 1 : 0, a[2] == 't' ? 3600000 : 1L << 30, &v))
                return EXIT_USAGE;
            if (a[2] == 't')
                c.timeout_ms = (unsigned)v;
            else
                c.limit = v;
        } else if (a[0] == '-' && a[1]) {
            return failf(EXIT_USAGE, "unknown option '%s' (see 'phnode ctl --help')", a);
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            return failf(EXIT_USAGE, "unexpected argument '%s' (see 'phnode ctl --help')", a);
        }
        i += takes;
    }
    if (n_pos == 0)
        return failf(EXIT_USAGE, "no command given (see 'phnode ctl --help')");
    const char *cmd = pos[0];
    static const char *const one_arg[] = {"lookup", "start-child", "stop-child"};
    static const char *const no_arg[] = {"status", "members", "children", "ping"};
    int wants = -1;
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(cmd, one_arg[i]))
            wants = 1;
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(cmd, no_arg[i]))
            wants = 0;
    if (wants < 0)
        return failf(EXIT_USAGE, "unknown command '%s' (see 'phnode ctl --help')", cmd);
    if (n_pos - 1 != wants)
        return failf(EXIT_USAGE, "%s takes %s (see 'phnode ctl --help')", cmd,
                     wants ? (strcmp(cmd, "start-child") ? "one ID" : "one JSON spec")
                           : "no argument");
    if ((c.node_filter || c.limit >= 0) && strcmp(cmd, "children") != 0)
        return failf(EXIT_USAGE, "--node and --limit go with children only");
    if (!c.target || !*c.target)
        return failf(EXIT_USAGE, "which node? give -n NODE or set PHNODE_NODE");
    if (!strcmp(cmd, "start-child")) {
        /* Check the spec before connecting: a typo is not the node's fault. */
        json_error_t jerr;
        json_t *spec = json_loads(pos[1], 0, &jerr);
        if (!spec)
            return failf(EXIT_USAGE, "start-child: the spec is not JSON: %s (column %d)", jerr.text,
                         jerr.column);
        json_decref(spec);
    }
    if (c.tls.certfile) {
        char err[512];
        c.tls.verify_peer = 1;
        if (transport_tls_init(&c.tls, err, sizeof err) != 0)
            return failf(EXIT_USAGE, "%s", err);
        socket_callbacks_enable_tls();
    }
    int rc = connect_node(&c);
    if (c.tls.certfile && rc != EXIT_OK)
        transport_tls_shutdown();
    if (rc != EXIT_OK)
        return rc;
    if (!strcmp(cmd, "ping"))
        rc = cmd_ping(&c);
    else if (!strcmp(cmd, "status"))
        rc = cmd_status(&c);
    else if (!strcmp(cmd, "members"))
        rc = cmd_members(&c);
    else if (!strcmp(cmd, "children"))
        rc = cmd_children(&c);
    else if (!strcmp(cmd, "lookup"))
        rc = cmd_lookup(&c, pos[1]);
    else if (!strcmp(cmd, "start-child"))
        rc = cmd_start_child(&c, pos[1]);
    else
        rc = cmd_stop_child(&c, pos[1]);
    ei_close_connection(c.fd);
    if (c.tls.certfile)
        transport_tls_shutdown();
    return rc;
}
