#!/usr/bin/env bash
# Integration tests: real BEAM nodes (Elixir/ExUnit and Erlang/eunit) against
# real phnode processes. The single entry point of `make integration`.
#
#   BUILD=build test/integration/run.sh [TEST_FILE.exs ...]
#
# Every OS process the tests start writes its pid into $PH_PIDDIR; on exit
# (normal, failure or interrupt) this script kills exactly those pids and
# removes its temporary directory. Nothing is killed by name.
# Prints "N passed, N failed" at the end; exits non-zero if anything failed.
# With file arguments only those ExUnit files run (no rebar3 eunit).
# PH_KEEP_TMP=1 keeps the temporary directory (node logs) for inspection.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac

export PHNODE="$BUILD/phnode"
export PH_SAMPLE_LIB="$BUILD/test/libsample_worker.so"
export PH_STRATEGY_LIB="$BUILD/test/libby_name_strategy.so"
export PH_BAD_PEER="$BUILD/test/bad_peer"
export PH_SUFFIX="$$_${RANDOM}${RANDOM}"
export PH_TMPDIR
PH_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/phnode-it.XXXXXX")
export PH_PIDDIR="$PH_TMPDIR/pids"
mkdir -p "$PH_PIDDIR"
export PH_COOKIE
PH_COOKIE="c$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
NET_TICKTIME=2

kill_listed() {
    local f pid
    for f in "$PH_PIDDIR"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        case "$pid" in '' | *[!0-9]*) continue ;; esac
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
}

# Network namespaces of partition_test.exs whose test node is gone (a
# crash, a kill): removed before and after the tests (needs root; the
# script touches only what its runs created).
sweep_netns() {
    [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1 &&
        "$ROOT/test/integration/support/netns.sh" sweep || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    kill_listed
    sweep_netns
    if [ -n "${PH_KEEP_TMP:-}" ]; then
        echo "integration: kept $PH_TMPDIR" >&2
    else
        rm -rf "$PH_TMPDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "integration: interrupted" >&2; exit 130' INT
trap 'echo "integration: terminated" >&2; exit 143' TERM

for f in "$PHNODE" "$PH_SAMPLE_LIB"; do
    if [ ! -e "$f" ]; then
        echo "integration: $f not found (run make first)" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
done

sweep_netns

# epmd is shared by every node on the host: start it if needed, never stop it.
if ! epmd -names >/dev/null 2>&1; then
    epmd -daemon
    for _ in $(seq 50); do epmd -names >/dev/null 2>&1 && break; sleep 0.1; done
fi

total_pass=0
total_fail=0
failed_files=()

# Runs "$@" in the background (pid recorded), output to the terminal and to
# $out; returns its exit status.
run_recorded() {
    local out=$1 name=$2
    shift 2
    "$@" > >(tee "$out") 2>&1 &
    local pid=$!
    echo "$pid" >"$PH_PIDDIR/$name.$pid.pid"
    wait "$pid"
    local rc=$?
    rm -f "$PH_PIDDIR/$name.$pid.pid"
    # let tee finish writing
    sleep 0.2
    return "$rc"
}

# Adds up the ExUnit summary of $1 ("12 tests, 1 failure, 2 invalid, 3 skipped").
count_exunit() {
    local out=$1 rc=$2 file=$3
    local line tests failures invalid skipped n
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep -E '[0-9]+ tests?, [0-9]+ failures?' | tail -1)
    if [ -z "$line" ]; then
        echo "integration: $file: no ExUnit summary (exit $rc); counted as 1 failure" >&2
        total_fail=$((total_fail + 1))
        failed_files+=("$file")
        return
    fi
    tests=$(echo "$line" | grep -oE '[0-9]+ tests?' | grep -oE '[0-9]+')
    failures=$(echo "$line" | grep -oE '[0-9]+ failures?' | grep -oE '[0-9]+')
    invalid=$(echo "$line" | grep -oE '[0-9]+ invalid' | grep -oE '[0-9]+' || true)
    skipped=0
    for n in $(echo "$line" | grep -oE '[0-9]+ (skipped|excluded)' | grep -oE '[0-9]+' || true); do
        skipped=$((skipped + n))
    done
    local bad=$((failures + ${invalid:-0}))
    total_fail=$((total_fail + bad))
    total_pass=$((total_pass + tests - bad - skipped))
    if [ "$bad" -gt 0 ] || [ "$rc" -ne 0 ]; then
        failed_files+=("$file")
        if [ "$bad" -eq 0 ]; then
            echo "integration: $file exited $rc with no failing test; counted as 1 failure" >&2
            total_fail=$((total_fail + 1))
        fi
    fi
}

# --- ExUnit files ---------------------------------------------------------------
if [ $# -gt 0 ]; then
    files=("$@")
else
    files=(test/integration/*_test.exs)
fi

for file in "${files[@]}"; do
    [ -e "$file" ] || continue
    base=$(basename "$file" .exs)
    out="$PH_TMPDIR/$base.out"
    echo "==== $file"
    run_recorded "$out" "elixir_$base" \
        elixir --name "t_${base}_${PH_SUFFIX}@127.0.0.1" --cookie "$PH_COOKIE" \
        --erl "-kernel net_ticktime $NET_TICKTIME" "$file"
    rc=$?
    count_exunit "$out" "$rc" "$file"
done

# --- rebar3 eunit in rebar_fixture against one phnode ------------------------------
run_rebar_fixture() {
    local fixture="$ROOT/rebar_fixture"
    [ -f "$fixture/rebar.config" ] || return 0
    echo "==== rebar_fixture (rebar3 eunit)"
    if ! command -v rebar3 >/dev/null 2>&1; then
        echo "integration: rebar3 not found" >&2
        total_fail=$((total_fail + 1))
        failed_files+=(rebar_fixture)
        return
    fi
    local alive="ph_eunit_${PH_SUFFIX}"
    local node="$alive@127.0.0.1"
    local log="$PH_TMPDIR/$alive.log"
    "$PHNODE" --name "$node" --cookie "$PH_COOKIE" --net-ticktime "$NET_TICKTIME" \
        </dev/null >>"$log" 2>&1 &
    local ph_pid=$!
    echo "$ph_pid" >"$PH_PIDDIR/phnode_$alive.$ph_pid.pid"
    local ready=0
    for _ in $(seq 150); do
        if grep -q "ready: node=$node" "$log" 2>/dev/null; then ready=1; break; fi
        kill -0 "$ph_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "$ready" != 1 ]; then
        echo "integration: phnode $node did not become ready; log:" >&2
        tail -40 "$log" >&2
        total_fail=$((total_fail + 1))
        failed_files+=(rebar_fixture)
        return
    fi
    local out="$PH_TMPDIR/rebar_fixture.out"
    local rhome="$PH_TMPDIR/rebar_home"
    mkdir -p "$rhome"
    (
        cd "$fixture" &&
            HOME="$rhome" REBAR_CACHE_DIR="$rhome/cache" REBAR_GLOBAL_CONFIG_DIR="$rhome/config" \
                REBAR_BASE_DIR="$PH_TMPDIR/rebar_build" REBAR_COLOR=none \
                REBAR_OFFLINE=1 PHNODE_NODE="$node" PHNODE_COOKIE="$PH_COOKIE" \
                exec rebar3 eunit
    ) > >(tee "$out") 2>&1 &
    local rpid=$!
    echo "$rpid" >"$PH_PIDDIR/rebar3.$rpid.pid"
    wait "$rpid"
    local rc=$?
    rm -f "$PH_PIDDIR/rebar3.$rpid.pid"
    sleep 0.2
    kill -TERM "$ph_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$ph_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$ph_pid" 2>/dev/null; then
        echo "integration: phnode $node ignored SIGTERM for 10 s" >&2
        kill -KILL "$ph_pid" 2>/dev/null
    fi
    wait "$ph_pid" 2>/dev/null
    rm -f "$PH_PIDDIR/phnode_$alive.$ph_pid.pid"

    # eunit: "All 5 tests passed." | "Failed: 1.  Skipped: 0.  Passed: 4." |
    #        "One test passed." | "There were no tests to run."
    local text passed=0 failed=0
    text=$(sed 's/\x1b\[[0-9;]*m//g' "$out")
    if echo "$text" | grep -qE 'All [0-9]+ tests passed'; then
        passed=$(echo "$text" | grep -oE 'All [0-9]+ tests passed' | tail -1 | grep -oE '[0-9]+')
    elif echo "$text" | grep -q 'Test passed\.\|One test passed\.'; then
        passed=1
    elif echo "$text" | grep -qE 'Failed: [0-9]+\.'; then
        failed=$(echo "$text" | grep -oE 'Failed: [0-9]+' | tail -1 | grep -oE '[0-9]+')
        passed=$(echo "$text" | grep -oE 'Passed: [0-9]+' | tail -1 | grep -oE '[0-9]+')
        local cancelled
        cancelled=$(echo "$text" | grep -oE 'Cancelled: [0-9]+' | tail -1 | grep -oE '[0-9]+' || true)
        failed=$((failed + ${cancelled:-0}))
    fi
    if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
        echo "integration: rebar3 eunit exited $rc; counted as 1 failure" >&2
        failed=1
    fi
    if [ "$failed" -gt 0 ]; then
        failed_files+=(rebar_fixture)
        echo "---- tail of $log ----"
        tail -40 "$log"
    fi
    total_pass=$((total_pass + passed))
    total_fail=$((total_fail + failed))
}

if [ $# -eq 0 ]; then
    run_rebar_fixture
fi

echo
if [ ${#failed_files[@]} -gt 0 ]; then
    echo "integration: failures in: ${failed_files[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_files[@]} -eq 0 ]
