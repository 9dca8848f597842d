#!/bin/bash
# check_layers.sh - the layer order of lib/, written once: fails when a
# file in one layer includes a header of a layer above it (or of a layer
# it is not allowed to use), or when a folder has no place in the order.
#   check_layers.sh LIBDIR
#   check_layers.sh --self-test LIBDIR   (a copy with a lower layer calling
#                                         up, and a folder with no place,
#                                         must both be refused)
set -u
if [ "${1:-}" = --self-test ]; then
  t=$(mktemp -d)
  trap 'rm -rf "$t"' EXIT
  cp -r "${2:?usage: check_layers.sh --self-test LIBDIR}"/. "$t"/
  echo '#include "../session/session.h"' >>"$t/unwind/unwind.c"
  if out=$(bash "$0" "$t" 2>&1); then
    echo "layers self-test: unwind including session was not refused" >&2
    exit 1
  fi
  grep -q "unwind includes session" <<<"$out" || exit 1
  sed -i '$d' "$t/unwind/unwind.c"
  mkdir "$t/orphan"
  if bash "$0" "$t" >/dev/null 2>&1; then
    echo "layers self-test: a folder outside the order was not refused" >&2
    exit 1
  fi
  echo "layers self-test: both violations refused"
  exit 0
fi
lib=${1:?usage: check_layers.sh LIBDIR}

# Each line: a layer, then the layers it may include, below it. Data flows
# down: runtime > session > snapshot > symbolize, format > trace > unwind >
# common; the interposer is a leaf beside them that uses trace and unwind
# only; reclayout is a library of its own on the public API.
read -r -d '' ORDER <<'LAYERS'
runtime    session http leak snapshot symbolize format trace unwind interpose common
session    http leak snapshot symbolize format trace unwind common
http       snapshot symbolize format trace unwind common
leak       snapshot symbolize format trace unwind common
snapshot   symbolize format trace unwind common
symbolize  common
format     common
interpose  trace unwind common
trace      unwind common
unwind     common
common
reclayout
LAYERS

# Single includes allowed against the order, each with its reason: FILE
# HEADER. The format encodes and decodes struct hs_snapshot, so it needs
# the type; it calls nothing in the snapshot layer (dump.c calls it).
# (The leak check reaches down instead of being called up: it registers
# its result with the snapshot layer, hs__snapshot_set_class_source, and
# reads the registry of heapsnap's own threads kept in common.)
read -r -d '' EXCEPTIONS <<'EXC'
format/hsnap.h snapshot/snapshot.h
EXC

declare -A allowed known excepted
while read -r f h; do
  [ -n "$f" ] && excepted["$f $h"]=1
done <<<"$EXCEPTIONS"
while read -r layer deps; do
  [ -n "$layer" ] || continue
  known[$layer]=1
  allowed[$layer]=" $deps "
done <<<"$ORDER"

bad=0
for dir in "$lib"/*/; do
  layer=$(basename "$dir")
  if [ -z "${known[$layer]:-}" ]; then
    echo "layers: lib/$layer has no place in the layer order" \
      "(tests/layers/check_layers.sh)" >&2
    bad=1
    continue
  fi
  # Every quoted include that leaves the folder: "../X/..." or "X/...".
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "(\.\.\/)?([^/"]+)\/.*/\2/' <<<"$text")
    header=$(sed -E 's/.*#include "(\.\.\/)?([^"]+)".*/\2/' <<<"$text")
    [ "$target" = "$layer" ] && continue
    [ -n "${excepted["${file#"$lib"/} $header"]:-}" ] && continue
    if [[ "${allowed[$layer]}" != *" $target "* ]]; then
      echo "layers: ${file#"$lib"/}:$line: $layer includes $target," \
        "which it may not (allowed: ${allowed[$layer]:- none})" >&2
      bad=1
    fi
  done < <(grep -nE '#include "(\.\./)?[^/"]+/' "$dir"*.c "$dir"*.h 2>/dev/null |
    sed -E 's/^([^:]+):([0-9]+):/\1:\2:/')
done
if [ $bad = 0 ]; then
  echo "layers: every include in $lib follows the order"
fi
exit $bad
