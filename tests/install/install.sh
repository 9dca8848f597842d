#!/usr/bin/env bash
# install.sh - installs the build into a temporary prefix, then builds and
# runs a consumer through find_package(heapsnap) (shared and static) and
# through pkg-config.
# Usage: install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1 src=$2
work=$(mktemp -d /tmp/hs-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in include/heapsnap.h include/reclayout.h lib/libheapsnap.so lib/libheapsnap.a \
         lib/pkgconfig/heapsnap.pc lib/cmake/heapsnap/heapsnapConfig.cmake bin/heapsnap bin/snapdiff; do
  ls "$work/prefix/$f" "$work/prefix/${f/lib\//lib/x86_64-linux-gnu/}" 2>/dev/null | grep -q . ||
    { echo "FAIL: $f not installed"; find "$work/prefix" | head -40; exit 1; }
done
cmake -S "$src/tests/install/consumer" -B "$work/consumer" \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
LD_LIBRARY_PATH="$work/prefix/lib:$work/prefix/lib/x86_64-linux-gnu" "$work/consumer/consumer_shared"
"$work/consumer/consumer_static"
pc=$(ls "$work"/prefix/lib*/pkgconfig/heapsnap.pc "$work"/prefix/lib/*/pkgconfig/heapsnap.pc 2>/dev/null | head -1)
export PKG_CONFIG_PATH=$(dirname "$pc")
cc "$src/tests/install/consumer/consumer.c" -o "$work/pc_consumer" \
  $(pkg-config --cflags --libs heapsnap)
LD_LIBRARY_PATH=$(pkg-config --variable=libdir heapsnap) "$work/pc_consumer"
echo "PASS: installed heapsnap found by CMake (shared, static) and pkg-config"
