build-dev/cnode/memory_setup.o: cnode/memory_setup.c cnode/memory_setup.h
cnode/memory_setup.h:
