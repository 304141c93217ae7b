build-dev/hub/runtime/metrics.o: hub/runtime/metrics.c \
 hub/runtime/metrics.h
hub/runtime/metrics.h:
