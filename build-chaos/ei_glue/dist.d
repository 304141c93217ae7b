build-dev/ei_glue/dist.o: ei_glue/dist.c ei_glue/dist.h \
 hub/runtime/remote.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h ei_glue/connection.h \
 ei_glue/transport.h ei_glue/control.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/metrics.h hub/runtime/thread_buf.h
ei_glue/dist.h:
hub/runtime/remote.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/connection.h:
ei_glue/transport.h:
ei_glue/control.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
hub/runtime/thread_buf.h:
