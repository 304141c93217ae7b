build-dev/cnode/metrics_http.o: cnode/metrics_http.c cnode/metrics_http.h \
 hub/runtime/log.h hub/runtime/runtime_metrics.h hub/runtime/metrics.h
cnode/metrics_http.h:
hub/runtime/log.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
