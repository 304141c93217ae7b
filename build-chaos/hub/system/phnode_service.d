build-dev/hub/system/phnode_service.o: hub/system/phnode_service.c \
 hub/runtime/atoms.h /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 hub/runtime/runtime_metrics.h hub/runtime/metrics.h \
 hub/runtime/modules.h include/processhub/worker.h \
 include/processhub/term.h hub/runtime/process.h hub/runtime/remote.h \
 hub/system/system_modules.h
hub/runtime/atoms.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/modules.h:
include/processhub/worker.h:
include/processhub/term.h:
hub/runtime/process.h:
hub/runtime/remote.h:
hub/system/system_modules.h:
