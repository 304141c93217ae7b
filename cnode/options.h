/* options.h - phnode's command line and --config file. */
#ifndef PH_OPTIONS_H
#define PH_OPTIONS_H

#include "ei_glue/transport.h"
#include "hub/hub.h"

#include <stddef.h>

#define OPT_MAX_LIST 64

typedef struct options {
    const char *name;
    const char *cookie; /* NULL: $HOME/.erlang.cookie */
    const char *config_path;
    const char *worker_libs[OPT_MAX_LIST];
    int n_worker_libs;
    const char *join[OPT_MAX_LIST];
    int n_join;
    int no_beam_discovery; /* --no-beam-discovery */
    unsigned schedulers;   /* 0: one per core */
    unsigned net_ticktime;
    int port;
    unsigned max_processes;
    unsigned busy_poll_us;
    const char *busy_poll_mode;      /* "cpu" (default) or "latency"; NULL: cpu */
    unsigned max_frame_bytes;        /* 0: the default (DIST_DEFAULT_MAX_FRAME) */
    int set_max_frame;               /* given on the command line */
    unsigned handshake_timeout_ms;   /* 0: the default */
    unsigned max_pending_handshakes; /* 0: the default */
    int set_hs_timeout, set_max_pending;
    int tls;             /* TLS distribution: tls.certfile was given */
    tls_options tls_opt; /* --tls-* flags, then the config's "tls" object */
    int set_tls_verify, set_tls_fail, set_tls_name;
    const char *log_level;
    const char *log_format;   /* "text" (default) or "json" */
    unsigned metrics_port;    /* 0: no metrics endpoint */
    const char *metrics_bind; /* the endpoint's IPv4 address; default 127.0.0.1 */
    int help, version;
    void *config_json; /* keeps strings from the config file alive */
    hub_config hub;
} options;

/* Parses argv, then the config file (command line wins). Returns 0, or -1
 * with one clear message in err. */
int options_parse(options *o, int argc, char **argv, char *err, size_t err_size);
void options_free(options *o);
/* The config file's loader over a buffer (the fuzz target): o is reset to
 * the defaults, then the JSON in buf[0..len) applied as a --config file
 * would be. 0, or -1 with a message in err; options_free(o) either way. */
int options_config_from_buffer(options *o, const char *buf, size_t len, char *err, size_t err_size);
void options_usage(const char *prog);
/* The one line printed for a bad command line. */
void options_usage_hint(const char *prog, const char *err);

#endif
