build-dev/cnode/workers/crasher.o: cnode/workers/crasher.c \
 cnode/workers/workers.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
cnode/workers/workers.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
