#!/bin/bash
# signal_storm.sh - soak item e, launcher half: a program runs under the
# preload with HEAPSNAP_SIGNAL=USR2 while a storm of USR2 arrives; its
# output and status must equal an untraced run's, and every snapshot the
# storm caused must load. Runs again and again for SECONDS.
#
#   signal_storm.sh SECONDS LIB SNAPCHECK PROG
set -u
SECS=$1 LIB=$2 CHECK=$3 PROG=$4
ROUNDS=300
W=$(mktemp -d /tmp/hs-sigstorm.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$PROG" $ROUNDS >"$W/ref.out" 2>&1
REF_RC=$?
end=$(($(date +%s) + SECS))
runs=0 sent=0 snaps=0
while [ "$(date +%s)" -lt $end ] || [ $runs = 0 ]; do
  d="$W/run$runs"
  mkdir "$d"
  LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=16 HEAPSNAP_SIGNAL=USR2 \
    HEAPSNAP_OUTPUT="$d/s.%p.%n.hsnap" "$PROG" $ROUNDS >"$d/out" 2>"$d/err" &
  pid=$!
  # USR2 kills a process that has no handler yet: wait for heapsnap's.
  until grep -q '^SigCgt:' "/proc/$pid/status" 2>/dev/null &&
    (($(printf '%d' "0x$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status")") & (1 << 11))); do
    kill -0 $pid 2>/dev/null || break
  done
  n=0
  while kill -USR2 $pid 2>/dev/null; do n=$((n + 1)); done
  wait $pid
  rc=$?
  sent=$((sent + n))
  if [ $rc != $REF_RC ] || ! cmp -s "$d/out" "$W/ref.out"; then
    echo "FAIL run $runs: status $rc (untraced $REF_RC), stdout:"
    head -5 "$d/out"
    cat "$d/err"
    exit 1
  fi
  if grep -v '^heapsnap:' "$d/err" | grep -q . || grep -q 'cannot\|failed' "$d/err"; then
    echo "FAIL run $runs: stderr:"
    cat "$d/err"
    exit 1
  fi
  files=$(ls "$d"/*.hsnap 2>/dev/null)
  if ls "$d" | grep -q '\.tmp\.'; then
    echo "FAIL run $runs: a temporary file was left: $(ls "$d")"
    exit 1
  fi
  if [ -z "$files" ] || ! "$CHECK" $files >"$d/check"; then
    echo "FAIL run $runs: snapshots missing or unreadable"
    exit 1
  fi
  snaps=$((snaps + $(echo "$files" | wc -l)))
  rm -rf "$d"
  runs=$((runs + 1))
done
[ $sent -gt 0 ] || { echo "FAIL: no USR2 was delivered"; exit 1; }
echo "stress signal trigger: $SECS s, $runs runs, $sent USR2 sent, $snaps snapshots written and loaded (exit snapshots included): ok"
