#!/usr/bin/env bash
# Downloads, on a Debian 12 machine, the .deb files of the build dependencies a GPU machine
# without Debian packages lacks (headers and libraries capbench builds against besides CUDA,
# PyTorch, CMake and Ninja), into a folder that scripts/gpu-check.sh unpacks there.
#
#   scripts/fetch-gpu-debs.sh [FOLDER]      (default: .gpu-debs, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-.gpu-debs}
packages=(nlohmann-json3-dev libcli11-dev libfmt-dev libfmt9 libgtest-dev libsqlite3-dev
          libsqlite3-0)
mkdir -p "$folder"
cd "$folder"
rm -f ./*.deb
apt-get download "${packages[@]}"
ls -1 ./*.deb
