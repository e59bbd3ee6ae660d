#!/usr/bin/env bash
# The whole suite: C tests, then the Python tests (pytest), then one closing
# line "TOTAL: N passed, M failed".  Used by `make check`.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

BUILD=$BUILD bash "$root/tests/run_c.sh" 2>&1 | tee "$log"
c_passed=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
c_failed=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
c_crashed=$(grep -c '^FAILED: ' "$log")

py_passed=0; py_failed=0
if [ -n "$PYTHON" ] && "$PYTHON" -c 'import pytest, numpy' 2>/dev/null; then
    CVIS_LIBRARY="$root/lib/libcvis.so" PYTHONPATH="$root/bindings/python" \
        "$PYTHON" -m pytest -q -rs "$root/tests/python" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # pytest's last line: "[===] 3 failed, 12 passed, 1 skipped in 2.1s [===]"
    line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|errors?|deselected|xfailed|xpassed)|^(=+ )?no tests ran' "$log" | tail -1)
    py_passed=$(echo "$line" | grep -o '[0-9][0-9]* passed' | awk '{s+=$1} END {print s+0}')
    py_failed=$(echo "$line" | grep -o '[0-9][0-9]* \(failed\|error\|errors\)' | awk '{s+=$1} END {print s+0}')
    py_passed=${py_passed:-0}
    if [ -z "$line" ]; then py_failed=1; echo "pytest did not report a result"; fi
    # pytest's own verdict counts too (collection errors, no tests found)
    if [ "$rc" -ne 0 ] && [ "$py_failed" -eq 0 ]; then
        py_failed=1
        echo "pytest exited with status $rc"
    fi
else
    echo "python with numpy and pytest not found: Python tests not run (make test-deps)"
    py_failed=1
fi
passed=$((c_passed + py_passed))
failed=$((c_failed + c_crashed + py_failed))
echo "TOTAL: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
