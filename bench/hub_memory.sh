#!/usr/bin/env bash
# Where the resident memory of 3 phnodes holding 100,000 children goes
# (docs/benchmarks.md, memory per child): the resident-set growth of each
# node over one start, malloc's own figures on each node before and after
# (malloc_stats() called through gdb: bytes in use and per arena), the
# anonymous mappings above 1 MB resident, and what malloc_trim(0) gives
# back. Needs gdb. PRELOAD=build/bench/big_allocs.so also records the big
# allocations (/tmp/big_allocs.<pid>). BUILD=dir-with-phnode.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v gdb >/dev/null || { echo "hub_memory.sh needs gdb" >&2; exit 2; }
source bench/lib.sh
bench_init hubmem
S="hm_$SUFFIX"
LD_PRELOAD=${PRELOAD:-} bench_cluster "n1_$S@127.0.0.1" "n2_$S@127.0.0.1" "n3_$S@127.0.0.1"
anon() { for p in "${CLUSTER_PIDS[@]}"; do awk '/RssAnon/{a=$2} /RssFile/{f=$2} END{printf "%s/%s ", a, f}' "/proc/$p/status"; done; }
stats() {
  for i in 1 2 3; do
    local off; off=$(wc -l <"$TMP/$i.log")
    gdb -p "${CLUSTER_PIDS[$((i - 1))]}" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
    echo "node $i:"; tail -n +$((off + 1)) "$TMP/$i.log" | grep -a -E 'Arena|system bytes|in use' | paste -d' ' - - - | tr -s ' '
  done
}
elixir --name "hm_x_$S@127.0.0.1" --cookie "$COOKIE" bench/hub_memory.exs \
  "n1_$S@127.0.0.1" "n2_$S@127.0.0.1" "n3_$S@127.0.0.1" "$CLUSTER_OSPIDS" "$TMP/phase" &
EX=$!
for phase in before after; do
  until [ "$(cat "$TMP/phase" 2>/dev/null)" = "$phase" ]; do sleep 0.1; done
  echo "== $phase: anonymous/file resident kB by node: $(anon)"
  stats
  if [ "$phase" = after ]; then
    for p in "${CLUSTER_PIDS[@]}"; do
      echo "anonymous mappings over 1 MB resident, pid $p:"
      awk '/^[0-9a-f]+-[0-9a-f]+ /{r=$1; n=$6} /^Rss:/{if ($2 > 1024 && n !~ /\//) print "  " r, n, $2 " kB"}' "/proc/$p/smaps"
    done
    for p in "${CLUSTER_PIDS[@]}"; do gdb -p "$p" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 || true; done
    echo "after malloc_trim(0): anonymous/file resident kB by node: $(anon)"
  fi
  echo "$phase done" >"$TMP/phase"
done
wait "$EX"
