#!/usr/bin/env bash
# The hub-at-scale scenarios of bench/cluster.exs for phnode alone (no pg
# side): 3 phnodes, N (100,000) children started and stopped ROUNDS times,
# then ROUNDS cycles of a kill -9 and a new node joining. For profiling and
# quick comparisons; `make bench` runs the full comparison. PERF=1 records
# each phnode with `perf record -a -g` (when perf is installed) into
# $PERF_DIR (default /tmp); PERF_PHASE=start|stop|kill|join records only that
# phase, in the last round or cycle;
# PERF_EVENTS (e.g. probe_libc:malloc after `perf probe`) records those events instead of cycles;
# PERF_CALLGRAPH (e.g. dwarf) how perf unwinds (through glibc, which has no frame pointers).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
PERF_PIDS=()
bench_pre_cleanup() { # perf first, so that it writes its data while the nodes still run
  for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
bench_init hubcl
CP1="phc1_hc_$SUFFIX@127.0.0.1"; CP2="phc2_hc_$SUFFIX@127.0.0.1"; CP3="phc3_hc_$SUFFIX@127.0.0.1"
bench_cluster "$CP1" "$CP2" "$CP3"
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  # system-wide: pick the nodes out with `perf report --pid OS1,OS2,OS3`
  echo "phnode pids: ${CLUSTER_PIDS[*]}" >&2
  PERF_OPTS=(-a -g -o "${PERF_DIR:-/tmp}/hub_cluster.data")
  if [ -n "${PERF_CALLGRAPH:-}" ]; then PERF_OPTS+=(--call-graph "$PERF_CALLGRAPH"); fi
  if [ -n "${PERF_EVENTS:-}" ]; then PERF_OPTS+=(-e "$PERF_EVENTS"); fi
  if [ -n "${PERF_PHASE:-}" ]; then
    # recording only during one phase (start, stop, kill, join): cluster.exs
    # enables and disables perf through its control fifos
    mkfifo "$TMP/perf_ctl" "$TMP/perf_ack"
    export PERF_CTL="$TMP/perf_ctl" PERF_ACK="$TMP/perf_ack" PERF_PHASE
    perf record "${PERF_OPTS[@]}" -D -1 --control "fifo:$TMP/perf_ctl,$TMP/perf_ack" >/dev/null 2>&1 &
  else
    perf record "${PERF_OPTS[@]}" >/dev/null 2>&1 &
  fi
  PERF_PIDS+=($!)
fi
PG=0 ELIXIR_ERL_OPTIONS="$BENCH_BEAM_KEEP_MEMORY" elixir --name "hubcl_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/cluster.exs \
  "$CP1" "$CP2" "$CP3" "$CLUSTER_OSPIDS" none1 none2 none3 "$PHNODE" "$COOKIE" "$TMP/pids"
