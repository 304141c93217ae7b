build-dev/ei_glue/handshake_diag.o: ei_glue/handshake_diag.c \
 ei_glue/handshake_diag.h
ei_glue/handshake_diag.h:
