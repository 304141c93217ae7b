build-dev/hub/system/node_sup.o: hub/system/node_sup.c \
 hub/system/system_modules.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/log.h \
 hub/runtime/timers.h
hub/system/system_modules.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/log.h:
hub/runtime/timers.h:
