#!/bin/bash
# soak.sh - the stress soak under load: the items of tests/stress (and the
# tests that once failed only on a busy machine) in rounds, beside a CPU
# hog on every CPU, until TOTAL seconds have passed (default 600). Not part
# of ctest, which runs each item once in a short form (label "stress").
# docs/reliability.md lists what each item proves.
#
#   scripts/soak.sh [TOTAL]     BUILD=build-dir (default ./build)
#                               ITEM=seconds per timed item (default 20)
#                               FORKS=forks per fork_loader mode (400)
#                               HOGS=CPU hogs (default: one per CPU)
#                               TESTS=ctest regex run each round
#                                 (default 'test_defer|launcher_cli';
#                                 empty: none)
set -u
TOTAL=${1:-600}
ITEM=${ITEM:-20}
FORKS=${FORKS:-400}
TESTS=${TESTS-test_defer|launcher_cli}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$ROOT/build}
T=$B/tests/stress
for f in hs_stress_alloc hs_stress_fork hs_stress_control hs_stress_signals \
  hs_stress_dlopen hs_stress_forkjit libhs_stress_dl.so hs_sig_prog; do
  if [ ! -e "$T/$f" ]; then
    echo "soak.sh: $T/$f is missing: build first (cmake --build $B)," \
      "or set BUILD to the build directory" >&2
    exit 2
  fi
done
LIB=$(ls "$B"/lib/libheapsnap.so | head -1)
CHECK=$B/tests/faults/hs_snapcheck
HOGS=${HOGS:-$(nproc)}

# The hogs are this script's children, killed by their ids at any exit.
hog_pids=()
stop_hogs() {
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM
for ((i = 0; i < HOGS; i++)); do
  sh -c 'while :; do :; done' &
  hog_pids+=($!)
done

echo "soak: $TOTAL s in rounds beside $HOGS CPU hogs, build $B"
fails=0 runs=0 round=0
item() {
  local name=$1
  shift
  local t0=$SECONDS out
  out=$("$@" 2>&1)
  local rc=$?
  runs=$((runs + 1))
  if [ $rc = 0 ]; then
    echo "  ok $name: $(echo "$out" | tail -1)"
  else
    echo "  FAIL $name (exit $rc after $((SECONDS - t0)) s):"
    # The failing lines first (a test log's FAIL may be far from its end).
    echo "$out" | grep -E '^(FAIL|.*:[EF]:)' | head -20 | sed 's/^/  ! /'
    echo "$out" | tail -20 | sed 's/^/  | /'
    fails=$((fails + 1))
  fi
}
end=$((SECONDS + TOTAL))
while [ $SECONDS -lt $end ]; do
  round=$((round + 1))
  echo "round $round ($((end - SECONDS)) s left)"
  item "a. every allocation function, 8 threads" "$T/hs_stress_alloc" "$ITEM"
  item "b. fork storm" "$T/hs_stress_fork" "$ITEM"
  item "c. dlopen/dlclose" "$T/hs_stress_dlopen" "$ITEM" \
    "$T/libhs_stress_dl.so"
  item "d. start/stop/clear under load" "$T/hs_stress_control" "$ITEM"
  item "e. SIGUSR1 during allocation" "$T/hs_stress_signals" "$ITEM"
  item "e. HEAPSNAP_SIGNAL=USR2 storm" bash \
    "$ROOT/tests/stress/signal_storm.sh" "$ITEM" "$LIB" "$CHECK" \
    "$T/hs_sig_prog"
  item "f. fork against the loader (JIT, dlopen, exec, spawn)" bash \
    "$ROOT/tests/stress/fork_loader.sh" "$T/hs_stress_forkjit" "$LIB" \
    "$T/libhs_stress_dl.so" "$FORKS"
  if [ -n "$TESTS" ]; then
    item "g. ctest -R '$TESTS'" ctest --test-dir "$B" -R "$TESTS" \
      --output-on-failure
  fi
done
if [ $fails = 0 ]; then
  echo "soak: all $runs runs in $round rounds passed"
else
  echo "soak: $fails of $runs runs FAILED"
  exit 1
fi
