#!/bin/bash
# run_badinput.sh - snapdiff and heapsnap given hostile inputs and outputs.
# Every case runs under `timeout 20` (a hang is a failure: a FIFO with no
# writer must be refused, not waited on) and checks the exit status, the
# one stderr line naming the file, and that nothing changed: the checksums
# of every file in the work tree, where each symlink points, and no
# temporary file left behind.
#
#   run_badinput.sh SNAPDIFF HEAPSNAP LIBHEAPSNAP PROG_LOSSY
set -u
SD=$1 HS=$2 LIB=$3 LOSSY=$4
W=$(mktemp -d /tmp/hs-badinput.XXXXXX)
trap 'rm -rf "$W"' EXIT
D=$W/d # everything a case may touch
mkdir -p "$D/adir" "$W/out"
fails=0 ran=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# The state of D: contents and kind of every entry, link targets.
state() {
  (cd "$D" && find . -printf '%p %y %l\n' | sort &&
    find . -type f -exec sha256sum {} + | sort -k2)
}

# run NAME RC PATTERN CMD...: CMD exits RC and prints exactly one stderr
# line matching the extended regex PATTERN; D is unchanged.
run() {
  local name=$1 want=$2 pat=$3
  shift 3
  state >"$W/before"
  timeout 20 "$@" >"$W/out/$name.out" 2>"$W/out/$name.err" </dev/null
  local rc=$? bad=0
  ran=$((ran + 1))
  if [ $rc = 124 ]; then
    fail "$name: timed out after 20 s (blocked?)"
    return
  fi
  [ $rc = "$want" ] || { fail "$name: exit status $rc, expected $want"; bad=1; }
  local lines
  lines=$(wc -l <"$W/out/$name.err")
  if [ "$lines" != 1 ] || ! grep -qE -- "$pat" "$W/out/$name.err"; then
    fail "$name: expected one stderr line matching '$pat', got:"
    sed 's/^/  | /' "$W/out/$name.err"
    bad=1
  fi
  state >"$W/after"
  if ! cmp -s "$W/before" "$W/after"; then
    fail "$name: files changed:"
    diff "$W/before" "$W/after" | sed 's/^/  | /'
    bad=1
  fi
  [ $bad = 0 ] && echo "ok $name: $(cat "$W/out/$name.err")"
}

# ---- inputs ----
"$HS" run -q --no-follow -o "$D/good.hsnap" -- "$LOSSY" >/dev/null
[ "$?" = 3 ] && [ -s "$D/good.hsnap" ] || { echo "FAIL cannot make a snapshot to work on"; exit 1; }
cp "$D/good.hsnap" "$D/second.hsnap"
head -c 200 "$D/good.hsnap" >"$D/truncated.hsnap"
head -c 4096 /dev/urandom >"$D/random.hsnap"
: >"$D/empty.hsnap"
mkfifo "$D/fifo"
ln -s good.hsnap "$D/link-to-good.hsnap"
ln "$D/good.hsnap" "$D/hardlink-to-good.hsnap"
echo "not a snapshot: the victim" >"$D/victim.txt"
printf 'plain file\n' >"$D/notadir"
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
$PY -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$D/sock" ||
  fail "cannot make a socket"

run sd_directory 1 "^snapdiff: $D/adir: not a regular file \(a directory\)$" "$SD" "$D/adir"
run sd_dev_zero 1 "^snapdiff: /dev/zero: not a regular file \(a character device\)$" "$SD" /dev/zero
run sd_fifo_no_writer 1 "^snapdiff: $D/fifo: not a regular file \(a FIFO\)$" "$SD" "$D/fifo"
run sd_fifo_second 1 "^snapdiff: $D/fifo: not a regular file \(a FIFO\)$" "$SD" "$D/good.hsnap" "$D/fifo"
run sd_socket 1 "^snapdiff: $D/sock: not a regular file \(a socket\)$" "$SD" "$D/sock"
run sd_truncated 1 "^snapdiff: $D/truncated.hsnap: .*(truncated|bad magic|too short)" "$SD" "$D/truncated.hsnap"
run sd_random 1 "^snapdiff: $D/random.hsnap: not a heapsnap file" "$SD" "$D/random.hsnap"
run sd_empty 1 "^snapdiff: $D/empty.hsnap: " "$SD" "$D/empty.hsnap"
run sd_missing 1 "^snapdiff: $D/nothere.hsnap: cannot open: No such file or directory$" "$SD" "$D/nothere.hsnap"

# ---- outputs ----
run sd_output_missing_dir 1 "^snapdiff: $D/nodir/r.txt: No such file or directory$" \
  "$SD" -o "$D/nodir/r.txt" "$D/good.hsnap"
# Root ignores permission bits: a "directory" that is a regular file, and
# /proc, cannot be written by anyone.
run sd_output_under_file 1 "^snapdiff: $D/notadir/r.txt: Not a directory$" \
  "$SD" -o "$D/notadir/r.txt" "$D/good.hsnap"
run sd_output_in_proc 1 "^snapdiff: /proc/self/r.txt: " "$SD" -o /proc/self/r.txt "$D/good.hsnap"
# A device at the output: its own node (as /dev/null is), so that a snapdiff
# that renames over it replaces this copy, never the system's.
if mknod "$D/null" c 1 3 2>/dev/null; then
  run sd_output_device 2 "^snapdiff: $D/null: the output is not a regular file" \
    "$SD" -o "$D/null" "$D/good.hsnap"
  [ -c "$D/null" ] || fail "sd_output_device: the device node was replaced"
else
  echo "SKIPPED sd_output_device: mknod needs root" >&2
fi
run sd_output_is_dir 2 "^snapdiff: $D/adir: the output is not a regular file" \
  "$SD" -o "$D/adir" "$D/good.hsnap"
SAME="the output is the input"
run sd_output_is_input 2 "^snapdiff: $D/good.hsnap: $SAME $D/good.hsnap;" \
  "$SD" --format json -o "$D/good.hsnap" "$D/good.hsnap"
run sd_output_is_new 2 "^snapdiff: $D/second.hsnap: $SAME $D/second.hsnap;" \
  "$SD" -o "$D/second.hsnap" "$D/good.hsnap" "$D/second.hsnap"
run sd_output_is_in_timeline 2 "^snapdiff: $D/second.hsnap: $SAME $D/second.hsnap;" \
  "$SD" --timeline -o "$D/second.hsnap" "$D/good.hsnap" "$D/good.hsnap" "$D/second.hsnap"
run sd_output_other_spelling 2 "^snapdiff: $D/adir/../good.hsnap: $SAME $D/good.hsnap;" \
  "$SD" -o "$D/adir/../good.hsnap" "$D/good.hsnap"
run sd_output_symlink_to_input 2 "^snapdiff: $D/link-to-good.hsnap: $SAME $D/good.hsnap;" \
  "$SD" -o "$D/link-to-good.hsnap" "$D/good.hsnap"
run sd_input_symlink_to_output 2 "^snapdiff: $D/good.hsnap: $SAME $D/link-to-good.hsnap;" \
  "$SD" -o "$D/good.hsnap" "$D/link-to-good.hsnap"
run sd_output_hard_link 2 "^snapdiff: $D/hardlink-to-good.hsnap: $SAME $D/good.hsnap;" \
  "$SD" -o "$D/hardlink-to-good.hsnap" "$D/good.hsnap"

if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  mkdir "$D/ro"
  run sd_output_read_only 1 "^snapdiff: $D/ro/r.txt: Read-only file system$" \
    unshare -m --propagation private sh -c \
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" -o "$1/r.txt" "$3"' \
    _ "$D/ro" "$SD" "$D/good.hsnap"
else
  echo "SKIPPED sd_output_read_only: needs root and unshare -m" >&2
fi

# A symlink at the output: the link is replaced by the report, its target
# is untouched (the report never goes through the link).
ln -s victim.txt "$D/report-link.txt"
sum=$(sha256sum <"$D/victim.txt")
timeout 20 "$SD" -o "$D/report-link.txt" "$D/good.hsnap" 2>"$W/out/symlink.err"
rc=$?
ran=$((ran + 1))
if [ $rc != 0 ] || [ -s "$W/out/symlink.err" ] || [ -L "$D/report-link.txt" ] ||
  ! grep -q '^Total:' "$D/report-link.txt" || [ "$(sha256sum <"$D/victim.txt")" != "$sum" ]; then
  fail "sd_output_symlink: rc $rc, err '$(cat "$W/out/symlink.err")', link $(ls -l "$D/report-link.txt")"
else
  echo "ok sd_output_symlink: the link was replaced by the report, victim.txt unchanged"
fi
rm -f "$D/report-link.txt"

# ---- the launcher and the library ----
run hs_output_missing_dir 1 "^heapsnap: cannot write snapshots in $D/nodir: No such file or directory$" \
  "$HS" run -o "$D/nodir/x.%n.hsnap" -- "$LOSSY"
run hs_output_under_file 1 "^heapsnap: cannot write snapshots in $D/notadir: Not a directory$" \
  "$HS" run -o "$D/notadir/x.%n.hsnap" -- "$LOSSY"
run hs_bad_template 2 "^heapsnap: --output $D/x.%q: only %p, %n, %e and %% may follow a %$" \
  "$HS" run -o "$D/x.%q" -- "$LOSSY"

# Snapshots that cannot be written, twice in one process (a signal's, then
# the exit's): the first failure is said once, and the exit says how many
# were lost; the program's output and status are its own.
"$LOSSY" >"$W/ref.out"
ref_rc=$?
state >"$W/before"
timeout 20 env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=8 HEAPSNAP_SIGNAL=USR2 \
  HEAPSNAP_OUTPUT="$D/gone/x.%p.%n.hsnap" \
  "$LOSSY" "$W/out/lossy.err" "heapsnap: cannot write" >"$W/out/lossy.out" 2>"$W/out/lossy.err"
rc=$?
ran=$((ran + 1))
first="$D/gone/x.[0-9]+.0.hsnap: No such file or directory"
if [ $rc = 124 ]; then
  fail "hs_write_failures: timed out"
elif [ $rc != $ref_rc ] || ! cmp -s "$W/out/lossy.out" "$W/ref.out"; then
  fail "hs_write_failures: status $rc (untraced $ref_rc) or stdout changed"
elif [ "$(grep -c 'cannot write' "$W/out/lossy.err")" != 1 ] ||
  [ "$(wc -l <"$W/out/lossy.err")" != 2 ] ||
  ! grep -qE "^heapsnap: cannot write $first$" "$W/out/lossy.err" ||
  ! grep -qE "^heapsnap: hs_prog_lossy \(pid [0-9]+\): 2 of 2 snapshots could not be written; the first: $first$" "$W/out/lossy.err"; then
  fail "hs_write_failures: expected one 'cannot write' line and one count of 2 lost, got:"
  sed 's/^/  | /' "$W/out/lossy.err"
elif state | cmp -s - "$W/before"; then
  echo "ok hs_write_failures: $(tr '\n' '|' <"$W/out/lossy.err")"
else
  fail "hs_write_failures: files changed"
fi

left=$(find "$D" "$W/out" -name '*.tmp.*')
[ -z "$left" ] || fail "temporary files left behind: $left"
echo "bad input: $ran cases, $fails failed"
[ $fails = 0 ]
