#!/bin/bash
# check_symbols.sh - the exported dynamic symbols of libheapsnap and
# libreclayout against the committed lists, the prefixes the style allows,
# the header's declarations and the soname the header's major version names.
#
#   check_symbols.sh LIBHEAPSNAP LIBRECLAYOUT SOURCE_DIR
set -u
HS=$1 RL=$2 SRC=$3
W=$(mktemp -d /tmp/hs-abi.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# What the interposer must export beside the API: the malloc family, which
# is the whole point of preloading the library.
MALLOC_FAMILY='^(malloc|calloc|realloc|reallocarray|free|posix_memalign|aligned_alloc|memalign|valloc|pvalloc|malloc_usable_size)$'

exports() { nm -D --defined-only "$1" | awk '{print $NF}' | sort -u; }
listed() { grep -v '^#' "$1" | grep . | sort -u; }

check_lib() { # LIB LIST ALLOWED_REGEX
  local lib=$1 list=$2 allowed=$3 name
  name=$(basename "$lib")
  exports "$lib" >"$W/got"
  listed "$list" >"$W/want"
  [ -s "$W/got" ] || fail "$name: nm found no exports"
  for s in $(comm -23 "$W/got" "$W/want"); do
    fail "$name exports $s, which $(basename "$list") does not list"
  done
  for s in $(comm -13 "$W/got" "$W/want"); do
    fail "$name no longer exports $s (listed in $(basename "$list")): removing a symbol needs a new soname"
  done
  for s in $(grep -vE "$allowed" "$W/got"); do
    fail "$name exports $s: only hs_*, rl_* and the malloc family may be public"
  done
  echo "checked $(wc -l <"$W/got") exports of $name"
}

check_lib "$HS" "$SRC/tests/abi/heapsnap.symbols" "^hs_[a-z0-9_]+$|$MALLOC_FAMILY"
check_lib "$RL" "$SRC/tests/abi/reclayout.symbols" '^rl_[a-z0-9_]+$'

# Every function the header declares is exported, and every hs_ export is
# declared: a missing HS_API or a stray non-static function shows here.
grep -E '^HS_API' -A3 "$SRC/include/heapsnap.h" | grep -oE '\bhs_[a-z0-9_]+ *\(' |
  tr -d ' (' | sort -u >"$W/declared"
exports "$HS" | grep '^hs_' >"$W/hs_exports"
for s in $(comm -23 "$W/declared" "$W/hs_exports"); do
  fail "include/heapsnap.h declares $s but $(basename "$HS") does not export it"
done
for s in $(comm -13 "$W/declared" "$W/hs_exports"); do
  fail "$(basename "$HS") exports $s, which include/heapsnap.h does not declare"
done

# The soname follows the header's major version.
major=$(sed -nE 's/^#define HS_VERSION_MAJOR +([0-9]+)$/\1/p' "$SRC/include/heapsnap.h")
soname=$(readelf -d "$HS" | sed -nE 's/.*Library soname: \[(.*)\]/\1/p')
[ "$soname" = "libheapsnap.so.$major" ] ||
  fail "soname is '$soname', the header's major version $major wants libheapsnap.so.$major"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "PASS: exports match the lists and the header; soname $soname"
