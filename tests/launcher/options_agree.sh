#!/usr/bin/env bash
# options_agree.sh HEAPSNAP LIB PROG (one that prints): the launcher and the preloaded library
# check every HEAPSNAP_* value alike (one table, lib/session/options.c): for
# each value below, the library refuses it (one line, tracing off, the
# program unharmed) exactly when the launcher refuses it (one line naming
# it, exit 2, the program never run).
set -u
HS=$1 LIB=$2 PROG=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pass=0 fail=0
cases=(
  FRAMES=0 FRAMES=257 FRAMES=16 FRAMES=abc FRAMES=8x
  OUTPUT=snap% OUTPUT=x%q OUTPUT=x.%p.%n.hsnap OUTPUT=%%.%e
  AT_EXIT=maybe AT_EXIT=yes WARM=2 WARM=off
  SIGNAL=KILL SIGNAL=SEGV SIGNAL=USR2 SIGNAL=RTMIN+ SIGNAL=RTMIN+3 SIGNAL=NOPE
  INTERVAL=0 INTERVAL=-1 INTERVAL=0.5 INTERVAL=abc
  EVERY_BYTES=0 EVERY_BYTES=-5 EVERY_BYTES=4M EVERY_BYTES=12Q
  PEAK_INTERVAL=2 PEAK_INTERVAL=x FOLLOW_FORK=1 FOLLOW_EXEC=no QUIET=7
  DEFER=3 DEFER=1 UNWIND=fast UNWIND=verify UNWIND=frames
  SAMPLE=default SAMPLE=0 SAMPLE=64K SAMPLE=2T SAMPLE=12X
  FAULT_ALLOC=0+ FAULT_ALLOC=5+ FAULT_ALLOC=x
  WRAPPERS=my_xmalloc,file:x.c WRAPPERS=a,,b WRAPPERS=,a
  LEAK_STOP=auto LEAK_STOP=ptrace LEAK_STOP=signal LEAK_STOP=gdb LEAK_STOP=
)
for kv in "${cases[@]}"; do
  var=HEAPSNAP_${kv%%=*}
  env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=4 HEAPSNAP_AT_EXIT=0 "$var=${kv#*=}" \
    "$PROG" >out.lib 2>err.lib
  lrc=$?
  lib_bad=0
  grep -q "^heapsnap: $var=.*tracing stays off" err.lib && lib_bad=1
  env "$var=${kv#*=}" "$HS" run -q --no-follow --no-at-exit -o "$work/x.%n.hsnap" \
    -- "$PROG" >out.hs 2>err.hs
  hrc=$?
  hs_bad=0
  [ $hrc = 2 ] && hs_bad=1
  ok=1
  [ $lib_bad = $hs_bad ] || ok=0
  [ $lrc = 0 ] || ok=0 # the library never changes the program's status
  if [ $hs_bad = 1 ]; then
    [ "$(wc -l <err.hs)" = 1 ] && grep -q "^heapsnap: $var=" err.hs || ok=0
    [ -s out.hs ] && ok=0 # the program did not run
  else
    [ $hrc = 0 ] || ok=0
  fi
  if [ $ok = 1 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL $kv: library refused=$lib_bad (status $lrc), launcher refused=$hs_bad (status $hrc)"
    sed 's/^/  lib: /' err.lib | head -3
    sed 's/^/  launcher: /' err.hs | head -3
  fi
done
# The launcher's own flags go through the same checks.
"$HS" run -o 'snap%' -- "$PROG" >out.hs 2>err.hs
rc=$?
if [ $rc = 2 ] && grep -q "^heapsnap: --output snap%: " err.hs && [ ! -s out.hs ]; then
  pass=$((pass + 1))
else
  fail=$((fail + 1))
  echo "FAIL -o 'snap%': status $rc: $(cat err.hs)"
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
