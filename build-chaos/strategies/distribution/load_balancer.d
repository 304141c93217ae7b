build-dev/strategies/distribution/load_balancer.o: \
 strategies/distribution/load_balancer.c \
 strategies/distribution/load_balancer.h \
 strategies/distribution/dist_internal.h include/processhub/strategy.h \
 include/processhub/term.h \
 /usr/lib/erlang/lib/erl_interface-5.3/include/ei.h hub/protocol.h \
 include/processhub/worker.h hub/registry.h hub/runtime/atoms.h \
 hub/runtime/log.h hub/runtime/runtime_metrics.h hub/runtime/metrics.h \
 hub/runtime/process.h hub/runtime/runtime.h hub/runtime/timers.h \
 strategies/distribution/lb_score.h
strategies/distribution/load_balancer.h:
strategies/distribution/dist_internal.h:
include/processhub/strategy.h:
include/processhub/term.h:
/usr/lib/erlang/lib/erl_interface-5.3/include/ei.h:
hub/protocol.h:
include/processhub/worker.h:
hub/registry.h:
hub/runtime/atoms.h:
hub/runtime/log.h:
hub/runtime/runtime_metrics.h:
hub/runtime/metrics.h:
hub/runtime/process.h:
hub/runtime/runtime.h:
hub/runtime/timers.h:
strategies/distribution/lb_score.h:
