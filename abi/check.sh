#!/usr/bin/env bash
# The ABI checks of `make abi-check`, on a built shared library:
#   1. abidiff against the baseline abi/libcvis.abi: any change other than
#      added functions or variables fails (abidiff's exit status, with added
#      symbols not counted);
#   2. only cvis_* symbols are exported;
#   3. the library references no exit, abort or assert (it never ends its
#      caller's process);
#   4. the SONAME is libcvis.so.MAJOR;
#   5. the header compiles alone as C99, C11 and C++17 with -Wall -Wextra
#      -Werror -pedantic (CC and CXX, cc and c++ by default).
#     abi/check.sh LIBRARY BASELINE HEADER_DIR MAJOR
# Exit status 0 when all hold.
set -u
lib=$1 baseline=$2 headers=$3 major=$4
fails=0
say() { echo "abi-check: $*"; }

report=$(abidiff --no-added-syms --headers-dir1 "$headers" --headers-dir2 "$headers" \
    "$baseline" "$lib" 2>&1)
rc=$?
if [ $rc -eq 0 ]; then
    say "abidiff against $(basename "$baseline"): no change (additions aside)"
else
    say "abidiff against $(basename "$baseline") FAILED (exit $rc: 1 error, 2 usage, 4 change, 8 incompatible change)"
    echo "$report" | head -60
    fails=$((fails + 1))
fi

others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^cvis_')
if [ -n "$others" ]; then
    say "exported symbols outside cvis_*: $(echo $others)"
    fails=$((fails + 1))
else
    say "exports: $(nm -D --defined-only "$lib" | wc -l) symbols, all cvis_*"
fi

enders=$(nm -D --undefined-only "$lib" | awk '{print $2}' | grep -E '^(exit|_exit|_Exit|abort|quick_exit|__assert_fail|__assert|err|errx)(@|$)')
if [ -n "$enders" ]; then
    say "the library references $(echo $enders)"
    fails=$((fails + 1))
else
    say "no exit, abort or assert referenced"
fi

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libcvis.so.$major" ]; then
    say "SONAME is '$soname', not libcvis.so.$major"
    fails=$((fails + 1))
else
    say "SONAME $soname"
fi
here=$(cd "$(dirname "$0")" && pwd)
for lang in c99 c11 c++17; do
    case $lang in
        c++*) cmd=("${CXX:-c++}" -x c++) ;;
        *) cmd=("${CC:-cc}" -x c) ;;
    esac
    if "${cmd[@]}" -std=$lang -Wall -Wextra -Werror -pedantic -I"$headers" -c "$here/header_test.c" \
        -o /dev/null; then
        say "cvis.h compiles as $lang"
    else
        say "cvis.h does not compile as $lang"
        fails=$((fails + 1))
    fi
done
exit $fails
