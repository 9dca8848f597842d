#!/bin/bash
# old_consumer.sh - a program built against the 0.1 header needs
# libheapsnap.so.0; against the 1.x library (soname libheapsnap.so.1) the
# dynamic loader must refuse to start it, with a message that names the
# missing library, rather than run it on struct layouts it does not know.
#
#   old_consumer.sh OLD_CONSUMER V0_STUB_DIR NEW_LIBHEAPSNAP
set -u
PROG=$1 V0DIR=$2 NEWLIB=$3
W=$(mktemp -d /tmp/hs-abi-old.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

needed=$(readelf -d "$PROG" | sed -nE 's/.*\(NEEDED\).*\[(libheapsnap[^]]*)\]/\1/p')
[ "$needed" = "libheapsnap.so.0" ] ||
  fail "the old consumer needs '$needed', not libheapsnap.so.0: the test builds it wrong"
soname=$(readelf -d "$NEWLIB" | sed -nE 's/.*Library soname: \[(.*)\]/\1/p')
[ "$soname" = "libheapsnap.so.1" ] || fail "the new library's soname is '$soname'"
readelf -d "$PROG" | grep -qE '\((RPATH|RUNPATH)\)' &&
  fail "the old consumer has a run path: it could find the stub on its own"

# The binary itself is sound: with the 0.1 stand-in it runs.
out=$(LD_LIBRARY_PATH="$V0DIR" "$PROG" 2>&1)
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "old consumer ran" ||
  fail "the old consumer does not run against the 0.1 stand-in (exit $rc): $out"

# Against the 1.x library only: refused before main, by name. Alone in a
# directory, as on a system that has only 1.x installed (a build tree may
# still hold an old libheapsnap.so.0, which would rightly be used).
cp -L "$NEWLIB" "$W/$soname"
out=$(LD_LIBRARY_PATH="$W" "$PROG" 2>&1)
rc=$?
[ $rc -eq 127 ] || fail "against libheapsnap.so.1 the old consumer exited $rc, not 127 (refused): $out"
echo "$out" | grep -q "old consumer ran" && fail "the old consumer ran against libheapsnap.so.1"
echo "$out" | grep -qE "error while loading shared libraries: libheapsnap\.so\.0: cannot open shared object file" ||
  fail "the loader's message does not name libheapsnap.so.0: $out"
echo "loader says: $out"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "PASS: a 0.1 consumer is refused by the loader against libheapsnap.so.1, with a clear message"
