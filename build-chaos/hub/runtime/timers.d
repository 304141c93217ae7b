build-dev/hub/runtime/timers.o: hub/runtime/timers.c hub/runtime/timers.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/context.h \
 hub/runtime/process.h hub/runtime/log.h hub/runtime/route.h
hub/runtime/timers.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/context.h:
hub/runtime/process.h:
hub/runtime/log.h:
hub/runtime/route.h:
