build-dev/cnode/workers/kv.o: cnode/workers/kv.c cnode/workers/workers.h \
 include/processhub/worker.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
cnode/workers/workers.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
