#!/bin/bash
# soak.sh - the stress soak: every item of tests/stress for SECONDS each
# (default 120), with its figures. Not part of ctest, which runs each item
# for 8 seconds (label "stress"). docs/reliability.md lists what each proves.
#
#   scripts/soak.sh [SECONDS]        BUILD=build-dir (default ./build)
set -u
SECS=${1:-120}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$ROOT/build}
T=$B/tests/stress
for f in hs_stress_alloc hs_stress_fork hs_stress_control hs_stress_signals \
  hs_stress_dlopen libhs_stress_dl.so hs_sig_prog; do
  if [ ! -e "$T/$f" ]; then
    echo "soak.sh: $T/$f is missing: build first (cmake --build $B)," \
      "or set BUILD to the build directory" >&2
    exit 2
  fi
done
LIB=$(ls "$B"/lib/libheapsnap.so | head -1)
CHECK=$B/tests/faults/hs_snapcheck
echo "soak: $SECS s per item, 6 items, build $B"
fails=0
item() {
  local name=$1
  shift
  local t0=$SECONDS out
  out=$("$@" 2>&1)
  local rc=$?
  if [ $rc = 0 ]; then
    echo "$out" | tail -1
  else
    echo "FAIL $name (exit $rc after $((SECONDS - t0)) s):"
    echo "$out" | tail -20 | sed 's/^/  | /'
    fails=$((fails + 1))
  fi
}
item "a. every allocation function, 8 threads" "$T/hs_stress_alloc" "$SECS"
item "b. fork storm" "$T/hs_stress_fork" "$SECS"
item "c. dlopen/dlclose" "$T/hs_stress_dlopen" "$SECS" "$T/libhs_stress_dl.so"
item "d. start/stop/clear under load" "$T/hs_stress_control" "$SECS"
item "e. SIGUSR1 during allocation" "$T/hs_stress_signals" "$SECS"
item "e. HEAPSNAP_SIGNAL=USR2 storm" bash "$ROOT/tests/stress/signal_storm.sh" \
  "$SECS" "$LIB" "$CHECK" "$T/hs_sig_prog"
if [ $fails = 0 ]; then
  echo "soak: all 6 items passed"
else
  echo "soak: $fails of 6 items FAILED"
  exit 1
fi
