#!/usr/bin/env bash
# run_verify.sh LIB -- CMD...: runs CMD untraced and under LD_PRELOAD=LIB
# with HEAPSNAP_UNWIND=verify, where every capture made by the unwinding
# rules is made again by libunwind and compared frame for frame. Passes
# when the output and exit status are the same, every process of the run
# captured stacks through the rules, and no capture differed.
# With HS_SELF_CHECK=REGEX the program checks its own stacks instead (libunwind
# is not the reference there): it runs with the default unwinder, and its
# standard error must match REGEX.
set -u
lib=$1
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$@" >"$tmp/out0" 2>"$tmp/err0"
s0=$?
unwind=verify
[ -n "${HS_SELF_CHECK:-}" ] && unwind=fast
HEAPSNAP_FRAMES=${HS_FRAMES:-64} HEAPSNAP_UNWIND=$unwind \
  HEAPSNAP_UNWIND_LOG="$tmp/log" HEAPSNAP_AT_EXIT=0 LD_PRELOAD="$lib" \
  "$@" >"$tmp/out1" 2>"$tmp/err1"
s1=$?
fail=0
if [ "$s0" != "$s1" ]; then
  echo "FAIL: exit status $s1 traced, $s0 untraced"
  fail=1
fi
if ! cmp -s "$tmp/out0" "$tmp/out1"; then
  echo "FAIL: the output differs traced"
  diff "$tmp/out0" "$tmp/out1" | head -20
  fail=1
fi
if [ -n "${HS_SELF_CHECK:-}" ]; then
  if ! grep -Eq "$HS_SELF_CHECK" "$tmp/err1"; then
    echo "FAIL: its standard error does not match $HS_SELF_CHECK"
    fail=1
  fi
  cat "$tmp/err1"
  exit $fail
fi
if [ ! -s "$tmp/log" ]; then
  echo "FAIL: no process wrote its verify line"
  cat "$tmp/err1"
  exit 1
fi
# One line per process: pid= captures= frames= mismatches= unreached= rules= ...
awk '
  /^pid=/ {
    procs++
    for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] }
    if (kv[1] != "") {}
  }
  END {
    printf "verify: %d processes, %d captures, %d frames, %d rules learned, %d mismatches, %d unreached\n",
      procs, v["captures"], v["frames"], v["rules"], v["mismatches"], v["unreached"]
    if (v["captures"] == 0 || v["rules"] == 0) { print "FAIL: nothing was captured through the rules"; exit 1 }
    if (v["mismatches"] != 0 || v["unreached"] != 0) { print "FAIL: the rules and libunwind disagree"; exit 1 }
  }' "$tmp/log" || fail=1
grep '^mismatch:' "$tmp/log" | head -4
cat "$tmp/err1" | grep -v '^heapsnap:' | head -5
exit $fail
