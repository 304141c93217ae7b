build-dev/strategies/distribution/guided.o: \
 strategies/distribution/guided.c strategies/distribution/guided.h \
 include/processhub/strategy.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/registry.h \
 include/processhub/worker.h hub/runtime/atoms.h
strategies/distribution/guided.h:
include/processhub/strategy.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/registry.h:
include/processhub/worker.h:
hub/runtime/atoms.h:
