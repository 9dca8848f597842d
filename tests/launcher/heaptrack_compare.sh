#!/usr/bin/env bash
# heaptrack_compare.sh - heapsnap's peak traced bytes and allocation-call
# count equal heaptrack's for the same deterministic run of prog_leaky.
# Usage: heaptrack_compare.sh PROG_LEAKY LIBHEAPSNAP HERE
set -u
PROG=$1 LIB=$2 HERE=$3
if ! command -v heaptrack >/dev/null || ! command -v zstdcat >/dev/null ||
   ! command -v python3 >/dev/null; then
  echo "SKIP: heaptrack, zstd or python3 is not installed (the test set-up installs them)"
  exit 77
fi
work=$(mktemp -d /tmp/hs-ht.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
heaptrack -o "$work/ht" "$PROG" >"$work/ht.out" 2>&1 || { cat "$work/ht.out"; exit 1; }
file=$(ls "$work"/ht*.zst 2>/dev/null | head -1)
[ -n "$file" ] || { echo "FAIL: heaptrack wrote no data file"; cat "$work/ht.out"; exit 1; }
theirs=$(python3 "$HERE/heaptrack_compare.py" "$file") || exit 1
HS_STATS_FILE="$work/hs.txt" HEAPSNAP_AT_EXIT=0 HEAPSNAP_FRAMES=16 \
  LD_PRELOAD="$LIB" "$PROG" >/dev/null || exit 1
ours=$(cat "$work/hs.txt")
printed=$(heaptrack_print -f "$file" 2>/dev/null | sed -n 's/^peak heap memory consumption: //p')
echo "heaptrack (under main): $theirs   (heaptrack_print: peak $printed)"
echo "heapsnap:               $ours"
if [ "$theirs" = "$ours" ]; then
  echo "PASS: peak traced bytes and allocation calls agree"
  exit 0
fi
echo "FAIL: heapsnap and heaptrack disagree"
exit 1
