build-dev/strategies/redundancy/replication.o: \
 strategies/redundancy/replication.c strategies/redundancy/replication.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
strategies/redundancy/replication.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
