#!/usr/bin/env bash
# Installs the Debian 12 packages capbench builds against, skipping those already present.
# Optional backends (libtorch, oneDNN) are installed too; the build turns a backend off with one
# configure message if its package is missing, so a failed optional install is not fatal.
set -euo pipefail

required=(cmake ninja-build g++ make pkg-config nlohmann-json3-dev libgtest-dev libcli11-dev
          libfmt-dev libsqlite3-dev ccache python3)
# libopenblas0-openmp: the OpenMP build of OpenBLAS, which capbench puts first on the library path
# for libtorch (see prefer_openmp_openblas in harness/main.cpp). python3-torch: PyTorch for
# benchmarks/pytorch_reference.py (its test runs it on the CPU; it skips without it).
# ocl-icd-opencl-dev: oneDNN's CMake package requires OpenCL, which libdnnl-dev only recommends.
# libgloo-dev: the headers libtorch's c10d ProcessGroupGloo.hpp includes (several ranks).
optional=(libtorch-dev libopenblas-dev libopenblas0-openmp libdnnl-dev ocl-icd-opencl-dev
          libgloo-dev python3-torch)

missing() {
  local out=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
  done
  echo "${out[@]:-}"
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_required=$(missing "${required[@]}")
need_optional=$(missing "${optional[@]}")
if [ -z "$need_required" ] && [ -z "$need_optional" ]; then
  exit 0
fi
echo "install-deps: installing ${need_required} ${need_optional}" >&2
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq
if [ -n "$need_required" ]; then
  # shellcheck disable=SC2086
  as_root apt-get install -y -qq --no-install-recommends $need_required >/dev/null
fi
if [ -n "$need_optional" ]; then
  # shellcheck disable=SC2086
  as_root apt-get install -y -qq --no-install-recommends $need_optional >/dev/null ||
    echo "install-deps: optional packages failed to install (${need_optional}); those backends will be off" >&2
fi
