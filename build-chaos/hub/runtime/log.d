build-dev/hub/runtime/log.o: hub/runtime/log.c hub/runtime/log.h
hub/runtime/log.h:
