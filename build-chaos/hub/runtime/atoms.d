build-dev/hub/runtime/atoms.o: hub/runtime/atoms.c hub/runtime/atoms.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
