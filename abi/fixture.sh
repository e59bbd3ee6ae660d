#!/usr/bin/env bash
# Proves that `make abi-check` can fail: in a scratch copy of the sources
# (and of the object files, so that only what changes is rebuilt), it
#   1. adds a parameter to an exported function (cvis_image_width), builds
#      the shared library and expects abi/check.sh to FAIL;
#   2. adds a new exported function instead and expects it to PASS
#      (additions are allowed in a minor release).
#     abi/fixture.sh BUILD_DIR BASELINE MAJOR VERSION
set -u
build=$1 baseline=$2 major=$3 version=$4
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fails=0

# copy: the sources, and the objects with their times, so make rebuilds
# only the file each case edits (make -o include/cvis.h keeps the header's
# edit from rebuilding every object; only the edited function matters).
prepare() {
    rm -rf "$scratch/src"
    mkdir -p "$scratch/src/$build"
    cp -a "$root/Makefile" "$root/lib" "$root/include" "$root/pkgconfig" "$scratch/src/"
    cp -a "$root/$build/obj" "$scratch/src/$build/"
    rm -f "$scratch/src"/lib/libcvis.*
}
build_lib() {
    make -s -C "$scratch/src" -o include/cvis.h BUILD="$build" "lib/libcvis.so.$version" \
        > "$scratch/make.log" 2>&1 || { cat "$scratch/make.log"; return 1; }
}

prepare
sed -i 's/^CVIS_API int cvis_image_width(const cvis_image \*img);/CVIS_API int cvis_image_width(const cvis_image *img, int plane);/' \
    "$scratch/src/include/cvis.h"
sed -i 's/^CVIS_API int cvis_image_width(const cvis_image \*img)$/CVIS_API int cvis_image_width(const cvis_image *img, int plane)/' \
    "$scratch/src/lib/render/image.c"
grep -q 'cvis_image_width(const cvis_image \*img, int plane)' "$scratch/src/lib/render/image.c" ||
    { echo "abi fixture: could not edit cvis_image_width"; exit 1; }
touch "$scratch/src/lib/render/image.c"
if build_lib && ! bash "$root/abi/check.sh" "$scratch/src/lib/libcvis.so.$version" "$baseline" \
        "$scratch/src/include" "$major" > "$scratch/changed.log" 2>&1; then
    echo "abi fixture: a changed signature fails abi-check, as it must:"
    grep -m3 -E "FAILED|function .*cvis_image_width|parameter" "$scratch/changed.log" | sed 's/^/    /'
else
    echo "abi fixture: a changed signature was NOT caught"
    cat "$scratch/changed.log"
    fails=$((fails + 1))
fi

prepare
cat >> "$scratch/src/include/cvis.h.new" <<'H'
CVIS_API int cvis_abi_fixture_added(void);
H
sed -i '/^CVIS_API void cvis_image_free(cvis_image \*img);/r '"$scratch/src/include/cvis.h.new" \
    "$scratch/src/include/cvis.h"
printf '\nCVIS_API int cvis_abi_fixture_added(void)\n{\n    return 1;\n}\n' >> \
    "$scratch/src/lib/render/image.c"
if build_lib && bash "$root/abi/check.sh" "$scratch/src/lib/libcvis.so.$version" "$baseline" \
        "$scratch/src/include" "$major" > "$scratch/added.log" 2>&1; then
    echo "abi fixture: an added function passes abi-check, as it may"
else
    echo "abi fixture: an added function was refused"
    cat "$scratch/added.log"
    fails=$((fails + 1))
fi
exit $fails
