build-dev/hub/runtime/process_table.o: hub/runtime/process_table.c \
 hub/runtime/atoms.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 hub/runtime/log.h hub/runtime/process.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/runtime.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/log.h:
hub/runtime/process.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/runtime.h:
