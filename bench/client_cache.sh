#!/usr/bin/env bash
# The Elixir client's benchmarks (bench/client_cache.exs): cache lookups vs
# Elixir's Registry, cache freshness after a kill -9, 100k starts through the
# client vs the raw GenServer.call (schedulers do not busy-wait: the VM's CPU
# time is the work done). Starts its own phnodes (through
# test/integration/support/ph_test.exs) and kills exactly those on exit.
#   BUILD=build bench/client_cache.sh [OUT_FILE]
# CLBENCH_SCRIPT=bench/client_start_phases.exs runs that script instead (the
# 100k start's client-side phases and ETS row shapes).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
OUT=${1:-/dev/null}
export PHNODE="$BUILD/phnode"
export PH_SAMPLE_LIB="$BUILD/test/libsample_worker.so"
export PH_SUFFIX="cb$$_$RANDOM"
export PH_TMPDIR
PH_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/phnode-clbench.XXXXXX")
export PH_PIDDIR="$PH_TMPDIR/pids"
mkdir -p "$PH_PIDDIR"
export PH_COOKIE="c$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
cleanup() {
  for f in "$PH_PIDDIR"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); case "$pid" in '' | *[!0-9]*) continue ;; esac
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$PH_TMPDIR"
}
trap cleanup EXIT INT TERM
epmd -names >/dev/null 2>&1 || epmd -daemon
elixir --name "clbench_$PH_SUFFIX@127.0.0.1" --cookie "$PH_COOKIE" \
  --erl "+P 4000000 +sbwt none +sbwtdcpu none +sbwtdio none -kernel net_ticktime 2" \
  "${CLBENCH_SCRIPT:-bench/client_cache.exs}" | tee -a "$OUT"
