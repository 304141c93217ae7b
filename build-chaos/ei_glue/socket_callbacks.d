build-dev/ei_glue/socket_callbacks.o: ei_glue/socket_callbacks.c \
 ei_glue/socket_callbacks.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 ei_glue/handshake_diag.h ei_glue/transport.h
ei_glue/socket_callbacks.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/handshake_diag.h:
ei_glue/transport.h:
