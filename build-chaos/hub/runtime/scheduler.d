build-dev/hub/runtime/scheduler.o: hub/runtime/scheduler.c \
 hub/runtime/remote.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/log.h \
 hub/runtime/runtime_metrics.h hub/runtime/metrics.h \
 hub/runtime/process.h
hub/runtime/remote.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/log.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/process.h:
