build-dev/hub/runtime/names.o: hub/runtime/names.c hub/runtime/names.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/atoms.h
hub/runtime/names.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/atoms.h:
