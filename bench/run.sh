#!/usr/bin/env bash
# Runs every benchmark side by side with the BEAM doing the same job in the
# same run, and writes the results to bench/results/<time>.json (one JSON
# object per line). Ratios matter, not absolute numbers: machines are noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
source bench/lib.sh
bench_init bench
mkdir -p bench/results
OUT="bench/results/$(date -u +%Y%m%dT%H%M%SZ).json"

PH="phbench_$SUFFIX@127.0.0.1"
BS="beambench_$SUFFIX@127.0.0.1"
bench_phnode "$PH" phnode.log
PH_OSPID=$BENCH_PID
bench_beam_server "$BS" beam.log
BEAM_OSPID=$BENCH_PID

echo "== the floor: a minimal C server's CPU per call over loopback (recv + sendmsg)"
"$BUILD/bench/loopback_floor" | tee "$OUT"

echo "== calls and sends (phnode vs a BEAM gen_server on another node), $ROUNDS rounds"
elixir --name "benchclient_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/client.exs "$PH" "$BS" "$ROUNDS" "$PH_OSPID" "$BEAM_OSPID" | tee -a "$OUT"

echo "== the floor of a BEAM caller's sequential calls: a C node that only answers, vs phnode and the BEAM"
BUILD="$BUILD" ROUNDS=$((ROUNDS * 2)) OUT="$OUT" bash bench/call_floor.sh

echo "== hub cluster: 3 phnodes vs 3 BEAM nodes with pg"
erlc -o "$TMP" bench/beam/ph_bench_pg.erl
CP1="phc1_$SUFFIX@127.0.0.1"; CP2="phc2_$SUFFIX@127.0.0.1"; CP3="phc3_$SUFFIX@127.0.0.1"
bench_cluster "$CP1" "$CP2" "$CP3"
BEAMS=()
for i in 1 2 3; do
  B="beampg${i}_$SUFFIX@127.0.0.1"
  BEAMS+=("$B")
  # shellcheck disable=SC2086 # the flags are words
  erl $BENCH_BEAM_KEEP_MEMORY -name "$B" -setcookie "$COOKIE" -noshell -pa "$TMP" -eval 'ok = ph_bench_pg:start()' >"$TMP/pg$i.log" 2>&1 &
  PIDS+=($!)
done
for B in "${BEAMS[@]}"; do bench_wait_beam "$B"; done
ELIXIR_ERL_OPTIONS="$BENCH_BEAM_KEEP_MEMORY" ROUNDS="$ROUNDS" elixir --name "benchcluster_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/cluster.exs \
  "$CP1" "$CP2" "$CP3" "$CLUSTER_OSPIDS" "${BEAMS[@]}" "$PHNODE" "$COOKIE" "$TMP/pids" | tee -a "$OUT"
for f in "$TMP"/pids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done

echo "== replication: 100k children, rf 3 vs rf 1, 5 phnodes each"
printf '{"redundancy_strategy": {"type": "replication", "replication_factor": 3}}' >"$TMP/rf3.json"
RF1=() RF3=()
for i in 1 2 3 4 5; do
  N1="rfone${i}_$SUFFIX@127.0.0.1" N3="rfthree${i}_$SUFFIX@127.0.0.1"
  J1=() J3=()
  [ "$i" -gt 1 ] && J1=(--join "${RF1[0]}") && J3=(--join "${RF3[0]}")
  bench_phnode "$N1" "rf1_$i.log" --no-beam-discovery "${J1[@]}"
  bench_phnode "$N3" "rf3_$i.log" --config "$TMP/rf3.json" --no-beam-discovery "${J3[@]}"
  RF1+=("$N1") RF3+=("$N3")
done
ROUNDS="$ROUNDS" elixir --name "benchrepl_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/replication.exs \
  "$(IFS=,; echo "${RF1[*]}")" "$(IFS=,; echo "${RF3[*]}")" | tee -a "$OUT"

echo "== migration: hot_swap vs cold_swap, a join with 30k counters and a graceful leave with 40k"
mkdir -p "$TMP/migpids"
ROUNDS="$ROUNDS" elixir --name "benchmig_$SUFFIX@127.0.0.1" --cookie "$COOKIE" bench/migration.exs \
  "$PHNODE" "$COOKIE" "$SUFFIX" "$TMP/migpids" "$TMP" | tee -a "$OUT"
for f in "$TMP"/migpids/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done

echo "== synchronization: gossip vs pubsub, 6 phnodes each"
BUILD="$BUILD" ROUNDS="$ROUNDS" bash bench/sync.sh | tee -a "$OUT"

echo "== TLS distribution: phnode vs a BEAM node with -proto_dist inet_tls"
BUILD="$BUILD" ROUNDS="$ROUNDS" OUT="$OUT" bash bench/tls.sh

echo "== 100k idle counter workers in one node"
C_SPAWN=$("$BUILD/bench/spawn_bench" 100000)
B_SPAWN=$(erl -noshell -pa "$TMP" -eval '{Us, Bytes} = ph_bench_server:spawn_many(100000), io:format("{\"workers\": 100000, \"spawn_ms\": ~p, \"bytes_per_worker\": ~p}~n", [Us div 1000, Bytes]), halt().')
echo "{\"scenario\": \"spawn_100k_idle_workers\", \"phnode\": $C_SPAWN, \"beam\": $B_SPAWN}" | tee -a "$OUT"
echo "== Elixir client (clients/elixir): cache lookups vs Registry, freshness after kill -9, 100k starts vs the raw call"
BUILD="$BUILD" ROUNDS="$ROUNDS" bash bench/client_cache.sh "$OUT" >/dev/null
grep '"scenario": "client_' "$OUT" || true
echo "results written to $OUT"
