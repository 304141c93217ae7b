build-dev/ei_glue/node.o: ei_glue/node.c ei_glue/node.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/socket_callbacks.h hub/runtime/log.h
ei_glue/node.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/socket_callbacks.h:
hub/runtime/log.h:
