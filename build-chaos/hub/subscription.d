build-dev/hub/subscription.o: hub/subscription.c hub/hub_internal.h \
 hub/hub.h include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h ei_glue/term_trust.h \
 hub/runtime/atoms.h hub/runtime/context.h hub/runtime/process.h \
 include/processhub/worker.h hub/hooks.h include/processhub/hub.h \
 hub/runtime/log.h hub/membership.h hub/hub_metrics.h \
 hub/runtime/metrics.h hub/protocol.h hub/registry.h hub/runtime/remote.h \
 hub/runtime/route.h hub/runtime/table_cap.h \
 strategies/distribution/consistent_hashing.h \
 include/processhub/strategy.h hub/runtime/runtime.h hub/runtime/timers.h
hub/hub_internal.h:
hub/hub.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
ei_glue/term_trust.h:
hub/runtime/atoms.h:
hub/runtime/context.h:
hub/runtime/process.h:
include/processhub/worker.h:
hub/hooks.h:
include/processhub/hub.h:
hub/runtime/log.h:
hub/membership.h:
hub/hub_metrics.h:
hub/runtime/metrics.h:
hub/protocol.h:
hub/registry.h:
hub/runtime/remote.h:
hub/runtime/route.h:
hub/runtime/table_cap.h:
strategies/distribution/consistent_hashing.h:
include/processhub/strategy.h:
hub/runtime/runtime.h:
hub/runtime/timers.h:
