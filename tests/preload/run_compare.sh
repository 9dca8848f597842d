#!/usr/bin/env bash
# run_compare.sh - runs one command untraced and with LD_PRELOAD=libheapsnap,
# and fails loudly unless stdout, stderr and exit status are identical.
#
# usage: run_compare.sh [--status N] [--warn] [--need PROG] LIB FRAMES -- CMD...
#   --status N  the untraced run must exit N (keeps the comparison honest)
#   --warn      the traced stderr must be the untraced one plus exactly one
#               line starting with "heapsnap:" (a rejected HEAPSNAP_FRAMES)
#   --need PROG skip (exit 77) with a reason when PROG is not installed
set -u

expect_status= warn=0 need=
while [[ $# -gt 0 && $1 == --* && $1 != -- ]]; do
  case $1 in
  --status) expect_status=$2; shift 2 ;;
  --warn) warn=1; shift ;;
  --need) need=$2; shift 2 ;;
  *) echo "run_compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [[ $# -lt 4 || $3 != -- ]]; then
  echo "usage: run_compare.sh [options] LIB FRAMES -- CMD..." >&2
  exit 2
fi
lib=$1 frames=$2
shift 3

if [[ -n $need ]] && ! command -v "$need" >/dev/null 2>&1; then
  echo "SKIP: $need is not installed on this machine"
  exit 77
fi
if [[ ! -f $lib ]]; then
  echo "FAIL: preload library $lib does not exist" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
say_fail() { echo "FAIL: $*" >&2; fail=1; }

# timeout: a hang under the preload must fail the test, not stall ctest.
timeout 60 "$@" >"$tmp/u.out" 2>"$tmp/u.err"
us=$?
timeout 60 env LD_PRELOAD="$lib" HEAPSNAP_FRAMES="$frames" "$@" \
  >"$tmp/t.out" 2>"$tmp/t.err"
ts=$?

echo "command: $*"
echo "untraced exit $us, traced (HEAPSNAP_FRAMES=$frames) exit $ts"
[[ $us -eq 124 ]] && say_fail "the untraced run timed out"
[[ $ts -eq 124 ]] && say_fail "the traced run timed out (hang under the preload)"
if [[ -n $expect_status && $us -ne $expect_status ]]; then
  say_fail "the untraced run exited $us, the test expects $expect_status"
fi
[[ $us -ne $ts ]] && say_fail "exit status differs: untraced $us, traced $ts"

if ! cmp -s "$tmp/u.out" "$tmp/t.out"; then
  say_fail "stdout differs (untraced <, traced >):"
  diff "$tmp/u.out" "$tmp/t.out" | head -40 >&2
fi

if [[ $warn -eq 1 ]]; then
  nwarn=$(grep -c '^heapsnap:' "$tmp/t.err")
  if [[ $nwarn -ne 1 ]]; then
    say_fail "expected exactly one 'heapsnap:' line on stderr, got $nwarn:"
    cat "$tmp/t.err" >&2
  else
    echo "warning: $(grep '^heapsnap:' "$tmp/t.err")"
    grep -q 'HEAPSNAP_FRAMES' "$tmp/t.err" ||
      say_fail "the heapsnap: line does not name HEAPSNAP_FRAMES"
  fi
  grep -v '^heapsnap:' "$tmp/t.err" >"$tmp/t.err.rest"
  if ! cmp -s "$tmp/u.err" "$tmp/t.err.rest"; then
    say_fail "stderr (apart from the heapsnap: line) differs:"
    diff "$tmp/u.err" "$tmp/t.err.rest" | head -40 >&2
  fi
elif ! cmp -s "$tmp/u.err" "$tmp/t.err"; then
  say_fail "stderr differs (untraced <, traced >):"
  diff "$tmp/u.err" "$tmp/t.err" | head -40 >&2
fi

if [[ $fail -ne 0 ]]; then
  echo "FAILED: $*" >&2
  exit 1
fi
echo "identical: stdout $(wc -c <"$tmp/u.out") bytes, stderr $(wc -c <"$tmp/u.err") bytes, exit $us"
exit 0
