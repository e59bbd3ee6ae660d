#!/usr/bin/env bash
# Runs each fuzz target named on the command line for FUZZ_SECONDS seconds
# and prints one line per target: executions, corpus size, result.  Used by
# `make fuzz`.  Exit status: the number of targets that found a crash.
#
# Seeds: build/fuzz/seeds/<kind> (make_seeds.c, make_seeds.py) and the
# inputs of earlier crashes, tests/fuzz/regressions/<target>.  The corpus
# that grows is build/fuzz/corpus/<target>; crashes go to
# build/fuzz/crashes/<target>-*.
set -u
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# FUZZ_SEED: libFuzzer's random seed (empty: a new one each run).  CI fixes
# it, so that what a CI run tried, a rerun of the same commit tries again.
FUZZ_SEED=${FUZZ_SEED:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$FUZZ_DIR/crashes" "$FUZZ_DIR/logs"
# Leaks are errors too; a single input may run for 10 s at most.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
export OPENBLAS_NUM_THREADS=1
fails=0
for t in "$@"; do
    case $t in
        model) kind=onnx ;;
        *) kind=$t ;;
    esac
    corpus=$FUZZ_DIR/corpus/$t
    mkdir -p "$corpus" "$here/regressions/$t"
    extra=()
    [ -f "$here/$kind.dict" ] && extra+=(-dict="$here/$kind.dict")
    [ -n "$FUZZ_SEED" ] && extra+=(-seed="$FUZZ_SEED")
    log=$FUZZ_DIR/logs/$t.log
    "$FUZZ_DIR/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$FUZZ_DIR/crashes/$t-" "${extra[@]}" \
        "$corpus" "$FUZZ_DIR/seeds/$kind" "$here/regressions/$t" > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        result="no crash"
    else
        result="CRASH (exit $rc), see $log"
        fails=$((fails + 1))
        grep -m1 -E 'ERROR: |runtime error|broken promise|deadly signal|timeout' "$log" || true
        ls "$FUZZ_DIR"/crashes/"$t"-* 2>/dev/null | tail -3
    fi
    echo "fuzz_$t: ${execs:-?} executions in $FUZZ_SECONDS s, corpus $units files, peak RSS ${rss:-?} MB: $result"
done
exit $fails
