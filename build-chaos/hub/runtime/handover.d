build-dev/hub/runtime/handover.o: hub/runtime/handover.c \
 hub/runtime/handover.h hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/context.h \
 hub/runtime/log.h hub/runtime/route.h
hub/runtime/handover.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/context.h:
hub/runtime/log.h:
hub/runtime/route.h:
