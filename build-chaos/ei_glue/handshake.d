build-dev/ei_glue/handshake.o: ei_glue/handshake.c ei_glue/connection.h \
 ei_glue/transport.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/handshake_diag.h ei_glue/handshake_msg.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/metrics.h hub/runtime/timers.h \
 include/processhub/worker.h include/processhub/term.h
ei_glue/connection.h:
ei_glue/transport.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/handshake_diag.h:
ei_glue/handshake_msg.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
hub/runtime/timers.h:
include/processhub/worker.h:
include/processhub/term.h:
