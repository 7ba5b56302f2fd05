#!/usr/bin/env bash
# scripts/gpu-check.sh where there is no GPU: its .deb unpacking works, and with a build already
# made (--prebuilt) it reaches every GPU step and reports each as skipped with the reason,
# leaving a summary and the logs, and no more than 8 files.
#   tests/gpu_check_smoke.sh SOURCE_DIR BUILD_DIR
set -u
src=$(readlink -f "$1"); build=$(readlink -f "$2")
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
python=$(command -v python3) || { echo "skipped: no python3"; exit 77; }

# A package of one file, unpacked as dpkg -x would.
if command -v dpkg-deb > /dev/null; then
  mkdir -p "$work/pkg/DEBIAN" "$work/pkg/usr/share/capbench-test"
  printf 'Package: capbench-test\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n' \
    > "$work/pkg/DEBIAN/control"
  echo "payload" > "$work/pkg/usr/share/capbench-test/file.txt"
  dpkg-deb --build "$work/pkg" "$work/test.deb" > /dev/null || fail "dpkg-deb could not build"
  "$python" "$src/scripts/deb_extract.py" "$work/prefix" "$work/test.deb" > /dev/null ||
    fail "deb_extract failed"
  [ "$(cat "$work/prefix/usr/share/capbench-test/file.txt")" = payload ] || fail "file not unpacked"
fi
echo "not a package" > "$work/bad.deb"
"$python" "$src/scripts/deb_extract.py" "$work/prefix" "$work/bad.deb" 2> /dev/null
[ $? = 2 ] || fail "a file that is not a .deb should exit 2"

mkdir -p "$work/no-debs"
"$src/scripts/gpu-check.sh" --prebuilt --build "$build" --debs "$work/no-debs" \
  --out "$work/out" --budget 120 > "$work/run.txt" 2>&1
code=$?
summary=$work/out/summary.md
[ -s "$summary" ] || fail "no summary: $(cat "$work/run.txt")"
reason=$(grep -o "no CUDA device visible[^|]*\|torch:cuda is not available[^|]*\|no Python with PyTorch[^|]*" \
         "$summary" | head -1)
[ -n "$reason" ] || fail "the summary does not say why there is no GPU: $(cat "$summary")"
for name in gpu-tests gpu-suite virtual-tp pytorch-reference cuda-pacing-fidelity fidelity; do
  grep -q "^| $name | skipped: .* |" "$summary" || fail "$name is not reported skipped: $(cat "$summary")"
done
grep -q "^| compare | skipped: needs both reports" "$summary" || fail "compare: $(cat "$summary")"
[ $code = 0 ] || fail "exit $code with nothing failed: $(cat "$summary")"
[ -s "$work/out/logs.tar.gz" ] || fail "no logs archive"
[ "$(ls "$work/out" | wc -l)" -le 8 ] || fail "more than 8 files out: $(ls "$work/out")"
echo "ok: every GPU step skipped with the reason ($reason)"
