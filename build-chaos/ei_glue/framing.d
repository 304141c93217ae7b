build-dev/ei_glue/framing.o: ei_glue/framing.c ei_glue/framing.h
ei_glue/framing.h:
