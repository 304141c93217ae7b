build-dev/hub/runtime/spawn.o: hub/runtime/spawn.c hub/runtime/atoms.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/context.h \
 hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/names.h hub/runtime/runtime.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/context.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/names.h:
hub/runtime/runtime.h:
