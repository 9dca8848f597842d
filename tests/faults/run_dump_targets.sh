#!/bin/bash
# run_dump_targets.sh - the exit snapshot's directory is missing, read-only,
# or full: one clear line on stderr, the program unharmed (same stdout and
# exit status), and nothing under the final name nor a temporary file left.
#
#   run_dump_targets.sh LIB PROG
#
# Read-only and full need root (a read-only bind mount and a 64 KiB tmpfs
# in a private mount namespace, `unshare -m`): root ignores permission
# bits, so chmod cannot make a directory read-only for it. Without root or
# unshare those two cases are skipped, loudly (exit 77 if nothing ran).
set -u
LIB=$1 PROG=$2
W=$(mktemp -d /tmp/hs-dumptargets.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0 ran=0
"$PROG" >"$W/ref.out" 2>"$W/ref.err"
REF_RC=$?

# case NAME DIR EXPECT [WRAP...]: runs PROG with the exit snapshot in DIR,
# through the WRAP command (which prepares DIR) when given.
case_() {
  local name=$1 dir=$2 expect=$3
  shift 3
  local final="$dir/snap.hsnap"
  "$@" env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=16 HEAPSNAP_OUTPUT="$final" \
    "$PROG" >"$W/$name.out" 2>"$W/$name.err"
  local rc=$? bad=0
  [ $rc = "$REF_RC" ] || { echo "FAIL $name: exit status $rc, untraced $REF_RC"; bad=1; }
  cmp -s "$W/$name.out" "$W/ref.out" || { echo "FAIL $name: stdout differs"; bad=1; }
  if ! grep -qxF "heapsnap: cannot write $final: $expect" "$W/$name.err"; then
    echo "FAIL $name: expected 'heapsnap: cannot write $final: $expect' on stderr, got:"
    sed 's/^/  | /' "$W/$name.err"
    bad=1
  fi
  # The namespace's mounts are gone: what is left is what the run wrote
  # into the directory under them, which was listed inside (see WRAP).
  if [ -s "$W/$name.left" ]; then
    echo "FAIL $name: left behind: $(cat "$W/$name.left")"
    bad=1
  fi
  ran=$((ran + 1))
  if [ $bad = 0 ]; then
    echo "ok $name: $(grep '^heapsnap:' "$W/$name.err")"
  else
    fails=$((fails + 1))
  fi
}

# Missing directory: nothing may create it.
case_ missing "$W/nodir" "No such file or directory"
[ -e "$W/nodir" ] && { echo "FAIL missing: the directory was created"; fails=$((fails + 1)); }

if [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
  echo "SKIPPED read-only and full: they need root and unshare -m" \
    "(uid $(id -u)); only the missing-directory case ran" >&2
  [ $fails = 0 ] && exit 77
  exit 1
fi

# ns SETUP DIR: a wrapper that runs its arguments in a private mount
# namespace after SETUP, then records what DIR holds besides the filler.
cat >"$W/ns.sh" <<'EOF'
set -u
setup=$1 dir=$2 left=$3
shift 3
case $setup in
ro) mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" ;;
full) mount -t tmpfs -o size=64k hs-full "$dir" &&
  { dd if=/dev/zero of="$dir/filler" bs=4k 2>/dev/null; true; } ;;
partial) mount -t tmpfs -o size=64k hs-partial "$dir" ;;
esac || { echo "ns.sh: cannot prepare $dir" >&2; exit 99; }
"$@"
rc=$?
ls -A "$dir" | grep -vx filler >"$left"
exit $rc
EOF
mkdir "$W/ro" "$W/full" "$W/partial"
case_ readonly "$W/ro" "Read-only file system" \
  unshare -m --propagation private bash "$W/ns.sh" ro "$W/ro" "$W/readonly.left"
case_ full "$W/full" "No space left on device" \
  unshare -m --propagation private bash "$W/ns.sh" full "$W/full" "$W/full.left"
# 64 KiB, empty: the snapshot (about 95 KiB) fails half-way through.
case_ partial "$W/partial" "No space left on device" \
  unshare -m --propagation private bash "$W/ns.sh" partial "$W/partial" "$W/partial.left"
echo "dump targets: $ran cases, $fails failed"
[ $fails = 0 ]
