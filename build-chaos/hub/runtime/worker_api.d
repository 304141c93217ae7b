build-dev/hub/runtime/worker_api.o: hub/runtime/worker_api.c \
 hub/runtime/atoms.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 hub/runtime/context.h hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/log.h hub/runtime/route.h \
 hub/runtime/runtime.h hub/runtime/thread_buf.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/context.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/log.h:
hub/runtime/route.h:
hub/runtime/runtime.h:
hub/runtime/thread_buf.h:
