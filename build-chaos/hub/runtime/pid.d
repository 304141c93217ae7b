build-dev/hub/runtime/pid.o: hub/runtime/pid.c hub/runtime/atoms.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/runtime.h \
 include/processhub/worker.h include/processhub/term.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/runtime.h:
include/processhub/worker.h:
include/processhub/term.h:
