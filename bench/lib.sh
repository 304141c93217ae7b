# bench/lib.sh: what the benchmark scripts share (sourced, not run): the
# build, unique node names and cookie, a temporary directory, and a cleanup
# on exit that stops every process the script added to PIDS.
#   source bench/lib.sh; bench_init COOKIE_PREFIX
BUILD=${BUILD:-build}
SUFFIX="$$_$RANDOM"
TMP=$(mktemp -d)
PIDS=()

bench_cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.3
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# bench_init PREFIX: the cookie, the cleanup trap, epmd running.
bench_init() {
  COOKIE="${1}_$RANDOM$RANDOM"
  trap bench_cleanup EXIT INT TERM
  epmd -daemon
}
