build-dev/ei_glue/transport_tcp.o: ei_glue/transport_tcp.c \
 ei_glue/transport.h
ei_glue/transport.h:
