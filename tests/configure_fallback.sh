#!/usr/bin/env bash
# An optional dependency whose own CMake package fails (oneDNN's requires OpenCL, here made
# unfindable) must turn its backend off with one message, never stop configure.
#
#   tests/configure_fallback.sh SOURCE_DIR BUILD_DIR [--build]
#
# Configures SOURCE_DIR into BUILD_DIR with -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON and checks
# that configure succeeds with onednn off and says why; with --build it also builds that
# configuration and runs its tests (make check-fallback).
set -u
src=$(readlink -f "$1"); build=$2; mode=${3:-}
rm -rf "$build"
log=$(cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_DISABLE_FIND_PACKAGE_OpenCL=ON 2>&1); code=$?
if [ $code -ne 0 ]; then
  echo "configure failed (exit $code):"; printf '%s\n' "$log" | tail -20; exit 1
fi
messages=$(printf '%s\n' "$log" | grep -c "onednn backend off")
if [ "$messages" -ne 1 ]; then
  echo "expected one message turning onednn off, got $messages:"; printf '%s\n' "$log" | grep capbench
  exit 1
fi
if ! grep -q "^CAPBENCH_WITH_ONEDNN:BOOL=OFF" "$build/CMakeCache.txt"; then
  echo "onednn is not off in $build/CMakeCache.txt"; exit 1
fi
printf '%s\n' "$log" | grep "onednn backend off"
[ "$mode" = "--build" ] || exit 0
cmake --build "$build" || exit 1
"$build/capbench" list | grep -q "onednn .*not available here: built without oneDNN: oneDNN's CMake package failed to load" ||
  { echo "capbench list does not say why onednn is off"; "$build/capbench" list; exit 1; }
# The fuzz and README checks are the same code as the full build's; the rest runs.
(cd "$build" && ctest --output-on-failure -j "$(nproc)" -E 'Readme|Fuzz|TorchCudaPath')
