build-dev/ei_glue/io_loop.o: ei_glue/io_loop.c ei_glue/connection.h \
 ei_glue/transport.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/control.h include/processhub/worker.h include/processhub/term.h \
 ei_glue/framing.h hub/runtime/atoms.h hub/runtime/log.h \
 hub/runtime/metrics.h hub/runtime/process.h hub/runtime/timers.h
ei_glue/connection.h:
ei_glue/transport.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/control.h:
include/processhub/worker.h:
include/processhub/term.h:
ei_glue/framing.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
hub/runtime/process.h:
hub/runtime/timers.h:
