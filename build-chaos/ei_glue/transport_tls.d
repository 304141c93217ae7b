build-dev/ei_glue/transport_tls.o: ei_glue/transport_tls.c \
 ei_glue/transport.h
ei_glue/transport.h:
