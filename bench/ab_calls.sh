#!/usr/bin/env bash
# A/B comparison of two phnode builds on the call scenarios of
# bench/client.exs (sequential, 8 callers on one node, 8 client nodes x 1
# caller, calls 1 ms apart), each against the same BEAM server in the same
# run. Both phnodes and the BEAM server stay up; client.exs runs against A,
# then B, then A, ... (ONLY=calls, ROUNDS=1 per run: 4 paired rounds against
# the BEAM). Prints each run's JSON lines prefixed with the build, then the
# medians per build and scenario of the ratio to the BEAM and of the server
# CPU per call.
#
#   bench/ab_calls.sh BASE_PHNODE NEW_PHNODE [RUNS] [EXTRA_NEW_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
A_BIN=$1
B_BIN=$2
RUNS=${3:-3}
shift $(($# < 3 ? $# : 3))
[ -x "$B_BIN" ] || { echo "ab_calls.sh: no $B_BIN" >&2; exit 2; }
PHNODE=$A_BIN
source bench/lib.sh
bench_init benchab

PA="phab_a_$SUFFIX@127.0.0.1"
PB="phab_b_$SUFFIX@127.0.0.1"
BS="beamab_$SUFFIX@127.0.0.1"
bench_phnode "$PA" a.log
A_OS=$BENCH_PID
PHNODE=$B_BIN bench_phnode "$PB" b.log "$@"
B_OS=$BENCH_PID
bench_beam_server "$BS" beam.log
BS_OS=$BENCH_PID
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
OUT="$TMP/ab.txt"
for i in $(seq 1 "$RUNS"); do
  for side in A B; do
    if [ "$side" = A ]; then ph=$PA; os=$A_OS; else ph=$PB; os=$B_OS; fi
    ONLY=calls elixir --name "abclient_${side}${i}_$SUFFIX@127.0.0.1" --cookie "$COOKIE" \
      bench/client.exs "$ph" "$BS" 1 "$os" "$BS_OS" | sed "s/^/$side /" | tee -a "$OUT"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%S) UTC"
# medians per build and scenario
python3 - "$OUT" <<'PY'
import json, sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    side, _, js = line.partition(' ')
    try:
        r = json.loads(js)
    except ValueError:
        continue
    rows.setdefault((r['scenario'], side), []).append(r)
for (scen, side), rs in sorted(rows.items()):
    med = lambda k: st.median(x[k] for x in rs)
    print(f"{scen:28} {side}: ratio {med('ratio'):.2f} (runs {[x['ratio'] for x in rs]}), "
          f"cpu {med('phnode_cpu_us_per_op'):.1f} / {med('beam_cpu_us_per_op'):.1f} us "
          f"= {med('phnode_cpu_us_per_op') / med('beam_cpu_us_per_op'):.2f}")
PY
