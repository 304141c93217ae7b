build-dev/cnode/ctl.o: cnode/ctl.c cnode/ctl.h cnode/ctl_term.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h cnode/hub_config.h \
 hub/hub.h ei_glue/handshake_diag.h ei_glue/transport.h ei_glue/node.h \
 ei_glue/socket_callbacks.h
cnode/ctl.h:
cnode/ctl_term.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
cnode/hub_config.h:
hub/hub.h:
ei_glue/handshake_diag.h:
ei_glue/transport.h:
ei_glue/node.h:
ei_glue/socket_callbacks.h:
