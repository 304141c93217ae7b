build-dev/hub/runtime/remote.o: hub/runtime/remote.c hub/runtime/remote.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
hub/runtime/remote.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
