build-dev/cnode/main.o: cnode/main.c cnode/ctl.h cnode/memory_setup.h \
 cnode/metrics_http.h cnode/options.h ei_glue/transport.h hub/hub.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h \
 cnode/workers/workers.h include/processhub/worker.h ei_glue/connection.h \
 ei_glue/dist.h hub/runtime/remote.h ei_glue/node.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/modules.h hub/runtime/names.h \
 hub/runtime/process.h hub/runtime/runtime.h hub/system/system_modules.h \
 hub/runtime/thread_buf.h cnode/version.h
cnode/ctl.h:
cnode/memory_setup.h:
cnode/metrics_http.h:
cnode/options.h:
ei_glue/transport.h:
hub/hub.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
cnode/workers/workers.h:
include/processhub/worker.h:
ei_glue/connection.h:
ei_glue/dist.h:
hub/runtime/remote.h:
ei_glue/node.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/modules.h:
hub/runtime/names.h:
hub/runtime/process.h:
hub/runtime/runtime.h:
hub/system/system_modules.h:
hub/runtime/thread_buf.h:
cnode/version.h:
