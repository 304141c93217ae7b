# phnode - the only build entry point.
#   make          build build/phnode and build/libprocesshub.a
#   make test     unit tests (Check) + integration tests against real BEAM nodes
#   make unit     unit tests only
#   make chaos    the long randomized membership tests (50 events; 100 faults on real cuts)
#   make asan     the whole suite built with ASan+UBSan
#   make valgrind unit tests under valgrind
#   make bench    benchmarks, side by side with the BEAM (results in bench/results/)
#   make run      a local 3-node phnode cluster on 127.0.0.1 (Ctrl-C stops it)
#   make format   clang-format every C file
#   make fuzz     libFuzzer harnesses (test/fuzz/), each for FUZZ_SECONDS (default 60)

CC      ?= cc
BUILD   ?= build
EI_DIR  := $(shell erl -noshell -eval 'io:format("~s",[code:lib_dir(erl_interface)])' -s init stop 2>/dev/null)
ifeq ($(EI_DIR),)
$(error erl_interface not found: install erlang-dev (see .ci/install-deps))
endif
PKGS    := jansson libssl libcrypto libmicrohttpd
# libmicrohttpd is loaded when --metrics-port is given (cnode/metrics_http.c):
# its headers only, not linked
LINK_PKGS := jansson libssl libcrypto
OPT     ?= -O2
SAN     ?=
CFLAGS  := -std=c11 -D_GNU_SOURCE -D_REENTRANT -Wall -Wextra -Werror $(OPT) -g $(SAN) \
           -Iinclude -I. -I$(EI_DIR)/include $(shell pkg-config --cflags $(PKGS)) -fPIC
LDFLAGS := $(SAN) -rdynamic
LDLIBS  := -L$(EI_DIR)/lib -lei $(shell pkg-config --libs $(LINK_PKGS)) -lpthread -ldl -lm
CHECK_LIBS := $(shell pkg-config --libs check)

LIB_SRCS  := $(sort $(wildcard ei_glue/*.c hub/*.c hub/runtime/*.c hub/system/*.c strategies/*.c strategies/*/*.c cnode/workers/*.c))
MAIN_SRCS := $(sort $(wildcard cnode/*.c))
UNIT_SRCS := $(sort $(wildcard test/unit/test_*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
MAIN_OBJS := $(MAIN_SRCS:%.c=$(BUILD)/%.o)
UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(BUILD)/test/%)
LIB       := $(BUILD)/libprocesshub.a
PHNODE    := $(BUILD)/phnode

.PHONY: all test unit integration chaos asan tsan valgrind bench format clean run fuzz fuzz-build fuzz-bins fuzz-smoke
all: $(PHNODE) $(LIB) $(BUILD)/test/libsample_worker.so $(BUILD)/test/libby_name_strategy.so $(BUILD)/test/bad_peer

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(PHNODE): $(MAIN_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJS) -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/test/%: test/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(CHECK_LIBS) $(LDLIBS)

# A worker module loaded with --worker-lib in the integration tests.
$(BUILD)/test/libsample_worker.so: test/sample_worker/sample_worker.c include/processhub/worker.h include/processhub/term.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<

# A user-defined distribution strategy loaded from the config in the
# integration tests (and the example of docs/strategies.md).
$(BUILD)/test/libby_name_strategy.so: test/sample_strategy/by_name.c include/processhub/strategy.h include/processhub/term.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<

# A misbehaving distribution peer for the integration tests.
$(BUILD)/test/bad_peer: test/tools/bad_peer.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(BUILD)/bench/spawn_bench: bench/spawn_bench.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

# The floor of a call's server CPU on this machine (bench/run.sh prints it).
$(BUILD)/bench/loopback_floor: bench/loopback_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# The floor of BEAM callers' calls: a C node that does nothing for a call
# but answer it (bench/call_floor.sh compares it with phnode and the BEAM).
$(BUILD)/bench/call_floor: bench/call_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(EI_DIR)/lib -lei -lpthread

# What a page touched for the first time costs on this machine (docs/benchmarks.md).
$(BUILD)/bench/fault_cost: bench/fault_cost.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $<

# Which big buffers phnode allocates (an LD_PRELOAD library; docs/benchmarks.md).
$(BUILD)/bench/big_allocs.so: bench/big_allocs.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $<

# Check gives each test 4 s by default; a loaded host (or a sanitizer
# build) can take longer without anything being wrong: 60 s unless set.
unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; \
	  CK_FORK=yes CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-60} $$t; done

integration: all
	BUILD=$(BUILD) test/integration/run.sh

test: unit integration fuzz-smoke

# Fuzzing (test/fuzz/): the library built with clang, ASan, UBSan and
# libFuzzer's coverage in FUZZ_BUILD; one harness per decoder. fuzz-smoke
# replays the stored corpus once (part of make test; skipped without clang).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_SRCS    := $(sort $(wildcard test/fuzz/fuzz_*.c))
FUZZ_EXTRA   := $(BUILD)/cnode/options.o $(BUILD)/cnode/hub_config.o

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) CC=clang OPT=-O1 SAN="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-bins

fuzz-bins: $(FUZZ_SRCS:test/fuzz/%.c=$(BUILD)/fuzz/%)

$(BUILD)/fuzz/%: test/fuzz/%.c $(LIB) $(FUZZ_EXTRA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $< $(FUZZ_EXTRA) -Wl,--whole-archive $(LIB) -Wl,--no-whole-archive $(LDLIBS)

fuzz: fuzz-build
	test/fuzz/run.sh fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

fuzz-smoke:
	@if command -v clang >/dev/null 2>&1; then $(MAKE) fuzz-build && test/fuzz/run.sh replay $(FUZZ_BUILD); \
	 else echo "fuzz-smoke: SKIPPED: clang is not installed (.ci/install-deps installs it)"; fi

# The long randomized membership test (docs/cluster.md, "Invariants"): 5
# phnodes, 5,000 children, 50 events; PH_CHAOS_SEED=N replays a run.
# Then the chaos run on real network partitions (partition_test.exs): 5
# phnodes in network namespaces, 10,000 children with rf 2, 100 faults
# (kill -9, restart, SIGTERM, cut, heal), converged within
# PH_NET_CHAOS_CONVERGE_MS (5000) of the cluster being whole again;
# PH_NET_CHAOS_SEED=N replays it.
chaos: all
	PH_CHAOS_ONLY=1 PH_CHAOS_EVENTS=$${PH_CHAOS_EVENTS:-50} PH_CHAOS_CHILDREN=$${PH_CHAOS_CHILDREN:-5000} \
	  BUILD=$(BUILD) test/integration/run.sh test/integration/cluster_race_test.exs
	PH_NET_CHAOS_ONLY=1 PH_NET_CHAOS_FAULTS=$${PH_NET_CHAOS_FAULTS:-100} PH_NET_CHAOS_CHILDREN=$${PH_NET_CHAOS_CHILDREN:-10000} \
	  PH_NET_CHAOS_CONVERGE_MS=$${PH_NET_CHAOS_CONVERGE_MS:-5000} \
	  BUILD=$(BUILD) test/integration/run.sh test/integration/partition_test.exs

# Sanitizer builds run several times slower: Check's per-test timeout is
# 300 s there unless set (TSan's deep-term test took over 60 s at load 12),
# and the timeouts a test case sets itself are 3 times longer (TSan's
# "bad input" case of test_term takes 84 s on an idle machine; one of its
# tests passed 120 s while the integration tests ran beside it).
asan:
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-300} CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-3} $(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" test

# ThreadSanitizer: a report makes the reporting phnode exit non-zero, which
# the tests that stop a node see.
tsan:
	CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-300} CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-3} $(MAKE) BUILD=build-tsan OPT=-O1 SAN="-fsanitize=thread" test

valgrind: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== valgrind $$t"; \
	  CK_FORK=no valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect $$t; done

run: all
	BUILD=$(BUILD) cnode/run-local-cluster.sh

bench: all $(BUILD)/bench/spawn_bench $(BUILD)/bench/loopback_floor $(BUILD)/bench/call_floor $(BUILD)/bench/fault_cost
	BUILD=$(BUILD) bench/run.sh

format:
	clang-format -i $(LIB_SRCS) $(MAIN_SRCS) $(UNIT_SRCS) $(wildcard include/processhub/*.h */*.h */*/*.h test/sample_worker/*.c test/sample_strategy/*.c test/tools/*.c test/fuzz/*.c bench/*.c)

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJS:.o=.d)
