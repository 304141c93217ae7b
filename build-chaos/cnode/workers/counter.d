build-dev/cnode/workers/counter.o: cnode/workers/counter.c \
 cnode/workers/workers.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/runtime/log.h
cnode/workers/workers.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/log.h:
