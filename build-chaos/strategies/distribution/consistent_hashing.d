build-dev/strategies/distribution/consistent_hashing.o: \
 strategies/distribution/consistent_hashing.c \
 strategies/distribution/consistent_hashing.h \
 include/processhub/strategy.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
strategies/distribution/consistent_hashing.h:
include/processhub/strategy.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
