#!/usr/bin/env bash
# run_http.sh - the pprof endpoint end to end: a traced prog_serve read by
# `go tool pprof` (/heap, /allocs with Go's four sample types, cumulative
# and monotonic, ?seconds=1 deltas of both), the bad-request suite, a Unix
# socket, a fork, the launcher's --http; the host must keep running with
# its stdout and exit status unchanged. Loopback only.
# Usage: run_http.sh LIBHEAPSNAP PROG_SERVE PROG_SOURCE LAUNCHER
set -uo pipefail
lib=$1 prog=$2 src=$3 launcher=$4
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v go >/dev/null 2>&1 || ! go version >/dev/null 2>&1; then
  echo "SKIP: go is not installed (apt-get install golang-go): no pprof client"
  exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/hs-http.XXXXXX")
export PPROF_TMPDIR=$dir/pprof HOME=$dir GOCACHE=$dir/gocache GOFLAGS=-mod=mod
mkdir -p "$PPROF_TMPDIR"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
line_of() { grep -n "$1" "$src" | head -1 | cut -d: -f1; }
top_line=$(line_of 'the top of /heap')
delta_line=$(line_of 'after the trigger: the delta')
expected_out=$'prog_serve: allocated\nprog_serve: triggered\nprog_serve: done'

# start NAME HTTP [ARGS...]: prog_serve under the preload; sets pid, addr.
start() {
  local name=$1 http=$2
  shift 2
  rm -f "$dir/$name.addr"
  HEAPSNAP_FRAMES=16 HEAPSNAP_AT_EXIT=0 HEAPSNAP_HTTP=$http \
    HEAPSNAP_HTTP_FILE=$dir/$name.addr LD_PRELOAD=$lib \
    "$prog" "$dir/$name.trigger" "$dir/$name.stop" "$@" \
    >"$dir/$name.out" 2>"$dir/$name.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    [ -s "$dir/$name.addr" ] && break
    sleep 0.05
  done
  addr=$(cat "$dir/$name.addr" 2>/dev/null)
  [ -n "$addr" ] || { bad "$name: no address in HEAPSNAP_HTTP_FILE"; cat "$dir/$name.err"; exit 1; }
}

# finish NAME: triggers (if not yet), stops, and checks status and output.
finish() {
  local name=$1
  touch "$dir/$name.trigger" "$dir/$name.stop"
  wait "$pid"
  local rc=$?
  [ $rc -eq 0 ] && ok "$name: exit status 0" || bad "$name: exit status $rc"
  [ "$(cat "$dir/$name.out")" = "$expected_out" ] && ok "$name: stdout unchanged" ||
    { bad "$name: stdout changed:"; cat "$dir/$name.out"; }
}

# ---- go tool pprof against /heap and /allocs ----
start main 127.0.0.1:0
case $addr in 127.0.0.1:[1-9]*) ok "address $addr" ;; *) bad "address '$addr'" ;; esac
grep -qx "heapsnap: pid $pid serves pprof at http://$addr/debug/pprof/" "$dir/main.err" &&
  [ "$(wc -l <"$dir/main.err")" -eq 1 ] && ok "one line on stderr names the address" ||
  { bad "stderr:"; cat "$dir/main.err"; }

go tool pprof -top "http://$addr/debug/pprof/heap" >"$dir/top" 2>&1
first=$(awk '/^ *flat +flat%/ {getline; print; exit}' "$dir/top")
if echo "$first" | grep -Eq '^ *4000kB .* site_before$'; then
  ok "pprof -top /heap: $first"
else
  bad "pprof -top /heap: first line '$first'"; cat "$dir/top"
fi
grep -q '^Type: inuse_space' "$dir/top" && ok "/heap defaults to inuse_space" ||
  bad "/heap default sample type"
grep -q site_churn "$dir/top" && { bad "/heap shows site_churn, which keeps nothing"; cat "$dir/top"; } ||
  ok "/heap: no site_churn (all its blocks freed)"
go tool pprof -raw "http://$addr/debug/pprof/allocs" >"$dir/raw" 2>&1
grep -Eq '^alloc_objects/count alloc_space/bytes\[dflt\] inuse_objects/count inuse_space/bytes$' "$dir/raw" &&
  ok "/allocs: Go's four sample types in Go's order, default alloc_space" ||
  { bad "/allocs sample types:"; sed -n '/^Samples/,+1p' "$dir/raw"; }
grep -Eq '^ +1000 +4096000 +1000 +4096000: ' "$dir/raw" && ok "pprof -raw /allocs: 1000 blocks, 4096000 bytes" ||
  { bad "pprof -raw /allocs: no 1000 x 4096 sample"; cat "$dir/raw"; }
python3 "$here/pprof_raw.py" has "$dir/raw" site_churn 5000 10000000 0 0 &&
  ok "/allocs: site_churn allocated 5000 x 2000 B, none live" || bad "/allocs: site_churn"
go tool pprof -sample_index=alloc_space -top -unit=B "http://$addr/debug/pprof/allocs" >"$dir/atop" 2>&1
first=$(awk '/^ *flat +flat%/ {getline; print; exit}' "$dir/atop")
echo "$first" | grep -Eq '^ *10000000B .* site_churn$' && ok "pprof -top /allocs by alloc_space: $first" ||
  { bad "pprof -top /allocs: first line '$first'"; cat "$dir/atop"; }
go tool pprof -top "http://$addr/debug/pprof/allocs" 2>&1 | grep -q '^Type: alloc_space' &&
  ok "/allocs defaults to alloc_space" || bad "/allocs default sample type"
grep -Eq "site_before .*prog_serve.c:$top_line " "$dir/raw" &&
  ok "site_before at prog_serve.c:$top_line" || bad "no site_before at line $top_line"
grep -Eq '^1: 0x[0-9a-f]+/0x[0-9a-f]+/0x0 .*prog_serve [0-9a-f]{40} ' "$dir/raw" &&
  ok "mapping 1 is the program, with its build ID" ||
  { bad "mapping 1:"; sed -n '/^Mappings/,$p' "$dir/raw"; }
want_id=$(readelf -n "$prog" 2>/dev/null | awk '/Build ID/ {print $3}')
[ -z "$want_id" ] || grep -q " $want_id " "$dir/raw" && ok "build ID matches readelf" ||
  bad "build ID $want_id not in the profile"
curl -s "http://$addr/debug/pprof/heap?debug=1" >"$dir/text"
grep -Eq '^heap profile: [0-9]+: [0-9]+ \[[0-9]+: [0-9]+\] @ heap/2$' "$dir/text" &&
  grep -q "^1000: 4096000 \[1000: 4096000\] @" "$dir/text" &&
  grep -q "^0: 0 \[5000: 10000000\] @" "$dir/text" &&
  grep -q "site_before	.*prog_serve.c:$top_line" "$dir/text" &&
  ok "?debug=1 text in Go's heap format" || { bad "?debug=1:"; head -20 "$dir/text"; }
# pprof's own parser of Go's legacy text reads it, values unscaled.
go tool pprof -raw "$dir/text" >"$dir/text.raw" 2>&1
grep -Eq '^ +5000 +10000000 +0 +0: ' "$dir/text.raw" &&
  ok "pprof reads ?debug=1 as a Go heap profile" || { bad "pprof on ?debug=1:"; head -20 "$dir/text.raw"; }
curl -s "http://$addr/debug/pprof/" | grep -q 'href="heap?debug=1"' && ok "index page" ||
  bad "index page"
go tool pprof -top -seconds=1 "http://$addr/debug/pprof/heap" >"$dir/gosec" 2>&1 &&
  grep -q '^Type: inuse_space' "$dir/gosec" && ok "pprof -seconds=1 fetches a delta" ||
  { bad "pprof -seconds=1:"; cat "$dir/gosec"; }

# ---- the delta: only what was allocated during the second ----
# The request is written before the index page is asked for on a second
# connection; the server reads connections in the order it accepted them,
# so once the index page arrives the delta's first snapshot is taken, and
# only then is the trigger pulled.
port=${addr##*:}
# delta_ask PROFILE: asks for PROFILE?seconds=1 on descriptor 3 and
# returns once its first snapshot is taken.
delta_ask() {
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /debug/pprof/%s?seconds=1 HTTP/1.1\r\nHost: t\r\n\r\n' "$1" >&3
  curl -s "http://$addr/debug/pprof/" >/dev/null
}
# delta_read NAME: the answer's profile, as pprof -raw prints it, in NAME.raw.
delta_read() {
  cat <&3 >"$dir/$1.http"
  exec 3<&-
  python3 "$here/pprof_raw.py" body "$dir/$1.http" "$dir/$1.pb.gz" &&
    go tool pprof -raw "$dir/$1.pb.gz" >"$dir/$1.raw" 2>&1
}
delta_ask heap
touch "$dir/main.trigger"
for _ in $(seq 100); do
  grep -q triggered "$dir/main.out" && break
  sleep 0.01
done
delta_read delta
if python3 "$here/pprof_raw.py" only "$dir/delta.raw" site_after 300 307200 300 307200 &&
   grep -Eq "site_after .*prog_serve.c:$delta_line " "$dir/delta.raw"; then
  ok "?seconds=1: one sample, 300 x 1 KiB at site_after (line $delta_line)"
else
  bad "?seconds=1 delta:"; cat "$dir/delta.raw"
fi

# ---- /allocs is cumulative: freeing every block of a stack keeps it ----
# wait_for FILE: the program's acknowledgement of an order. No deadline
# but the test's: a busy machine only makes it slower.
wait_for() { while [ ! -s "$1" ]; do kill -0 "$pid" 2>/dev/null || return 1; sleep 0.02; done; }
touch "$dir/main.trigger.free"
wait_for "$dir/main.trigger.done.free" || bad "no acknowledgement of the free order"
go tool pprof -raw "http://$addr/debug/pprof/allocs" >"$dir/raw2" 2>&1
python3 "$here/pprof_raw.py" grew "$dir/raw" "$dir/raw2" &&
  ok "/allocs again: every stack still there, no alloc value fell" ||
  { bad "/allocs not monotonic"; cat "$dir/raw2"; }
python3 "$here/pprof_raw.py" has "$dir/raw2" site_small 100 6400 0 0 &&
  ok "/allocs: site_small, all freed, still counts 100 x 64 B" || bad "/allocs: site_small after its free"

# ---- a delta of /allocs: what was allocated during the second ----
# As above, the first snapshot is taken before the order is given. Whether
# the round's allocations returned before the second snapshot depends on
# the scheduler: the program says when they had, the profile when it was
# taken, and a round that came late is tried again with the next.
checked=0
for k in 1 2 3 4 5; do
  delta_ask allocs
  touch "$dir/main.trigger.churn.$k"
  wait_for "$dir/main.trigger.done.churn.$k" || { bad "no acknowledgement of round $k"; break; }
  delta_read adelta || { bad "/allocs?seconds=1: no profile"; break; }
  python3 "$here/pprof_raw.py" before "$dir/adelta.raw" "$dir/main.trigger.done.churn.$k" || continue
  checked=1
  if python3 "$here/pprof_raw.py" only "$dir/adelta.raw" site_churn_again 700 358400 0 0 &&
     grep -q 'alloc_space/bytes\[dflt\]' "$dir/adelta.raw"; then
    ok "/allocs?seconds=1 (round $k): only site_churn_again, 700 x 512 B allocated, none live"
  else
    bad "/allocs?seconds=1 delta:"; cat "$dir/adelta.raw"
  fi
  break
done
[ $checked -eq 1 ] || echo "note: every /allocs delta round ended after its second snapshot; not checked"

# ---- hostile clients; the host must not notice ----
python3 "$here/bad_requests.py" "$addr" >"$dir/bad.log" 2>&1 &&
  ok "bad-request suite ($(grep -c '^ok' "$dir/bad.log") checks)" ||
  { bad "bad-request suite:"; grep -v '^ok' "$dir/bad.log"; }
kill -0 "$pid" 2>/dev/null && ok "the host survived" || bad "the host died"
go tool pprof -top "http://$addr/debug/pprof/heap" >"$dir/top2" 2>&1 &&
  grep -q site_before "$dir/top2" && ok "still served afterwards" || bad "not served afterwards"
finish main
[ "$(wc -l <"$dir/main.err")" -eq 1 ] && ok "nothing else on stderr" ||
  { bad "stderr grew:"; cat "$dir/main.err"; }

# ---- a Unix socket, mode 0600, removed at exit ----
start unix "unix:$dir/sock"
[ "$addr" = "unix:$dir/sock" ] && ok "unix address reported" || bad "unix address '$addr'"
mode=$(stat -c %a "$dir/sock" 2>/dev/null)
[ "$mode" = 600 ] && ok "socket mode 600" || bad "socket mode '$mode'"
curl -s --unix-socket "$dir/sock" "http://x/debug/pprof/heap?debug=1" | grep -q site_before &&
  ok "served over the Unix socket" || bad "not served over the Unix socket"
[ ! -s "$dir/unix.err" ] && ok "a fixed address prints nothing" || { bad "stderr:"; cat "$dir/unix.err"; }
finish unix
[ ! -e "$dir/sock" ] && ok "socket removed at exit" || bad "socket left behind"

# ---- fork: the child serves nothing ----
start fork 127.0.0.1:0 fork
others=0
for _ in $(seq 20); do
  curl -s "http://$addr/debug/pprof/heap?debug=1" | grep -q "^# heapsnap .*, pid $pid:" ||
    others=$((others + 1))
done
[ $others -eq 0 ] && ok "fork: every answer comes from the parent" ||
  bad "fork: $others answers not from the parent"
finish fork

# ---- a host that closes every descriptor it did not open ----
start closefds 127.0.0.1:0 closefds
curl -s -m 3 "http://$addr/debug/pprof/heap" >/dev/null 2>&1
sleep 0.2
kill -0 "$pid" 2>/dev/null && ok "closefds: the host survived" || bad "closefds: the host died"
finish closefds

# ---- the launcher's --http ----
rm -f "$dir/l.addr"
HEAPSNAP_HTTP_FILE=$dir/l.addr "$launcher" run -q --no-at-exit --http 127.0.0.1:0 -- \
  "$prog" "$dir/l.trigger" "$dir/l.stop" >"$dir/l.out" 2>"$dir/l.err" &
pid=$!
pids+=("$pid")
for _ in $(seq 200); do [ -s "$dir/l.addr" ] && break; sleep 0.05; done
go tool pprof -top "http://$(cat "$dir/l.addr")/debug/pprof/heap" 2>&1 | grep -q site_before &&
  ok "heapsnap run --http serves" || bad "heapsnap run --http"
touch "$dir/l.trigger" "$dir/l.stop"
wait "$pid" && [ "$(cat "$dir/l.out")" = "$expected_out" ] && ok "launcher: status and stdout" ||
  bad "launcher: status or stdout"

[ $fail -eq 0 ] && echo "all passed" || echo "FAILED"
exit $fail
