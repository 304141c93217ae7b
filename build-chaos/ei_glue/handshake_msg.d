build-dev/ei_glue/handshake_msg.o: ei_glue/handshake_msg.c \
 ei_glue/handshake_msg.h
ei_glue/handshake_msg.h:
