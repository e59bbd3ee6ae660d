#!/usr/bin/env bash
# Installs the Debian packages libcvis needs, only when some are missing.
#   tools/deps.sh build   what building needs
#   tools/deps.sh test    what the tests need too
# Safe to run twice; runs `apt-get update` first when it installs.
set -euo pipefail
build_pkgs="build-essential pkg-config libopenblas-dev libstb-dev zlib1g-dev"
test_pkgs="python3-numpy python3-pytest python3-torch python3-torchvision python3-onnx
 python3-matplotlib python3-pil
 clang libclang-rt-14-dev valgrind abigail-tools dataset-fashion-mnist
 python3-dask python3-distributed python3-pandas python3-venv python3-setuptools python3-pip
 python3-wheel"
want=$build_pkgs
[ "${1:-build}" = test ] && want="$build_pkgs $test_pkgs"
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all present"
    exit 0
fi
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
