#!/usr/bin/env bash
# run_real.sh - a real program with the leak check at exit (HEAPSNAP_LEAKS=1):
# stdout and exit status identical to the untraced run, and every snapshot
# it wrote carries the classes (the scan completed).
# usage: run_real.sh LIB SNAPDIFF NEED -- CMD...
set -u
lib=$1 snapdiff=$2 need=$3
shift 4
if ! command -v "$need" >/dev/null 2>&1; then
  echo "SKIP: $need is not installed"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
timeout 120 "$@" >u.out 2>u.err
us=$?
timeout 120 env LD_PRELOAD="$lib" HEAPSNAP_FRAMES=16 HEAPSNAP_LEAKS=1 \
  HEAPSNAP_OUTPUT="$tmp/snap.%p.hsnap" "$@" >t.out 2>t.err
ts=$?
echo "command: $*; untraced exit $us, with the leak check $ts"
fail=0
[[ $us -ne $ts ]] && { echo "FAIL: exit status differs"; fail=1; }
cmp -s u.out t.out || { echo "FAIL: stdout differs"; diff u.out t.out | head; fail=1; }
n=0
for f in "$tmp"/snap.*.hsnap; do
  [[ -e $f ]] || continue
  n=$((n + 1))
  if ! "$snapdiff" --leaks "$f" >"$f.txt" 2>&1; then
    echo "FAIL: $f has no leak classes:"; cat "$f.txt"; fail=1
  else
    echo "$(basename "$f"):"; head -6 "$f.txt" | tail -5
  fi
done
[[ $n -eq 0 ]] && { echo "FAIL: no snapshot written"; cat t.err; fail=1; }
exit $fail
