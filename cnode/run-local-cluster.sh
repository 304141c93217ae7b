#!/usr/bin/env bash
# Runs a local phnode cluster on 127.0.0.1 in the foreground (make run).
# Every node registers with epmd (phnode starts epmd itself if needed).
# Ctrl-C stops them all (SIGTERM, orderly shutdown).
set -euo pipefail
BUILD=${BUILD:-build}
NODES=${NODES:-3}
COOKIE=${COOKIE:-phnode_demo}
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
names=()
for i in $(seq 1 "$NODES"); do names+=("ph$i@127.0.0.1"); done
for name in "${names[@]}"; do
  joins=()
  for other in "${names[@]}"; do [ "$other" = "$name" ] || joins+=(--join "$other"); done
  "$BUILD/phnode" --name "$name" --cookie "$COOKIE" "${joins[@]}" &
  PIDS+=($!)
  sleep 0.3
done
cat <<MSG

phnode cluster running: ${names[*]} (cookie $COOKIE). From another terminal:

  iex --name me@127.0.0.1 --cookie $COOKIE
  iex> {:ok, pid} = GenServer.call({:phnode, :"ph1@127.0.0.1"}, {:spawn, :counter, [0], []})
  iex> GenServer.call(pid, {:add, 5})
  5

Or with the control command:

  $BUILD/phnode ctl -n ph1@127.0.0.1 --cookie $COOKIE status

Ctrl-C stops the cluster.
MSG
wait
