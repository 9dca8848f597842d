#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets with clang in build/fuzz and runs each
# for SECONDS (default 60) on a copy of its seed corpus; fails on any crash.
#   bash scripts/fuzz.sh 20      # CI
#   bash scripts/fuzz.sh 3600    # the long run
set -uo pipefail

secs=${1:-60}
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
build=${HEAPSNAP_FUZZ_BUILD_DIR:-$root/build/fuzz}
targets=(fuzz_hsnap_load fuzz_snapdiff_args fuzz_reclayout_ops fuzz_http_request)

mkdir -p "$build" || exit 1
cmake -S "$root" -B "$build" -DHEAPSNAP_BUILD_FUZZERS=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DHEAPSNAP_SANITIZE_BUILD=ON -DHEAPSNAP_BUILD_EXAMPLES=OFF \
  -DHEAPSNAP_BUILD_BENCH=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" || exit 1

# Runs live in the build tree: the committed corpus never grows by itself
# (copy an input there by hand when it is worth keeping), and crash files
# outlive the run.
run=$build/runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  mkdir -p "$run/$t/corpus" "$run/$t/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$run/$t/corpus/"
  extra=()
  # Saved crashes are read as seeds too (libFuzzer writes only to the first
  # corpus directory), so a regression is retried on every run.
  reg=$root/tests/fuzz/regressions/$t
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then extra=("$reg"); fi
  "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
    -timeout=25 -artifact_prefix="$run/$t/artifacts/" \
    "$run/$t/corpus" "${extra[@]}" >"$run/$t/log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run/$t/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$run/$t/log" | tail -1)
  if [ $rc -ne 0 ]; then
    status=1
    echo "$t: FAILED (exit $rc) after ${execs:-?} executions; log: $run/$t/log"
    grep -E 'ERROR: |SUMMARY: |fuzz invariant failed' "$run/$t/log" | head -5 | sed 's/^/  /'
    for f in "$run/$t/artifacts/"*; do
      [ -e "$f" ] && echo "  crash input: $f"
    done
    echo "  reproduce: $build/tests/fuzz/$t <crash input>"
  else
    echo "$t: ok, ${execs:-?} executions in ${secs}s, ${cov:-cov: ?}"
  fi
done
exit $status
