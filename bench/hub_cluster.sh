#!/usr/bin/env bash
# The hub-at-scale scenarios of bench/cluster.exs for phnode alone (no pg
# side): 3 phnodes, N (100,000) children started and stopped ROUNDS times,
# then a kill -9 and a 4th node joining. For profiling and quick comparisons;
# `make bench` runs the full comparison. PERF=1 records each phnode with
# `perf record -a -g` (when perf is installed) into $PERF_DIR (default /tmp);
# PERF_PHASE=start|stop|kill|join records only that phase (the last start or stop round).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SUFFIX="hc_$$_$RANDOM"
COOKIE="hubcl_$RANDOM$RANDOM"
TMP=$(mktemp -d)
PIDS=()
PERF_PIDS=()
cleanup() {
  for pid in "${PERF_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${PERF_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$TMP"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
epmd -daemon
CP1="phc1_$SUFFIX@127.0.0.1"; CP2="phc2_$SUFFIX@127.0.0.1"; CP3="phc3_$SUFFIX@127.0.0.1"
"$BUILD/phnode" --name "$CP1" --cookie "$COOKIE" --log-level warning 2>"$TMP/c1.log" &
OS1=$!; PIDS+=($OS1)
"$BUILD/phnode" --name "$CP2" --cookie "$COOKIE" --log-level warning --join "$CP1" 2>"$TMP/c2.log" &
OS2=$!; PIDS+=($OS2)
"$BUILD/phnode" --name "$CP3" --cookie "$COOKIE" --log-level warning --join "$CP1" 2>"$TMP/c3.log" &
OS3=$!; PIDS+=($OS3)
if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
  # system-wide: pick the nodes out with `perf report --pid OS1,OS2,OS3`
  echo "phnode pids: $OS1 $OS2 $OS3" >&2
  if [ -n "${PERF_PHASE:-}" ]; then
    # recording only during one phase (start, stop, kill, join): cluster.exs
    # enables and disables perf through its control fifos
    mkfifo "$TMP/perf_ctl" "$TMP/perf_ack"
    export PERF_CTL="$TMP/perf_ctl" PERF_ACK="$TMP/perf_ack" PERF_PHASE
    perf record -a -g -D -1 --control "fifo:$TMP/perf_ctl,$TMP/perf_ack" \
      -o "${PERF_DIR:-/tmp}/hub_cluster.data" >/dev/null 2>&1 &
  else
    perf record -a -g -o "${PERF_DIR:-/tmp}/hub_cluster.data" >/dev/null 2>&1 &
  fi
  PERF_PIDS+=($!)
fi
mkdir -p "$TMP/pids"
PG=0 elixir --name "hubcl_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/cluster.exs \
  "$CP1" "$CP2" "$CP3" "$OS1,$OS2,$OS3" none1 none2 none3 "$BUILD/phnode" "$COOKIE" "$TMP/pids"
