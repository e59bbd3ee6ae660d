#!/usr/bin/env bash
# Runs every C test binary under $BUILD/tests and prints their summaries.
# Exit status: the number of failing binaries (0 = all passed).
set -u
BUILD=${BUILD:-build}
fails=0
for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    if ! "$t"; then
        echo "FAILED: $t"
        fails=$((fails + 1))
    fi
done
exit $fails
