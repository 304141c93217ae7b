build-dev/hub/runtime/process_run.o: hub/runtime/process_run.c \
 ei_glue/term_trust.h hub/runtime/atoms.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/context.h \
 hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/handover.h hub/runtime/log.h \
 hub/runtime/runtime_metrics.h hub/runtime/metrics.h hub/runtime/names.h \
 hub/runtime/route.h hub/runtime/runtime.h
ei_glue/term_trust.h:
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/context.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/handover.h:
hub/runtime/log.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/names.h:
hub/runtime/route.h:
hub/runtime/runtime.h:
