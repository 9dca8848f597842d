#!/bin/bash
# check_man.sh - the manual pages cannot drift from the tools and the header:
# each option printed by `heapsnap --help` and `snapdiff --help` is in its
# page, each hs_ function declared in include/heapsnap.h is in heapsnap.3,
# the pages format without warnings, and `cmake --install` installs them.
#
#   check_man.sh HEAPSNAP SNAPDIFF SOURCE_DIR BUILD_DIR
set -u
HS=$1 SD=$2 SRC=$3 BUILD=$4
W=$(mktemp -d /tmp/hs-man.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# The page's text as a reader sees the words: roff escapes for '-' and the
# font changes removed, so `\-\-frames` and `\fB\-n\fR` read as options.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(em/ /g' "$1"; }

# Options as --help prints them: the words starting with - at the start
# of an option line ("  -n, --frames N ...", "      --at-peak ...").
options() { "$1" --help | grep -E '^ +-' | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | sort -u; }

check_page() { # TOOL PAGE
  local tool=$1 page=$2 n=0
  plain "$page" >"$W/page"
  for opt in $(options "$tool"); do
    n=$((n + 1))
    grep -qE -- "(^|[^A-Za-z-])$opt([^A-Za-z-]|\$)" "$W/page" ||
      fail "$(basename "$page"): option $opt of '$(basename "$tool") --help' is not described"
  done
  [ $n -ge 10 ] || fail "$(basename "$tool") --help: only $n options found; the parser is broken"
  echo "checked $n options of $(basename "$tool") --help against $(basename "$page")"
}
check_page "$HS" "$SRC/docs/man/heapsnap.1"
check_page "$SD" "$SRC/docs/man/snapdiff.1"

# Functions: every hs_NAME( in a declaration of the public header.
plain "$SRC/docs/man/heapsnap.3" >"$W/page3"
fns=$(grep -E '^HS_API' -A3 "$SRC/include/heapsnap.h" | grep -oE '\bhs_[a-z0-9_]+ *\(' |
  tr -d ' (' | sort -u)
n=0
for f in $fns; do
  n=$((n + 1))
  grep -qw -- "$f" "$W/page3" || fail "heapsnap.3: $f (include/heapsnap.h) is not described"
done
[ $n -ge 20 ] || fail "include/heapsnap.h: only $n functions found; the parser is broken"
echo "checked $n functions of include/heapsnap.h against heapsnap.3"

for p in heapsnap.1 snapdiff.1 heapsnap.3; do
  out=$(groff -man -ww -z "$SRC/docs/man/$p" 2>&1)
  [ -z "$out" ] || fail "$p: groff warns: $out"
done

# Installed where man(1) and bash-completion look.
if cmake --install "$BUILD" --prefix "$W/prefix" >"$W/install.log" 2>&1; then
  for f in share/man/man1/heapsnap.1 share/man/man1/snapdiff.1 share/man/man3/heapsnap.3 \
    share/bash-completion/completions/heapsnap share/bash-completion/completions/snapdiff; do
    [ -s "$W/prefix/$f" ] || fail "cmake --install did not install $f"
  done
  MANPATH="$W/prefix/share/man" man -P cat 3 heapsnap 2>/dev/null | grep -q hs_take_snapshot ||
    fail "man 3 heapsnap does not show the installed page"
else
  fail "cmake --install failed: $(tail -3 "$W/install.log")"
fi
echo "man pages: $fails failed"
[ $fails = 0 ]
