#!/usr/bin/env bash
# Synchronization strategies side by side in the same run: 6 phnodes with
# pubsub and 6 with gossip (recipients 3): registry messages sent per change
# (the hubs' phnode_hub_sync_messages_total{direction="sent"}) and the time
# until all 6 registries hold 10k children started through one member.
# Results: bench/results/sync-<time>.json (one JSON object per line).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
source bench/lib.sh
bench_init bench
mkdir -p bench/results
OUT="bench/results/sync-$(date -u +%Y%m%dT%H%M%SZ).json"
ARGS=()
for type in pubsub gossip; do
  echo "{\"synchronization_strategy\": {\"type\": \"$type\", \"sync_interval\": 600000}}" >"$TMP/$type.json"
  FIRST="sync${type}1_$SUFFIX@127.0.0.1"
  for i in 1 2 3 4 5 6; do
    NAME="sync${type}${i}_$SUFFIX@127.0.0.1"
    PORT=$((20000 + RANDOM % 20000))
    JOIN=()
    [ "$i" -gt 1 ] && JOIN=(--join "$FIRST")
    bench_phnode "$NAME" "$type$i.log" --net-ticktime 10 --no-beam-discovery \
      --config "$TMP/$type.json" --metrics-port "$PORT" "${JOIN[@]}"
    ARGS+=("$type" "$NAME" "$PORT")
  done
done
ROUNDS="$ROUNDS" elixir --name "benchsync_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/sync.exs "${ARGS[@]}" | tee "$OUT"
echo "results written to $OUT"
