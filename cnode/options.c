/* options.c - command line and JSON configuration; see docs/configuration.md. */
#include "cnode/options.h"

#include "cnode/hub_config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void options_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s --name NAME@HOST [--cookie COOKIE] [--config FILE.json]\n"
            "          [--worker-lib FILE.so]... [--join NODE]... [--schedulers N]\n"
            "          [--net-ticktime SECONDS] [--port PORT] [--max-processes N]\n"
            "          [--busy-poll-us MICROSECONDS] [--busy-poll-mode cpu|latency]\n"
            "          [--no-beam-discovery]\n"
            "          [--log-level error|warning|info|debug] [--log-format text|json]\n"
            "          [--metrics-port PORT] [--metrics-bind ADDRESS] [--max-frame-bytes N]\n"
            "          [--handshake-timeout-ms MS] [--max-pending-handshakes N]\n"
            "          [--tls-certfile FILE [--tls-keyfile FILE] [--tls-cacertfile FILE]\n"
            "           [--tls-verify verify_peer|verify_none] [--tls-fail-if-no-peer-cert BOOL]\n"
            "           [--tls-verify-server-name BOOL]]\n"
            "       %s ctl [--node NODE] [--cookie COOKIE] [--json] COMMAND [ARGS]\n"
            "          (COMMAND: status, members, children, lookup, start-child, stop-child,\n"
            "           ping; '%s ctl --help' for details)\n"
            "Runs a ProcessHub C node. See docs/configuration.md and docs/operations.md.\n",
            prog, prog, prog);
}

void options_usage_hint(const char *prog, const char *err)
{
    fprintf(stderr, "phnode: %s (see '%s --help' for usage)\n", err, prog);
}

static int parse_uint(const char *flag, const char *text, unsigned min, unsigned max, unsigned *out,
                      char *err, size_t err_size)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max || text[0] == '-') {
        snprintf(err, err_size, "%s must be an integer between %u and %u, got '%s'", flag, min, max,
                 text);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int add_list(const char **list, int *n, const char *value, const char *what, char *err,
                    size_t err_size)
{
    if (*n == OPT_MAX_LIST) {
        snprintf(err, err_size, "too many %s (at most %d)", what, OPT_MAX_LIST);
        return -1;
    }
    list[(*n)++] = value;
    return 0;
}

static int config_uint(json_t *root, const char *key, unsigned min, unsigned max, unsigned *out,
                       int already_set, char *err, size_t err_size)
{
    json_t *v = json_object_get(root, key);
    if (!v || already_set)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max) {
        snprintf(err, err_size, "config field \"%s\" must be an integer between %u and %u", key,
                 min, max);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int config_strings(json_t *root, const char *key, const char **list, int *n, char *err,
                          size_t err_size)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, err_size, "config field \"%s\" must be an array of strings", key);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            snprintf(err, err_size, "config field \"%s\"[%zu] must be a string", key, i);
            return -1;
        }
        if (add_list(list, n, json_string_value(e), key, err, err_size) != 0)
            return -1;
    }
    return 0;
}

static const char *const known_fields[] = {"net_ticktime",
                                           "schedulers",
                                           "worker_libs",
                                           "join",
                                           "log_level",
                                           "port",
                                           "max_processes",
                                           "busy_poll_us",
                                           "busy_poll_mode",
                                           "metrics_port",
                                           "log_format",
                                           "metrics_bind",
                                           "max_frame_bytes",
                                           "handshake_timeout_ms",
                                           "max_pending_handshakes",
                                           "tls"};

/* The "tls" object: the options of OTP's ssl_dist_optfile, by their names. */
static int config_tls(options *o, json_t *root, char *err, size_t err_size)
{
    json_t *t = json_object_get(root, "tls");
    if (!t)
        return 0;
    if (!json_is_object(t)) {
        snprintf(err, err_size, "config field \"tls\" must be an object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(t, key, v)
    {
        const char **file = strcmp(key, "certfile") == 0     ? &o->tls_opt.certfile
                            : strcmp(key, "keyfile") == 0    ? &o->tls_opt.keyfile
                            : strcmp(key, "cacertfile") == 0 ? &o->tls_opt.cacertfile
                                                             : NULL;
        if (file) {
            if (!json_is_string(v)) {
                snprintf(err, err_size, "config field \"tls.%s\" must be a string", key);
                return -1;
            }
            if (!*file)
                *file = json_string_value(v);
        } else if (strcmp(key, "verify") == 0) {
            const char *s = json_is_string(v) ? json_string_value(v) : "";
            if (strcmp(s, "verify_peer") != 0 && strcmp(s, "verify_none") != 0) {
                snprintf(err, err_size,
                         "config field \"tls.verify\" must be \"verify_peer\" or \"verify_none\"");
                return -1;
            }
            if (!o->set_tls_verify)
                o->tls_opt.verify_peer = strcmp(s, "verify_peer") == 0;
        } else if (strcmp(key, "fail_if_no_peer_cert") == 0 ||
                   strcmp(key, "verify_server_name") == 0) {
            int fail = key[0] == 'f';
            if (!json_is_boolean(v)) {
                snprintf(err, err_size, "config field \"tls.%s\" must be true or false", key);
                return -1;
            }
            if (fail && !o->set_tls_fail)
                o->tls_opt.fail_if_no_peer_cert = json_is_true(v);
            if (!fail && !o->set_tls_name)
                o->tls_opt.verify_server_name = json_is_true(v);
        } else {
            snprintf(err, err_size, "config field \"tls\": unknown option \"%s\"", key);
            return -1;
        }
    }
    return 0;
}

static int parse_bool(const char *flag, const char *value, int *out, char *err, size_t err_size)
{
    if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
        *out = value[0] == 't';
        return 0;
    }
    snprintf(err, err_size, "%s must be true or false, got '%s'", flag, value);
    return -1;
}

static int config_string(json_t *root, const char *key, const char **out, char *err,
                         size_t err_size)
{
    json_t *v = json_object_get(root, key);
    if (!v || *out)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, err_size, "config field \"%s\" must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int apply_config(options *o, json_t *root, int set_ticktime, int set_schedulers,
                        int set_port, int set_max, int set_busy, int set_metrics, char *err,
                        size_t err_size);

static int load_config(options *o, int set_ticktime, int set_schedulers, int set_port, int set_max,
                       int set_busy, int set_metrics, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *root = json_load_file(o->config_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, err_size, "config %s: line %d: %s", o->config_path, jerr.line, jerr.text);
        return -1;
    }
    return apply_config(o, root, set_ticktime, set_schedulers, set_port, set_max, set_busy,
                        set_metrics, err, err_size);
}

int options_config_from_buffer(options *o, const char *buf, size_t len, char *err, size_t err_size)
{
    json_error_t jerr;
    memset(o, 0, sizeof *o);
    if (hub_config_defaults(&o->hub) != 0) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    o->config_path = "<buffer>";
    o->tls_opt.verify_peer = 1;
    o->tls_opt.fail_if_no_peer_cert = 1;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, err_size, "config: line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    return apply_config(o, root, 0, 0, 0, 0, 0, 0, err, err_size);
}

/* Takes root (freed with the options). */
static int apply_config(options *o, json_t *root, int set_ticktime, int set_schedulers,
                        int set_port, int set_max, int set_busy, int set_metrics, char *err,
                        size_t err_size)
{
    o->config_json = root;
    if (!json_is_object(root)) {
        snprintf(err, err_size, "config %s: the top level must be a JSON object", o->config_path);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value)
    {
        int known = 0;
        for (size_t i = 0; i < sizeof known_fields / sizeof known_fields[0]; i++)
            known |= strcmp(key, known_fields[i]) == 0;
        known |= hub_config_is_field(key);
        if (!known) {
            snprintf(err, err_size, "config %s: unknown field \"%s\"", o->config_path, key);
            return -1;
        }
    }
    unsigned port = 0;
    if (config_uint(root, "net_ticktime", 1, 3600, &o->net_ticktime, set_ticktime, err, err_size) ||
        config_uint(root, "schedulers", 1, 64, &o->schedulers, set_schedulers, err, err_size) ||
        config_uint(root, "port", 0, 65535, &port, set_port, err, err_size) ||
        config_uint(root, "max_processes", 16, 1u << 20, &o->max_processes, set_max, err,
                    err_size) ||
        config_uint(root, "busy_poll_us", 0, 10000, &o->busy_poll_us, set_busy, err, err_size) ||
        config_uint(root, "max_frame_bytes", 1024, 0x7fffffffu, &o->max_frame_bytes,
                    o->set_max_frame, err, err_size) ||
        config_uint(root, "handshake_timeout_ms", 100, 600000, &o->handshake_timeout_ms,
                    o->set_hs_timeout, err, err_size) ||
        config_uint(root, "max_pending_handshakes", 1, 65536, &o->max_pending_handshakes,
                    o->set_max_pending, err, err_size) ||
        config_tls(o, root, err, err_size) ||
        config_uint(root, "metrics_port", 0, 65535, &o->metrics_port, set_metrics, err, err_size) ||
        config_string(root, "log_format", &o->log_format, err, err_size) ||
        config_string(root, "busy_poll_mode", &o->busy_poll_mode, err, err_size) ||
        config_string(root, "metrics_bind", &o->metrics_bind, err, err_size) ||
        config_strings(root, "worker_libs", o->worker_libs, &o->n_worker_libs, err, err_size) ||
        config_strings(root, "join", o->join, &o->n_join, err, err_size))
        return -1;
    if (!set_port && json_object_get(root, "port"))
        o->port = (int)port;
    if (hub_config_from_json(&o->hub, root, err, err_size) != 0)
        return -1;
    json_t *level = json_object_get(root, "log_level");
    if (level && !o->log_level) {
        if (!json_is_string(level)) {
            snprintf(err, err_size, "config field \"log_level\" must be a string");
            return -1;
        }
        o->log_level = json_string_value(level);
    }
    return 0;
}

int options_parse(options *o, int argc, char **argv, char *err, size_t err_size)
{
    static const struct option longopts[] = {
        {"name", required_argument, NULL, 'n'},
        {"cookie", required_argument, NULL, 'c'},
        {"config", required_argument, NULL, 'f'},
        {"worker-lib", required_argument, NULL, 'w'},
        {"join", required_argument, NULL, 'j'},
        {"schedulers", required_argument, NULL, 's'},
        {"net-ticktime", required_argument, NULL, 't'},
        {"port", required_argument, NULL, 'p'},
        {"max-processes", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},
        {"busy-poll-us", required_argument, NULL, 'b'},
        {"busy-poll-mode", required_argument, NULL, 7},
        {"no-beam-discovery", no_argument, NULL, 'D'},
        {"log-format", required_argument, NULL, 'F'},
        {"metrics-port", required_argument, NULL, 'M'},
        {"metrics-bind", required_argument, NULL, 'B'},
        {"max-frame-bytes", required_argument, NULL, 'X'},
        {"handshake-timeout-ms", required_argument, NULL, 'H'},
        {"max-pending-handshakes", required_argument, NULL, 'P'},
        {"tls-certfile", required_argument, NULL, 1},
        {"tls-keyfile", required_argument, NULL, 2},
        {"tls-cacertfile", required_argument, NULL, 3},
        {"tls-verify", required_argument, NULL, 4},
        {"tls-fail-if-no-peer-cert", required_argument, NULL, 5},
        {"tls-verify-server-name", required_argument, NULL, 6},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    if (hub_config_defaults(&o->hub) != 0) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    o->net_ticktime = 60;
    o->busy_poll_us = 100;
    o->tls_opt.verify_peer = 1;
    o->tls_opt.fail_if_no_peer_cert = 1;
    int set_ticktime = 0, set_schedulers = 0, set_port = 0, set_max = 0, set_busy = 0,
        set_metrics = 0;
    unsigned port;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->name = optarg;
            break;
        case 'c':
            o->cookie = optarg;
            break;
        case 'f':
            o->config_path = optarg;
            break;
        case 'w':
            if (add_list(o->worker_libs, &o->n_worker_libs, optarg, "--worker-lib", err, err_size))
                return -1;
            break;
        case 'j':
            if (add_list(o->join, &o->n_join, optarg, "--join", err, err_size))
                return -1;
            break;
        case 's':
            if (parse_uint("--schedulers", optarg, 1, 64, &o->schedulers, err, err_size))
                return -1;
            set_schedulers = 1;
            break;
        case 't':
            if (parse_uint("--net-ticktime", optarg, 1, 3600, &o->net_ticktime, err, err_size))
                return -1;
            set_ticktime = 1;
            break;
        case 'p':
            if (parse_uint("--port", optarg, 0, 65535, &port, err, err_size))
                return -1;
            o->port = (int)port;
            set_port = 1;
            break;
        case 'm':
            if (parse_uint("--max-processes", optarg, 16, 1u << 20, &o->max_processes, err,
                           err_size))
                return -1;
            set_max = 1;
            break;
        case 'l':
            o->log_level = optarg;
            break;
        case 'b':
            if (parse_uint("--busy-poll-us", optarg, 0, 10000, &o->busy_poll_us, err, err_size))
                return -1;
            set_busy = 1;
            break;
        case 'D':
            o->no_beam_discovery = 1;
            break;
        case 'F':
            o->log_format = optarg;
            break;
        case 'M':
            if (parse_uint("--metrics-port", optarg, 1, 65535, &o->metrics_port, err, err_size))
                return -1;
            set_metrics = 1;
            break;
        case 'B':
            o->metrics_bind = optarg;
            break;
        case 'X':
            if (parse_uint("--max-frame-bytes", optarg, 1024, 0x7fffffffu, &o->max_frame_bytes, err,
                           err_size))
                return -1;
            o->set_max_frame = 1;
            break;
        case 'H':
            if (parse_uint("--handshake-timeout-ms", optarg, 100, 600000, &o->handshake_timeout_ms,
                           err, err_size))
                return -1;
            o->set_hs_timeout = 1;
            break;
        case 'P':
            if (parse_uint("--max-pending-handshakes", optarg, 1, 65536, &o->max_pending_handshakes,
                           err, err_size))
                return -1;
            o->set_max_pending = 1;
            break;
        case 1:
            o->tls_opt.certfile = optarg;
            break;
        case 2:
            o->tls_opt.keyfile = optarg;
            break;
        case 3:
            o->tls_opt.cacertfile = optarg;
            break;
        case 4:
            if (strcmp(optarg, "verify_peer") != 0 && strcmp(optarg, "verify_none") != 0) {
                snprintf(err, err_size, "--tls-verify must be verify_peer or verify_none");
                return -1;
            }
            o->tls_opt.verify_peer = strcmp(optarg, "verify_peer") == 0;
            o->set_tls_verify = 1;
            break;
        case 5:
            if (parse_bool("--tls-fail-if-no-peer-cert", optarg, &o->tls_opt.fail_if_no_peer_cert,
                           err, err_size))
                return -1;
            o->set_tls_fail = 1;
            break;
        case 7:
            o->busy_poll_mode = optarg;
            break;
        case 6:
            if (parse_bool("--tls-verify-server-name", optarg, &o->tls_opt.verify_server_name, err,
                           err_size))
                return -1;
            o->set_tls_name = 1;
            break;
        case 'h':
            o->help = 1;
            return 0;
        case 'V':
            o->version = 1;
            return 0;
        case ':':
            snprintf(err, err_size, "%s needs a value", argv[optind - 1]);
            return -1;
        default:
            snprintf(err, err_size, "unknown option '%s'", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        snprintf(err, err_size, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->config_path && load_config(o, set_ticktime, set_schedulers, set_port, set_max, set_busy,
                                      set_metrics, err, err_size) != 0)
        return -1;
    if (o->busy_poll_mode && strcmp(o->busy_poll_mode, "cpu") != 0 &&
        strcmp(o->busy_poll_mode, "latency") != 0) {
        snprintf(err, err_size, "--busy-poll-mode must be cpu or latency, got '%s'",
                 o->busy_poll_mode);
        return -1;
    }
    if (o->log_format && strcmp(o->log_format, "text") != 0 && strcmp(o->log_format, "json") != 0) {
        snprintf(err, err_size, "--log-format must be text or json, got '%s'", o->log_format);
        return -1;
    }
    if (o->log_level && strcmp(o->log_level, "error") != 0 &&
        strcmp(o->log_level, "warning") != 0 && strcmp(o->log_level, "info") != 0 &&
        strcmp(o->log_level, "debug") != 0) {
        snprintf(err, err_size, "--log-level must be one of error, warning, info, debug, got '%s'",
                 o->log_level);
        return -1;
    }
    if (!o->metrics_bind)
        o->metrics_bind = "127.0.0.1";
    o->tls = o->tls_opt.certfile != NULL;
    if (!o->tls && (o->tls_opt.keyfile || o->tls_opt.cacertfile)) {
        snprintf(err, err_size,
                 "TLS distribution needs a certificate: --tls-certfile (or "
                 "\"certfile\" in the config's \"tls\")");
        return -1;
    }
    if (o->no_beam_discovery)
        o->hub.beam_discovery = 0;
    if (!o->name) {
        snprintf(err, err_size, "--name NAME@HOST is required");
        return -1;
    }
    if (o->schedulers == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->schedulers = cores > 0 ? (unsigned)(cores > 64 ? 64 : cores) : 1;
    }
    return 0;
}

void options_free(options *o)
{
    hub_config_free(&o->hub);
    if (o->config_json)
        json_decref(o->config_json);
    o->config_json = NULL;
}
