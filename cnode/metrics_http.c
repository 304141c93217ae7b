/* metrics_http.c - serves metrics_render() as Prometheus text exposition on
 * GET /metrics (libmicrohttpd, one internal thread, connections handled in
 * turn: a scrape is a few kilobytes). Process-level gauges (start time,
 * resident memory, open fds) are added here. libmicrohttpd is loaded
 * (dlopen) when the endpoint is asked for, not linked: it pulls in gnutls,
 * whose set-up at load cost every node's start several ms of CPU, a
 * joining node's included (docs/benchmarks.md, "The join"). */
#include "cnode/metrics_http.h"

#include "hub/runtime/log.h"
#include "hub/runtime/runtime_metrics.h"
#include "hub/runtime/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The library's soname (ABI 12: libmicrohttpd 0.9.x). */
#define MHD_SONAME "libmicrohttpd.so.12"

static struct MHD_Daemon *daemon_;
static double start_time;

/* The functions used, resolved from the library once it is loaded. */
static struct {
    void *lib;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
} mhd;

/* 0, or -1 with the reason in err. */
static int mhd_load(char *err, size_t err_size)
{
    if (mhd.lib)
        return 0;
    void *lib = dlopen(MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(err, err_size, "cannot load %s for --metrics-port: %s", MHD_SONAME, dlerror());
        return -1;
    }
    /* (POSIX: a void * from dlsym converts to a function pointer) */
#define MHD_SYM(f, name) (*(void **)&mhd.f = dlsym(lib, name)) != NULL
    if (!(MHD_SYM(create_response_from_buffer, "MHD_create_response_from_buffer") &&
          MHD_SYM(add_response_header, "MHD_add_response_header") &&
          MHD_SYM(destroy_response, "MHD_destroy_response") &&
          MHD_SYM(queue_response, "MHD_queue_response") &&
          MHD_SYM(start_daemon, "MHD_start_daemon") && MHD_SYM(stop_daemon, "MHD_stop_daemon"))) {
        snprintf(err, err_size, "%s lacks a function phnode uses: %s", MHD_SONAME, dlerror());
        dlclose(lib);
        return -1;
    }
#undef MHD_SYM
    mhd.lib = lib;
    return 0;
}

static METRIC_COUNTER(m_scrapes, "phnode_metrics_scrapes_total", "",
                      "Requests served on /metrics.");

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own fd */
}

static void collect_process(metrics_out *out)
{
    metrics_out_family(out, "process_start_time_seconds", METRIC_TYPE_GAUGE,
                       "Start time of the process since the Unix epoch in seconds.");
    metrics_out_sample(out, "process_start_time_seconds", "", start_time);
    long rss = process_resident_bytes();
    if (rss >= 0) {
        metrics_out_family(out, "process_resident_memory_bytes", METRIC_TYPE_GAUGE,
                           "Resident memory size in bytes.");
        metrics_out_sample(out, "process_resident_memory_bytes", "", (double)rss);
    }
    long fds = open_fds();
    if (fds >= 0) {
        metrics_out_family(out, "process_open_fds", METRIC_TYPE_GAUGE,
                           "Number of open file descriptors.");
        metrics_out_sample(out, "process_open_fds", "", (double)fds);
    }
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
                             size_t len, enum MHD_ResponseMemoryMode mode, const char *type)
{
    struct MHD_Response *r = mhd.create_response_from_buffer(len, (void *)text, mode);
    if (!r)
        return MHD_NO;
    if (mhd.add_response_header(r, "Content-Type", type) != MHD_YES) {
        mhd.destroy_response(r);
        return MHD_NO;
    }
    enum MHD_Result rc = mhd.queue_response(conn, status, r);
    mhd.destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    (void)cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)req_cls;
    static const char not_found[] = "not found: phnode serves /metrics\n";
    static const char bad_method[] = "method not allowed\n";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, bad_method, sizeof bad_method - 1,
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    if (strcmp(url, "/metrics") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof not_found - 1,
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    metric_inc(&m_scrapes);
    size_t len;
    char *text = metrics_render(&len);
    if (!text) {
        static const char oom[] = "out of memory\n";
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, oom, sizeof oom - 1,
                     MHD_RESPMEM_PERSISTENT, "text/plain");
    }
    return reply(conn, MHD_HTTP_OK, text, len, MHD_RESPMEM_MUST_FREE, CONTENT_TYPE);
}

int metrics_http_start(const char *addr, unsigned port, char *err, size_t err_size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    if (metrics_add_collector(collect_process) != 0) {
        snprintf(err, err_size, "cannot register the process metrics");
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        snprintf(err, err_size, "--metrics-bind: '%s' is not an IPv4 address", addr);
        return -1;
    }
    if (mhd_load(err, err_size) != 0)
        return -1;
    daemon_ =
        mhd.start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, (uint16_t)port, NULL, NULL,
                         handle, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_TIMEOUT,
                         10u, MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_END);
    if (!daemon_) {
        snprintf(err, err_size, "cannot serve metrics on %s:%u (port in use?)", addr, port);
        return -1;
    }
    LOG_I("metrics", "serving Prometheus metrics on http://%s:%u/metrics", addr, port);
    return 0;
}

void metrics_http_stop(void)
{
    if (daemon_)
        mhd.stop_daemon(daemon_);
    daemon_ = NULL;
}
