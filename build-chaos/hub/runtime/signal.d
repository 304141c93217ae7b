build-dev/hub/runtime/signal.o: hub/runtime/signal.c hub/runtime/atoms.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/process.h \
 include/processhub/worker.h include/processhub/term.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
