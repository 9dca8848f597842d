#!/usr/bin/env bash
# cli.sh - the launcher's command line and the preloaded library's
# triggers: help, version, usage errors, exit statuses (also death by a
# signal), signal/interval/every-bytes/peak snapshots, bad configuration.
# Usage: cli.sh HEAPSNAP PROGDIR LIBHEAPSNAP
set -u
HS=$1
P=$2
LIB=$3
work=$(mktemp -d /tmp/hs-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1 ($2)"; fi; }
count() { find "$1" -name "${2:-*.hsnap}" 2>/dev/null | wc -l; }
field() { "$P/hsnap_info" "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

"$HS" --help >"$work/help" 2>&1; rc=$?
check help "[ $rc = 0 ] && grep -q -- '--every-bytes' $work/help && grep -q HEAPSNAP_OUTPUT $work/help"
"$HS" --version >"$work/ver"; rc=$?
check version "[ $rc = 0 ] && grep -Eq '^heapsnap [0-9]+\.[0-9]+\.[0-9]+$' $work/ver"
"$HS" >/dev/null 2>&1; check no_args "[ $? = 2 ]"
"$HS" run --frames 0 -- true 2>"$work/e"; rc=$?
check bad_frames "[ $rc = 2 ] && [ \$(wc -l <$work/e) = 1 ] && grep -q -- --frames $work/e"
"$HS" run --bogus -- true >/dev/null 2>&1; check bad_option "[ $? = 2 ]"
"$HS" run -- 2>/dev/null; check no_program "[ $? = 2 ]"
"$HS" run --every-bytes 12Q -- true 2>/dev/null; check bad_bytes "[ $? = 2 ]"
"$HS" run -o "$work/nodir/x.%n.hsnap" -- true 2>"$work/e"; rc=$?
check missing_dir "[ $rc = 1 ] && grep -q nodir $work/e"
"$HS" run -q -o "$work/%n.hsnap" -- /nonexistent/prog 2>"$work/e"; rc=$?
check no_such_program "[ $rc = 127 ] && grep -q /nonexistent/prog $work/e"

# Exit statuses pass through, also death by a signal.
mkdir -p "$work/st"
"$HS" run -q -o "$work/st/%p.%n.hsnap" -- sh -c 'exit 42' 2>/dev/null; check exit_42 "[ $? = 42 ]"
mkdir -p "$work/k"
"$HS" run -q -o "$work/k/%p.%n.hsnap" -- "$P/prog_triggers" kill >/dev/null 2>&1; rc=$?
check killed_by_sigterm "[ $rc = 143 ]"

# Signal trigger: two SIGUSR2 plus the exit snapshot.
mkdir -p "$work/sig"
"$HS" run -q --signal USR2 -o "$work/sig/%e.%p.%n.hsnap" -- "$P/prog_triggers" signal >"$work/out"; rc=$?
n=$(count "$work/sig")
check signal_trigger "[ $rc = 0 ] && [ $n = 3 ] && grep -q signalled $work/out"

# Interval: the program runs until 3 periodic snapshots are there, then
# exits (a fixed 1.2 s once held only 2 beside CPU hogs: each write
# symbolizes): 3 or more periodic ones, the exit's, numbered 0 to n-1.
mkdir -p "$work/iv"
"$HS" run -q --no-follow --interval 0.25 -o "$work/iv/%n.hsnap" -- "$P/prog_triggers" files "$work/iv" 3 >"$work/out"; rc=$?
n=$(count "$work/iv")
check interval_trigger "[ $rc = 0 ] && [ $n -ge 4 ] && grep -q 'saw [3-9]' $work/out && [ -f $work/iv/\$((n - 1)).hsnap ]"

# Every 4 MiB of growth over a 24 MiB climb: 6 snapshots + exit. The
# crossings are counted by the allocating thread, each 4 MiB above the last
# one, so how late the writer thread runs changes when they are written,
# not how many. Under a CPU hog this once wrote 1 to 4: the writer waited
# on the symbolization lock held by the lowest-priority warm-up thread, and
# the exit gave up on it after 5 s (the warm-up no longer holds that lock).
mkdir -p "$work/eb"
"$HS" run -q --every-bytes 4M -o "$work/eb/%n.hsnap" -- "$P/prog_triggers" grow 24 >/dev/null; rc=$?
n=$(count "$work/eb")
check every_bytes_trigger "[ $rc = 0 ] && [ $n -ge 5 ] && [ $n -le 8 ]"

# --no-follow below: one process, so the names stay as given (with children
# traced the launcher would add %p, docs/launcher.md).
# At the peak: the peak file holds about 24 MiB, the exit one about 1 MiB.
mkdir -p "$work/pk"
"$HS" run -q --no-follow --at-peak -o "$work/pk/%n.hsnap" -- "$P/prog_triggers" grow 24 >/dev/null; rc=$?
if [ -f "$work/pk/peak.hsnap" ]; then
  psize=$(field "$work/pk/peak.hsnap" size)
  esize=$(field "$work/pk/0.hsnap" size)
  check at_peak "[ $rc = 0 ] && [ $psize -ge $((22 * 1048576)) ] && [ $esize -lt $((2 * 1048576)) ]"
else
  bad "at_peak (no peak.hsnap: $(ls $work/pk))"
fi

# Sampling from the launcher: the exit snapshot says so, and its estimate of
# the 1 MiB left live (16 times the rate: always sampled) is close.
mkdir -p "$work/smp"
"$HS" run -q --no-follow --sample default -o "$work/smp/%n.hsnap" -- "$P/prog_triggers" grow 8 >/dev/null; rc=$?
if [ -f "$work/smp/0.hsnap" ]; then
  rate=$(field "$work/smp/0.hsnap" sample_rate)
  ssize=$(field "$work/smp/0.hsnap" size)
  check sample_option "[ $rc = 0 ] && [ $rate = 65536 ] && [ $ssize -ge $((1048576 * 9 / 10)) ] && [ $ssize -le $((1048576 * 13 / 10)) ]"
else
  bad "sample_option (no snapshot: $(ls $work/smp))"
fi
"$HS" run -q --sample 12X -- true 2>/dev/null; check bad_sample "[ $? = 2 ]"

# The exit snapshot holds the leaks: prog_threads leaves 8 x 32 blocks.
mkdir -p "$work/lk"
"$HS" run -q --no-follow -o "$work/lk/%n.hsnap" -- "$P/prog_threads" >/dev/null
c=$(field "$work/lk/0.hsnap" count)
check exit_snapshot_leaks "[ $c -ge 256 ]"

# Bad configuration of the preloaded library: one line, program unharmed.
for kv in HEAPSNAP_INTERVAL=abc HEAPSNAP_EVERY_BYTES=-5 HEAPSNAP_SIGNAL=KILL HEAPSNAP_OUTPUT=x%q HEAPSNAP_FRAMES=0; do
  mkdir -p "$work/bad"
  (cd "$work/bad" && env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=8 "$kv" "$P/prog_triggers" sleep 10 >"$work/out" 2>"$work/err"); rc=$?
  check "bad_env_${kv%%=*}" "[ $rc = 0 ] && grep -q slept $work/out && [ \$(wc -l <$work/err) = 1 ] && grep -q '^heapsnap: ${kv%%=*}=' $work/err && [ \$(count $work/bad) = 0 ]"
  rm -rf "$work/bad"
done

# The output directory disappears while the program runs: a message, the
# program's output and status unchanged, no partial file.
mkdir -p "$work/gone"
(env LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=8 HEAPSNAP_OUTPUT="$work/gone/sub/%n.hsnap" "$P/prog_triggers" sleep 10 >"$work/out" 2>"$work/err"); rc=$?
check unwritable_output "[ $rc = 0 ] && grep -q slept $work/out && grep -q 'heapsnap: cannot write' $work/err && [ \$(ls -A $work/gone | wc -l) = 0 ]"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
