build-dev/ei_glue/control.o: ei_glue/control.c ei_glue/control.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h ei_glue/term_trust.h \
 hub/runtime/atoms.h hub/runtime/log.h hub/runtime/metrics.h \
 hub/runtime/route.h hub/runtime/runtime.h
ei_glue/control.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/term_trust.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/metrics.h:
hub/runtime/route.h:
hub/runtime/runtime.h:
