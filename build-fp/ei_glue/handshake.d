build-fp/ei_glue/handshake.o: ei_glue/handshake.c ei_glue/connection.h \
 ei_glue/transport.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/handshake_diag.h hub/runtime/atoms.h hub/runtime/log.h \
 hub/runtime/metrics.h
ei_glue/connection.h:
ei_glue/transport.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/handshake_diag.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
