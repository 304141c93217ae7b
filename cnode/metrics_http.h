/* metrics_http.h - the Prometheus endpoint (/metrics) served with
 * libmicrohttpd on --metrics-port. */
#ifndef PH_METRICS_HTTP_H
#define PH_METRICS_HTTP_H

#include <stddef.h>

/* Listens on addr:port (addr an IPv4 address, e.g. "127.0.0.1" or
 * "0.0.0.0"). 0, or -1 with the reason in err. */
int metrics_http_start(const char *addr, unsigned port, char *err, size_t err_size);
void metrics_http_stop(void);

#endif
