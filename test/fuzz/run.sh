#!/usr/bin/env bash
# Runs the libFuzzer harnesses of test/fuzz/ (built by `make fuzz-build`).
#
#   test/fuzz/run.sh fuzz BUILD_DIR SECONDS   each target for SECONDS, growing
#                                             its corpus (test/fuzz/corpus/TARGET)
#   test/fuzz/run.sh replay BUILD_DIR         each target over its stored corpus
#                                             once (the smoke run of make test)
#
# Prints one line per target with its executions; exits non-zero on the
# first crash, leak or sanitizer report (the reproducer is left in
# BUILD_DIR/fuzz/artifacts/).
set -uo pipefail
cd "$(dirname "$0")/../.."
mode=$1
build=$2
seconds=${3:-60}
art="$build/fuzz/artifacts"
mkdir -p "$art"
total=0
status=0
for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] || continue
    name=$(basename "$bin")
    corpus="test/fuzz/corpus/${name#fuzz_}"
    mkdir -p "$corpus"
    log="$build/fuzz/$name.log"
    if [ "$mode" = replay ]; then
        "$bin" -runs=0 -rss_limit_mb=4096 -artifact_prefix="$art/$name-" "$corpus" >"$log" 2>&1
    else
        # new inputs go to a scratch directory; the stored corpus stays small
        scratch="$build/fuzz/corpus_$name"
        mkdir -p "$scratch"
        nice -n "${FUZZ_NICE:-0}" "$bin" -max_total_time="$seconds" -rss_limit_mb=4096 \
            -max_len=65536 -timeout=30 -print_final_stats=1 -artifact_prefix="$art/$name-" \
            "$scratch" "$corpus" >"$log" 2>&1
    fi
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    [ -n "$runs" ] || runs=$(grep -oE 'Done [0-9]+ runs|#[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)
    runs=${runs:-0}
    total=$((total + runs))
    if [ $rc -ne 0 ]; then
        echo "fuzz: $name FAILED (exit $rc), see $log"
        tail -30 "$log"
        status=1
    else
        echo "fuzz: $name ok, $runs executions ($mode)"
    fi
done
echo "fuzz: $total executions in total"
exit $status
