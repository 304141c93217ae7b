# bench/lib.sh: what the benchmark scripts share (sourced, not run): the
# build, unique node names and cookie, a temporary directory, starting
# phnodes and the BEAM bench server, and a cleanup on exit that stops every
# process the script added to PIDS or a driver listed in $TMP/pids.
#   source bench/lib.sh; bench_init COOKIE_PREFIX
# SUFFIX may be set before (hub_join.sh keeps its node names across runs).
BUILD=${BUILD:-build}
SUFFIX=${SUFFIX:-"$$_$RANDOM"}
TMP=$(mktemp -d)
PIDS=()
# Allocator flags for the BEAM nodes of the 100k-children scenarios (the
# driver and the :pg nodes alike): carriers come from a super carrier that
# keeps its pages when they are freed. Freed memory is otherwise returned to
# the kernel, and on a VM with free page reporting (this 2-vCPU test VM) the
# host takes pages back after ~2 s idle and charges 20-30 times a plain fault
# to hand them out again: the driver, idle during the other side's rounds,
# then spent its start rounds re-faulting 9-13k pages (docs/benchmarks.md,
# "The driver's memory after a pause").
# The super carrier commits its 2 GiB at once: under strict overcommit
# (vm.overcommit_memory=2) the nodes might not start, so it is left out there.
if [ "$(cat /proc/sys/vm/overcommit_memory 2>/dev/null)" = 2 ] && [ -z "${BENCH_BEAM_KEEP_MEMORY+set}" ]; then
  echo "bench: strict overcommit: BEAM nodes without a super carrier (BENCH_BEAM_KEEP_MEMORY empty)" >&2
  BENCH_BEAM_KEEP_MEMORY=
fi
BENCH_BEAM_KEEP_MEMORY=${BENCH_BEAM_KEEP_MEMORY-"+MMscs 2048 +MMscrpm true"}

# Stops PIDS (TERM, then KILL), then what drivers recorded in $TMP/pids (nodes
# they started themselves). A script that defines bench_pre_cleanup has it
# run first (hub_cluster.sh stops perf there, before the nodes go).
bench_cleanup() {
  if declare -F bench_pre_cleanup >/dev/null; then bench_pre_cleanup || true; fi
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$TMP"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# bench_init PREFIX: the phnode build checked, the cookie, the cleanup trap,
# epmd running, $TMP/pids for the drivers' own nodes.
bench_init() {
  trap bench_cleanup EXIT INT TERM
  PHNODE=${PHNODE:-$BUILD/phnode}
  if [ ! -x "$PHNODE" ]; then
    echo "$(basename "$0"): no $PHNODE (run make, or set BUILD)" >&2
    exit 2
  fi
  COOKIE="${1}_$RANDOM$RANDOM"
  epmd -daemon
  mkdir -p "$TMP/pids"
}

# bench_phnode NAME LOG [ARGS...]: starts $PHNODE as NAME (warnings only,
# stderr to $TMP/LOG), added to PIDS; its pid is in BENCH_PID.
bench_phnode() {
  local name=$1 log=$2
  shift 2
  "$PHNODE" --name "$name" --cookie "$COOKIE" --log-level warning "$@" 2>"$TMP/$log" &
  BENCH_PID=$!
  PIDS+=("$BENCH_PID")
}

# bench_cluster NAME... : a phnode per name, each after the first joining
# the first (logs $TMP/1.log, 2.log...); their pids in CLUSTER_PIDS, and
# comma-separated in CLUSTER_OSPIDS (the drivers' CPU accounting).
bench_cluster() {
  local i=0 first=$1
  CLUSTER_PIDS=()
  for name in "$@"; do
    i=$((i + 1))
    if [ "$i" = 1 ]; then bench_phnode "$name" "$i.log"; else bench_phnode "$name" "$i.log" --join "$first"; fi
    CLUSTER_PIDS+=("$BENCH_PID")
  done
  CLUSTER_OSPIDS=$(IFS=,; echo "${CLUSTER_PIDS[*]}")
}

# bench_beam_server NAME LOG: a BEAM node running bench/beam/ph_bench_server
# (started through exec, so the pid is beam.smp's own, for the CPU
# accounting), added to PIDS, once it answers; its pid in BENCH_PID.
bench_beam_server() {
  local name=$1 log=$2
  [ -f "$TMP/ph_bench_server.beam" ] || erlc -o "$TMP" bench/beam/ph_bench_server.erl
  bash -c 'exec erl "$@"' erl -name "$name" -setcookie "$COOKIE" -noshell -pa "$TMP" \
    -eval 'ok = ph_bench_server:start()' >"$TMP/$log" 2>&1 &
  BENCH_PID=$!
  PIDS+=("$BENCH_PID")
  bench_wait_beam "$name"
}

# bench_wait_beam NAME: waits (at most 10 s) until the BEAM node NAME answers.
bench_wait_beam() {
  for _ in $(seq 1 50); do
    erl_call -name "$1" -c "$COOKIE" -a 'erlang node' >/dev/null 2>&1 && return 0 || sleep 0.2
  done
}
