#!/bin/bash
# run_snapdiff_dropped.sh - a snapshot that lost traces says so, and so does
# snapdiff's default (text) report of it: a reader must not take a partial
# picture for the whole heap.
#
#   run_snapdiff_dropped.sh LIB SNAPCHECK SNAPDIFF PROG
set -u
LIB=$1 CHECK=$2 SNAPDIFF=$3 PROG=$4
W=$(mktemp -d /tmp/hs-sddropped.XXXXXX)
trap 'rm -rf "$W"' EXIT
# 40+: the first 39 internal allocations succeed, so some traces are kept.
env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=16 HEAPSNAP_OUTPUT="$W/s.hsnap" \
  HEAPSNAP_FAULT_ALLOC=40+ "$PROG" >/dev/null 2>"$W/err"
info=$("$CHECK" "$W/s.hsnap") || exit 1
dropped=${info#* dropped=} dropped=${dropped%% *}
echo "snapshot: $info"
if [ "$dropped" = 0 ]; then
  echo "FAIL: every internal allocation from the 40th failed, yet dropped=0"
  exit 1
fi
"$SNAPDIFF" "$W/s.hsnap" >"$W/report" || exit 1
"$SNAPDIFF" --format json "$W/s.hsnap" | grep -q "\"dropped_traces\": $dropped" ||
  { echo "FAIL: snapdiff --format json does not report dropped_traces $dropped"; exit 1; }
if ! grep -i 'dropped\|lost\|not traced' "$W/report" | grep -q "$dropped"; then
  echo "FAIL: snapdiff's text report does not mention the $dropped dropped traces:"
  sed 's/^/  | /' "$W/report"
  exit 1
fi
echo "ok: snapdiff reports $dropped dropped traces"
