#!/bin/bash
# run_symlinks.sh - snapshot files are never written through a symlink
# planted at the final name or at the temporary name, and a %n name that
# is taken (by anyone's file) is skipped, never replaced. The victim, a
# file of another user, keeps its content and inode.
#
#   run_symlinks.sh LIB PROG SNAPCHECK PLANT_SO
set -u
LIB=$1 PROG=$2 CHECK=$3 PLANT=$4
W=$(mktemp -d /tmp/hs-symlinks.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
"$PROG" >"$W/ref.out"
REF_RC=$?

new_victim() {
  rm -f "$W/victim"
  echo "victim's data" >"$W/victim"
  chown 65534:65534 "$W/victim" 2>/dev/null
  VICTIM_STAT=$(stat -c '%i %s %Y %U' "$W/victim")
}
victim_intact() {
  [ "$(cat "$W/victim")" = "victim's data" ] &&
    [ "$(stat -c '%i %s %Y %U' "$W/victim")" = "$VICTIM_STAT" ]
}
# traced DIR TEMPLATE [PRELOAD_FIRST]: PROG with its exit snapshot there.
traced() {
  local pre=$LIB
  [ $# -gt 2 ] && pre="$3:$LIB"
  env LD_PRELOAD="$pre" HEAPSNAP_FRAMES=16 HEAPSNAP_OUTPUT="$1/$2" \
    PLANT_VICTIM="$W/victim" PLANT_MAX=3 "$PROG" >"$1.out" 2>"$1.err"
  local rc=$?
  [ $rc = $REF_RC ] && cmp -s "$1.out" "$W/ref.out" ||
    fail "$1: the program's output or status changed"
}

# 1. A symlink at the exact final name (fixed template): rename() replaces
#    the link itself; nothing is written through it.
new_victim
mkdir "$W/a"
ln -s "$W/victim" "$W/a/snap.hsnap"
traced "$W/a" snap.hsnap
victim_intact || fail "final-name symlink: the victim changed"
if [ -L "$W/a/snap.hsnap" ] || ! "$CHECK" "$W/a/snap.hsnap" >/dev/null; then
  fail "final-name symlink: snap.hsnap is not a complete snapshot file"
else
  echo "ok final-name symlink: the link was replaced by the snapshot, victim intact"
fi

# 2. %n template: a symlink to the victim at the first name is skipped
#    (the name is taken), and so is another user's regular file.
new_victim
mkdir "$W/b"
ln -s "$W/victim" "$W/b/s.0.hsnap"
echo "nobody's file" >"$W/b/s.1.hsnap"
chown 65534:65534 "$W/b/s.1.hsnap" 2>/dev/null
traced "$W/b" 's.%n.hsnap'
victim_intact || fail "%n symlink: the victim changed"
[ -L "$W/b/s.0.hsnap" ] || fail "%n symlink: the planted link was replaced"
[ "$(cat "$W/b/s.1.hsnap")" = "nobody's file" ] ||
  fail "%n: another user's file at s.1.hsnap was replaced"
if "$CHECK" "$W/b/s.2.hsnap" >/dev/null; then
  echo "ok %n names: a planted link and another user's file were skipped; s.2.hsnap written"
else
  fail "%n: no snapshot at the next free name s.2.hsnap"
fi

# 3. A dangling symlink at the first %n name: the target must not appear.
mkdir "$W/c"
ln -s "$W/c-created-by-attacker" "$W/c/s.0.hsnap"
traced "$W/c" 's.%n.hsnap'
[ -e "$W/c-created-by-attacker" ] &&
  fail "dangling symlink: heapsnap created its target"
found=0
for f in "$W"/c/s.*.hsnap; do
  [ -L "$f" ] || { "$CHECK" "$f" >/dev/null && found=1; }
done
[ $found = 1 ] && [ ! -e "$W/c-created-by-attacker" ] &&
  echo "ok dangling symlink: target not created, snapshot written"

# 4. A symlink planted at the exact temporary name, just before each of
#    the first 3 opens (a preloaded shim does it): O_EXCL|O_NOFOLLOW refuse
#    it and a fresh name is tried.
new_victim
mkdir "$W/d"
traced "$W/d" snap.hsnap "$PLANT"
planted=$(grep -c '^plant_open: planted' "$W/d.err")
victim_intact || fail "temp-name symlink: the victim changed"
[ "$planted" = 3 ] || fail "temp-name symlink: $planted plants, expected 3 (shim not in the path?)"
if [ -L "$W/d/snap.hsnap" ] || ! "$CHECK" "$W/d/snap.hsnap" >/dev/null; then
  fail "temp-name symlink: no complete snapshot after 3 planted names"
elif [ $fails = 0 ]; then
  echo "ok temp-name symlink: $planted links planted at the exact temporary names, none followed, victim intact"
fi
exit $((fails > 0))
