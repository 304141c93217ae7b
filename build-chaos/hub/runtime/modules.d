build-dev/hub/runtime/modules.o: hub/runtime/modules.c \
 hub/runtime/modules.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/log.h
hub/runtime/modules.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/log.h:
