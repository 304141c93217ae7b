#!/usr/bin/env bash
# The join of bench/cluster.exs on its own, repeated: 3 phnodes, 100,000
# counter children started once, then K (3) times a 4th phnode launched with
# --join until it runs its share and every registry counts all children,
# then killed with kill -9 (the survivors settle before the next join).
# Prints one line a join: wall ms, CPU ms of the 4 nodes (/proc), children
# moved, load average. The node names are the same on every run (SUFFIX,
# default "hj"), so two builds move the same children: compare builds by
# alternating runs (BUILD=dir-with-phnode).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
S=${SUFFIX:-hj}
COOKIE="hubjoin_$RANDOM$RANDOM"
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for f in "$TMP"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM
epmd -daemon
mkdir -p "$TMP/pids"
P="$BUILD/phnode"
"$P" --name "a_$S@127.0.0.1" --cookie "$COOKIE" --log-level warning 2>"$TMP/1.log" &
PIDS+=($!)
"$P" --name "b_$S@127.0.0.1" --cookie "$COOKIE" --log-level warning --join "a_$S@127.0.0.1" 2>"$TMP/2.log" &
PIDS+=($!)
"$P" --name "c_$S@127.0.0.1" --cookie "$COOKIE" --log-level warning --join "a_$S@127.0.0.1" 2>"$TMP/3.log" &
PIDS+=($!)
elixir --name "hj_x_$S@127.0.0.1" --cookie "$COOKIE" bench/hub_join.exs \
  "a_$S@127.0.0.1" "b_$S@127.0.0.1" "c_$S@127.0.0.1" "${PIDS[0]},${PIDS[1]},${PIDS[2]}" \
  "$P" "$COOKIE" "$TMP/pids"
