build-dev/hub/system/net_kernel.o: hub/system/net_kernel.c \
 hub/system/system_modules.h include/processhub/worker.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h
hub/system/system_modules.h:
include/processhub/worker.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
