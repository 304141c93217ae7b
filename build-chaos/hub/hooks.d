build-dev/hub/hooks.o: hub/hooks.c hub/hooks.h include/processhub/hub.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 include/processhub/worker.h hub/runtime/atoms.h hub/runtime/log.h \
 hub/runtime/timers.h
hub/hooks.h:
include/processhub/hub.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
include/processhub/worker.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/timers.h:
