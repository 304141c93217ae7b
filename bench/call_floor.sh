#!/usr/bin/env bash
# The floor of a BEAM caller's call rate: bench/call_floor.exs against the
# BEAM echo server, phnode's echo worker and bench/call_floor.c (sleeping,
# spinning, and polling many connections), each on its own node, alternating
# in one run. Prints a JSON line per scenario (a sequential caller, CONC
# callers on one node, MANY_NODES client nodes), GenServer.call and raw calls
# (and appends them to $OUT when it is set).
#
#   BUILD=build ROUNDS=12 [CONC=8] [MANY_NODES=8] bench/call_floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-12}
source bench/lib.sh
bench_init benchfloor
FLOOR=$BUILD/bench/call_floor
[ -x "$FLOOR" ] || { echo "call_floor.sh: no $FLOOR (make $FLOOR)" >&2; exit 2; }

PH="phfloor_$SUFFIX@127.0.0.1"
BS="beamfloor_$SUFFIX@127.0.0.1"
FS="floorsleep_$SUFFIX@127.0.0.1"
FP="floorspin_$SUFFIX@127.0.0.1"
FL="floorpoll_$SUFFIX@127.0.0.1"
bench_beam_server "$BS" beam.log
BS_OS=$BENCH_PID
# shellcheck disable=SC2086 # PH_ARGS: extra phnode options, e.g. --busy-poll-mode latency
bench_phnode "$PH" phnode.log ${PH_ARGS:-}
PH_OS=$BENCH_PID
"$FLOOR" "$FS" "$COOKIE" sleep 2>"$TMP/fs.log" &
FS_OS=$!
PIDS+=("$FS_OS")
"$FLOOR" "$FP" "$COOKIE" spin 2>"$TMP/fp.log" &
FP_OS=$!
PIDS+=("$FP_OS")
"$FLOOR" "$FL" "$COOKIE" poll 2>"$TMP/fl.log" &
FL_OS=$!
PIDS+=("$FL_OS")
# registered with epmd once it listens (it answers no rpc: bench_wait_beam would hang)
for f in "$FS:fs" "$FP:fp" "$FL:fl"; do
  n=${f%%@*} log=$TMP/${f##*:}.log
  for _ in $(seq 1 50); do epmd -names | grep -q "name $n " && break || sleep 0.1; done
  epmd -names | grep -q "name $n " || { echo "call_floor.sh: $n did not register with epmd:" >&2; cat "$log" >&2; exit 1; }
done
LINES=$(elixir --name "floorclient_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/call_floor.exs \
  "$BS" "$PH" "$FS" "$FP" "$FL" "$BS_OS,$PH_OS,$FS_OS,$FP_OS,$FL_OS" "$ROUNDS")
echo "$LINES"
if [ -n "${OUT:-}" ]; then echo "$LINES" >>"$OUT"; fi
