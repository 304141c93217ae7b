build-dev/hub/hub_metrics.o: hub/hub_metrics.c hub/hub_metrics.h \
 hub/runtime/metrics.h
hub/hub_metrics.h:
hub/runtime/metrics.h:
