build-dev/ei_glue/connection.o: ei_glue/connection.c ei_glue/connection.h \
 ei_glue/transport.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/framing.h hub/runtime/atoms.h hub/runtime/log.h \
 hub/runtime/metrics.h hub/runtime/route.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/runtime.h hub/runtime/timers.h
ei_glue/connection.h:
ei_glue/transport.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/framing.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
hub/runtime/route.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/runtime.h:
hub/runtime/timers.h:
