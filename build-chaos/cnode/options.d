build-dev/cnode/options.o: cnode/options.c cnode/options.h \
 ei_glue/transport.h hub/hub.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h cnode/hub_config.h
cnode/options.h:
ei_glue/transport.h:
hub/hub.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
cnode/hub_config.h:
