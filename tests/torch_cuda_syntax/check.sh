#!/bin/bash
# Syntax check of the torch backend's CUDA path on a machine with no CUDA libtorch: compiles
# backends/torch/torch_cuda.cpp and the registration with CAPBENCH_TORCH_CUDA against Debian's
# libtorch 1.13
# headers (which carry ATen's CUDA headers) and the CUDA toolkit's, twice - as 1.13 builds it,
# and as 2.11 does (the fused-kernel path, with the 2.x op declarations of torch2_ops.h).
# It proves the code parses and type-checks against those signatures, nothing more: the path
# runs only on a GPU. Exit 77 (ctest: skipped) when the headers are missing.
# Usage: check.sh SOURCE_DIR BUILD_DIR [CXX]
set -u
src=$1 build=$2 cxx=${3:-c++}
here=$(cd "$(dirname "$0")" && pwd)
cuda_include=""
for dir in /usr/local/cuda/include /usr/include; do
  [ -f "$dir/cuda_runtime_api.h" ] && cuda_include=$dir && break
done
torch_api=/usr/include/torch/csrc/api/include
if [ -z "$cuda_include" ] || [ ! -f /usr/include/ATen/cuda/CUDAGraph.h ] || [ ! -d "$torch_api" ]; then
  echo "skipped: needs the CUDA toolkit's headers and libtorch-dev's ATen/cuda headers"
  exit 77
fi
flags=(-std=gnu++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -Werror
       -D_GLIBCXX_USE_CXX11_ABI=1 -DCAPBENCH_TORCH_CUDA=1 -DCAPBENCH_HAVE_CUDA_PACING=1
       -I"$here" -I"$src" -I"$build/generated" -isystem "$torch_api" -isystem "$cuda_include")
status=0
echo "pass 1: as libtorch 1.13 with CUDA"
for file in torch_cuda.cpp torch_backend.cpp; do
  "$cxx" "${flags[@]}" "$src/backends/torch/$file" || status=1
done
echo "pass 1b: the c10d NCCL communicator, as libtorch 1.13 with CUDA builds it"
if [ -f "$cuda_include/nccl.h" ]; then
  "$cxx" "${flags[@]}" -DUSE_C10D_NCCL=1 -I"$src" "$src/backends/comm/nccl_communicator.cpp" ||
    status=1
else
  echo "  (no nccl.h in $cuda_include: not checked)"
fi
echo "pass 2: as libtorch 2.11 with CUDA (flash attention, fused AdamW)"
"$cxx" "${flags[@]}" -include "$here/as_torch_2_11.h" "$src/backends/torch/torch_cuda.cpp" ||
  status=1
[ $status = 0 ] && echo "ok: both passes compile"
exit $status
