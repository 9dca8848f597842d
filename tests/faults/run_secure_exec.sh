#!/bin/bash
# run_secure_exec.sh - in a secure-execution process (setuid, setgid) every
# HEAPSNAP_* variable is ignored: a program linked with heapsnap, made
# setuid root (then setgid root) and run as nobody with HEAPSNAP_FRAMES and
# HEAPSNAP_OUTPUT set, must not trace, write no file and say nothing. The
# same program without the bit must trace and write: the variables work.
#
#   run_secure_exec.sh PROG
set -u
PROG=$1
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
  echo "SKIPPED: needs root (to make a setuid-root copy) and setpriv" >&2
  exit 77
fi
W=$(mktemp -d /tmp/hs-secure.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
mkdir -m 1777 "$W/out"
install -m 755 -o root -g root "$PROG" "$W/plain"
install -m 4755 -o root -g root "$PROG" "$W/setuid"
install -m 2755 -o root -g root "$PROG" "$W/setgid"
fails=0
# as_nobody NAME PROG: runs PROG as nobody with the variables set.
as_nobody() {
  rm -f "$W/out"/*
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    env HEAPSNAP_FRAMES=8 HEAPSNAP_OUTPUT="$W/out/x.%p.%n.hsnap" \
    HEAPSNAP_FAULT_ALLOC=0 "$2" >"$W/$1.out" 2>"$W/$1.err"
}
as_nobody plain "$W/plain"
if [ "$(cat "$W/plain.out")" != "secure=0 tracing=1" ] ||
  ! ls "$W/out" | grep -q '\.hsnap$' ||
  ! grep -q 'heapsnap: fault injection' "$W/plain.err"; then
  echo "FAIL control: without the bit the variables should work:" \
    "$(cat "$W/plain.out") files: $(ls "$W/out") stderr: $(cat "$W/plain.err")"
  fails=1
else
  echo "ok control: $(cat "$W/plain.out"), wrote $(ls "$W/out")"
fi
for kind in setuid setgid; do
  as_nobody $kind "$W/$kind"
  out=$(cat "$W/$kind.out")
  if [ "$out" = "secure=0 tracing=1" ]; then
    echo "SKIPPED $kind: the kernel did not give secure execution (nosuid" \
      "mount?); nothing is proven" >&2
    exit 77
  fi
  if [ "$out" != "secure=1 tracing=0" ] || [ -n "$(ls "$W/out")" ] ||
    [ -s "$W/$kind.err" ]; then
    echo "FAIL $kind: stdout '$out', files '$(ls "$W/out")'," \
      "stderr '$(cat "$W/$kind.err")'"
    fails=1
  else
    echo "ok $kind: $out, no file, nothing on stderr"
  fi
done
# A bad value is not even read: no complaint either.
rm -f "$W/out"/*
setpriv --reuid=65534 --regid=65534 --clear-groups env HEAPSNAP_FRAMES=abc \
  "$W/setuid" >"$W/bad.out" 2>"$W/bad.err"
if [ -s "$W/bad.err" ]; then
  echo "FAIL setuid: HEAPSNAP_FRAMES=abc was parsed: $(cat "$W/bad.err")"
  fails=1
else
  echo "ok setuid: HEAPSNAP_FRAMES=abc not even parsed"
fi
exit $fails
