build-dev/hub/runtime/runtime_metrics.o: hub/runtime/runtime_metrics.c \
 hub/runtime/runtime_metrics.h hub/runtime/metrics.h \
 hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
