#!/bin/bash
# run_multiproc.sh - one launch, many processes, a template without %p: a
# shell script runs 20 short programs (coreutils, a C program, python3
# through a wrapper script). Every process that exits must have its own
# snapshot (the pid in its name), each one loads, the %p note is said once,
# and the final report is about the launched `sh SCRIPT`, not a child.
#
# Then the same script under a bare LD_PRELOAD with a fixed name: the
# library gives every process after the first its pid, and says nothing.
#
#   run_multiproc.sh HEAPSNAP SNAPDIFF C_PROGRAM LIBHEAPSNAP
set -u
HS=$1 SD=$2 CPROG=$3 LIB=$4
W=$(mktemp -d /tmp/hs-multiproc.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
mkdir "$W/out"
PY=/usr/bin/python3
[ -x $PY ] || PY=$(command -v python3)
# A wrapper, as pyenv's shims are: a script that execs the interpreter.
printf '#!/bin/sh\nexec %s "$@"\n' "$PY" >"$W/python3"
chmod +x "$W/python3"
# Each program is exec'd by a `sh -c` that first records its pid: the
# exec'd image keeps it, so the pid names the snapshot it must write.
cat >"$W/script.sh" <<EOF2
echo \$\$ >"$W/shell.pid"
run() { sh -c 'echo \$\$ >>"$W/pids"; exec "\$@"' run "\$@"; }
for i in 1 2 3 4 5 6; do run /bin/true; done
for i in 1 2 3 4 5; do run ls "$W" >/dev/null; done
for i in 1 2 3 4 5; do run "$CPROG" >/dev/null; done
run cat "$W/script.sh" >/dev/null
run sort "$W/script.sh" >/dev/null
run "$W/python3" -c 'import json; print(json.dumps({"ok": 1}))'
run "$W/python3" -c 'print(sum(range(1000)))'
EOF2
"$HS" run -o "$W/out/x.%n.hsnap" -- sh "$W/script.sh" >"$W/stdout" 2>"$W/stderr"
rc=$?
[ $rc = 0 ] || fail "exit status $rc"
grep -q '"ok": 1' "$W/stdout" && grep -qx 499500 "$W/stdout" || fail "python3 output missing"
npid=$(wc -l <"$W/pids")
[ "$npid" = 20 ] || fail "the script ran $npid programs, not 20"
for pid in $(cat "$W/pids"); do
  f=$W/out/x.$pid.0.hsnap
  if [ ! -s "$f" ]; then
    fail "pid $pid wrote no snapshot x.$pid.0.hsnap"
  elif ! "$SD" "$f" >/dev/null 2>"$W/sd.err"; then
    fail "x.$pid.0.hsnap does not load: $(cat "$W/sd.err")"
  fi
done
nfiles=$(ls "$W/out" | wc -l)
ndistinct=$(ls "$W/out" | sed -E 's/^x\.([0-9]+)\..*/\1/' | sort -u | wc -l)
[ "$nfiles" -ge 20 ] && [ "$nfiles" = "$ndistinct" ] ||
  fail "$nfiles files from $ndistinct pids: $(ls "$W/out" | tr '\n' ' ')"
[ -z "$(ls "$W/out" | grep -v -E '^x\.[0-9]+\.0\.hsnap$')" ] ||
  fail "unexpected files: $(ls "$W/out" | grep -v -E '^x\.[0-9]+\.0\.hsnap$')"
[ "$(grep -c 'has no %p' "$W/stderr")" = 1 ] ||
  fail "the %p note is not said exactly once"
sh_pid=$(cat "$W/shell.pid")
grep -qE "^heapsnap: sh $W/script.sh \(pid $sh_pid\) wrote " "$W/stderr" ||
  fail "the report does not name the launched sh $W/script.sh (pid $sh_pid)"
grep -qE "^heapsnap: [0-9]+ other traced process(es)? wrote [0-9]+ snapshots?: $W/out/x\.\*\.\*\.hsnap$" "$W/stderr" ||
  fail "the report does not count the other processes and say where they are"
# Sites shown, if any, are from the launched process's own snapshot.
if grep -q 'allocation sites by line in' "$W/stderr" &&
  ! grep -q "allocation sites by line in $W/out/x\.$sh_pid\." "$W/stderr"; then
  fail "the report's top sites are from another process"
fi
if [ $fails != 0 ]; then
  sed 's/^/  | /' "$W/stderr"
  exit 1
fi
echo "ok: $npid programs, $nfiles snapshots from $ndistinct processes, all load; report:"
grep '^heapsnap:' "$W/stderr" | head -5

mkdir "$W/bare"
rm -f "$W/pids"
env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=8 HEAPSNAP_OUTPUT="$W/bare/y.hsnap" \
  sh "$W/script.sh" >"$W/stdout" 2>"$W/stderr"
rc=$?
[ $rc = 0 ] && [ ! -s "$W/stderr" ] || fail "bare preload: status $rc, stderr: $(cat "$W/stderr")"
for pid in $(cat "$W/pids"); do
  [ -s "$W/bare/y.$pid.hsnap" ] && "$SD" "$W/bare/y.$pid.hsnap" >/dev/null 2>&1 ||
    fail "bare preload: pid $pid wrote no loadable y.$pid.hsnap"
done
[ "$(ls "$W/bare" | wc -l)" = 20 ] || fail "bare preload: $(ls "$W/bare" | tr '\n' ' ')"
[ $fails = 0 ] || exit 1
echo "ok: bare LD_PRELOAD with a fixed name: 20 processes, 20 files y.PID.hsnap"
