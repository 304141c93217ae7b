build-dev/hub/runtime/runtime.o: hub/runtime/runtime.c \
 hub/runtime/runtime.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 hub/runtime/runtime_metrics.h hub/runtime/metrics.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/modules.h hub/runtime/names.h \
 hub/runtime/process.h hub/runtime/timers.h
hub/runtime/runtime.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/modules.h:
hub/runtime/names.h:
hub/runtime/process.h:
hub/runtime/timers.h:
