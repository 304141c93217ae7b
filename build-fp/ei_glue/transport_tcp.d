build-fp/ei_glue/transport_tcp.o: ei_glue/transport_tcp.c \
 ei_glue/transport.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
ei_glue/transport.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
