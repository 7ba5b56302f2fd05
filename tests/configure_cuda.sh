#!/usr/bin/env bash
# capbench's CUDA code is built for sm_90 with the shared CUDA runtime even when the libtorch
# found first has set CMAKE_CUDA_ARCHITECTURES to OFF (as a CUDA libtorch's CMake files do):
# configures with that variable OFF, the optional backends off to keep it quick, and checks the
# generated build. Exit 77 (ctest: skipped) without a CUDA compiler.
#   tests/configure_cuda.sh SOURCE_DIR BUILD_DIR
set -u
src=$(readlink -f "$1"); build=$2
command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ] ||
  { echo "skipped: no CUDA compiler"; exit 77; }
rm -rf "$build"
log=$(cmake -S "$src" -B "$build" -G Ninja -DCMAKE_CUDA_ARCHITECTURES=OFF \
      -DCAPBENCH_WITH_TORCH=OFF -DCAPBENCH_WITH_ONEDNN=OFF 2>&1) ||
  { echo "configure failed:"; printf '%s\n' "$log" | tail -20; exit 1; }
printf '%s\n' "$log" | grep -q "capbench: CUDA pacing ON (CUDA .*, sm_90)" ||
  { echo "configure does not build for sm_90:"; printf '%s\n' "$log" | grep capbench; exit 1; }
grep -q "arch=compute_90,code=\[compute_90,sm_90\]" "$build/build.ninja" ||
  { echo "pacing.cu is not compiled for sm_90"; grep -o "arch=[^ ]*" "$build/build.ninja" | head; exit 1; }
if grep -q "cudart_static" "$build/build.ninja"; then
  echo "the static CUDA runtime is linked: two runtimes in a process with libtorch's"; exit 1
fi
echo "ok: sm_90, shared CUDA runtime"
