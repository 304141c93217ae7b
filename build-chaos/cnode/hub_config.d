build-dev/cnode/hub_config.o: cnode/hub_config.c cnode/hub_config.h \
 hub/hub.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
cnode/hub_config.h:
hub/hub.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
