build-dev/hub/runtime/route.o: hub/runtime/route.c hub/runtime/route.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/names.h hub/runtime/process.h \
 hub/runtime/remote.h hub/runtime/runtime.h
hub/runtime/route.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/names.h:
hub/runtime/process.h:
hub/runtime/remote.h:
hub/runtime/runtime.h:
