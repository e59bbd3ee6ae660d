#!/usr/bin/env bash
# Runs the C tests, the examples and the cvis command under valgrind's
# memcheck; any error or any definite/indirect leak fails.  Used by
# `make check-valgrind` on the normal (uninstrumented) build.  The examples
# and the command run with reduced sizes; the C tests run as they are
# (VALGRIND_TESTS, a list of test names, restricts them; VALGRIND_SKIP
# leaves some out; VALGRIND_ONLY_TESTS=1 runs no example; VALGRIND_OUT is
# where logs go, $BUILD/valgrind by default).
# Prints one line per program and the time taken; exit status: the number
# of programs that failed.
set -u
BUILD=${BUILD:-build}
out=${VALGRIND_OUT:-$BUILD/valgrind}
rm -rf "$out"
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-2}
vg=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect)
fails=0
runs=0
start=$(date +%s)

# run NAME PROGRAM ARGS...: the program under memcheck, its log in $out.
run() {
    local name=$1
    shift
    local t0=$(date +%s)
    "${vg[@]}" --log-file="$out/$name.vg" "$@" > "$out/$name.out" 2>&1
    local rc=$?
    runs=$((runs + 1))
    if [ $rc -ne 0 ] || [ -s "$out/$name.vg" ]; then
        fails=$((fails + 1))
        echo "valgrind: $name FAILED (exit $rc), see $out/$name.vg and $out/$name.out"
        head -30 "$out/$name.vg"
    else
        echo "valgrind: $name clean ($(( $(date +%s) - t0 )) s)"
    fi
}

tests=${VALGRIND_TESTS:-$(cd "$BUILD/tests" && ls test_* 2>/dev/null)}
for t in $tests; do
    case " ${VALGRIND_SKIP:-} " in *" $t "*) echo "valgrind: $t skipped"; continue ;; esac
    run "$t" "$BUILD/tests/$t"
done

if [ "${VALGRIND_ONLY_TESTS:-0}" = 1 ]; then
    echo "valgrind: $runs programs, $fails failed, $(( $(date +%s) - start )) s"
    exit $fails
fi

ex=$BUILD/examples
cvis=$BUILD/bin/cvis
w=$out/work
mkdir -p "$w"
run layers "$ex/layers"
# The tutorial's network is 128 x 128: training it, the tutorial and the
# demo take tens of minutes under memcheck.  VALGRIND_QUICK=1 (CI) trains
# it without valgrind and leaves the tutorial and the demo out.
train=(--train 8 --test 8 --epochs 1 --batch 8 --quiet)
if [ "${VALGRIND_QUICK:-0}" = 1 ]; then
    "$ex/train_shapes" -o "$w/shapes.npz" "${train[@]}" > "$out/train_shapes.out" 2>&1 ||
        { echo "valgrind: train_shapes failed natively"; fails=$((fails + 1)); }
    "$ex/tutorial" -w "$w/shapes.npz" -o "$w/tutorial" --steps 1 > "$out/tutorial.out" 2>&1 ||
        { echo "valgrind: tutorial failed natively"; fails=$((fails + 1)); }
else
    run train_shapes "$ex/train_shapes" -o "$w/shapes.npz" "${train[@]}"
    run tutorial "$ex/tutorial" -w "$w/shapes.npz" -o "$w/tutorial" --steps 2
    run demo "$ex/demo" -w "$w/shapes.npz" -o "$w/demo" --steps 2 --pointing 2 --quiet
fi
if [ -d /usr/share/datasets/fashion-mnist ]; then
    run train_fashion "$ex/train_fashion" --train 64 --test 32 --epochs 1 --batch 16 \
        -o "$w/fashion.npz" --quiet
fi

# the command on the model train_shapes saved as ONNX; the picture that
# maximize draws is the image that features and explain then read
img=$w/am.png
run cvis_layers "$cvis" layers "$w/shapes.onnx"
run cvis_filters "$cvis" filters "$w/shapes.onnx" 0 -o "$w/filters.png"
run cvis_maximize "$cvis" maximize "$w/shapes.onnx" 0 1 --steps 2 --range 0,1 -o "$img"
run cvis_features "$cvis" features "$w/shapes.onnx" "$img" 0 -o "$w/features.png"
run cvis_explain "$cvis" explain "$w/shapes.onnx" "$img" "$img" --method gradcam,saliency \
    --class 1 -o "$w/explain" --batch 2 --quiet
# and its error paths: a missing model, an unreadable image
"${vg[@]}" --log-file="$out/cvis_missing.vg" "$cvis" layers "$w/missing.onnx" > /dev/null 2>&1
[ -s "$out/cvis_missing.vg" ] && { fails=$((fails + 1)); echo "valgrind: cvis_missing FAILED"; } \
    || { runs=$((runs + 1)); echo "valgrind: cvis_missing clean"; }

echo "valgrind: $runs programs, $fails failed, $(( $(date +%s) - start )) s"
exit $fails
