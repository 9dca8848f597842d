#!/usr/bin/env bash
# run_programs.sh - real programs under the launcher: each one's stdout,
# stderr and exit status must equal those of an untraced run, and its
# snapshots must load and report allocation sites by line.
# Usage: run_programs.sh HEAPSNAP PROGDIR DL_LIB
set -u
HEAPSNAP=$1
PROGS=$2
DL_LIB=$3
work=$(mktemp -d /tmp/hs-launcher.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0 skip=0

# run NAME EXPECT_SITE CMD...: EXPECT_SITE is a regex the report must show
# ("" to only require some site).
run() {
  local name=$1 site=$2
  shift 2
  local d=$work/$name
  mkdir -p "$d/out"
  (cd "$d" && "$@" >"$d/plain.out" 2>"$d/plain.err")
  local rc_plain=$?
  (cd "$d" && "$HEAPSNAP" run -o "$d/out/%e.%p.%n.hsnap" -- "$@" \
      >"$d/traced.out" 2>"$d/traced.err")
  local rc_traced=$?
  grep -v '^heapsnap: ' "$d/traced.err" >"$d/traced.prog.err"
  local why=""
  [ "$rc_plain" = "$rc_traced" ] || why="exit status $rc_plain untraced, $rc_traced traced"
  cmp -s "$d/plain.out" "$d/traced.out" || why="$why; stdout differs"
  cmp -s "$d/plain.err" "$d/traced.prog.err" || why="$why; stderr differs"
  local nsnap
  nsnap=$(find "$d/out" -name '*.hsnap' | wc -l)
  [ "$nsnap" -gt 0 ] || why="$why; no snapshot written"
  grep -q '^heapsnap:   #1 ' "$d/traced.err" || why="$why; no site reported"
  if [ -n "$site" ] && ! grep -Eq "^heapsnap:   #[0-9]+ .*$site" "$d/traced.err"; then
    why="$why; site /$site/ not in the report"
  fi
  if [ -z "$why" ]; then
    echo "PASS $name (exit $rc_plain, $nsnap snapshots)"
    pass=$((pass + 1))
  else
    echo "FAIL $name:$why"
    echo "--- traced stderr:"; head -30 "$d/traced.err"
    echo "--- diff stdout:"; diff "$d/plain.out" "$d/traced.out" | head -10
    fail=$((fail + 1))
  fi
}

skip() {
  echo "SKIP $1: $2"
  skip=$((skip + 1))
}

have() { command -v "$1" >/dev/null 2>&1; }

if have python3; then
  cat >"$work/alloc.py" <<'PY'
import sys
rows = [{"id": i, "name": "row-%d" % i, "tags": [i, i * 2]} for i in range(200000)]
index = {r["name"]: r for r in rows}
print(len(rows), len(index), sum(r["id"] for r in rows) % 1000003)
print("to stderr", file=sys.stderr)
sys.exit(4)
PY
  # The interpreter itself: a pyenv shim would add a bash process tree.
  py=$(python3 -c 'import sys; print(sys.executable)')
  PYTHONMALLOC=malloc run python3 "" "$py" "$work/alloc.py"
else
  skip python3 "python3 is not installed"
fi

if have perl; then
  run perl "" perl -e 'my %h; $h{$_} = "x" x ($_ % 100) for 1..100000; print scalar(keys %h), "\n"; exit 6'
else
  skip perl "perl is not installed"
fi

run bash_pipeline "" bash -c 'seq 1 30000 | sort -rn | head -3; echo "$((6*7))" >&2; exit 7'

if have git; then
  repo=$work/repo
  git init -q "$repo" && (cd "$repo" &&
    for i in 1 2 3 4 5; do echo "line $i" >>f.txt; git add f.txt;
      git -c user.name=t -c user.email=t@t commit -qm "commit $i"; done)
  run git "" git -C "$repo" log --format=%s
else
  skip git "git is not installed"
fi

if have sqlite3; then
  db=$work/test.db
  sqlite3 "$db" 'create table t(a integer, b text);
    with recursive c(x) as (select 1 union all select x+1 from c where x < 20000)
    insert into t select x, printf("value-%d", x) from c;'
  run sqlite3 "" sqlite3 "$db" 'select count(*), sum(a), max(b) from t; select b from t order by b desc limit 2;'
else
  skip sqlite3 "sqlite3 is not installed (the test set-up installs it: apt-get install sqlite3)"
fi

run cxx_containers "prog_cxx.cc" "$PROGS/prog_cxx"
run threads8 "prog_threads.c" "$PROGS/prog_threads"
run fork_exec "prog_forkexec.c" "$PROGS/prog_forkexec"
run dlopen_dlclose "dl_alloc.c" "$PROGS/prog_dlopen" "$DL_LIB"

# fork and exec are followed: the exec'd child and the forked children
# wrote snapshots of their own (distinct pids and program names).
n_fe=$(find "$work/fork_exec/out" -name '*.hsnap' | wc -l)
if [ "$n_fe" -ge 3 ] && find "$work/fork_exec/out" -name 'echo.*' | grep -q .; then
  echo "PASS fork_exec_followed ($n_fe snapshots, echo traced)"; pass=$((pass + 1))
else
  echo "FAIL fork_exec_followed: $n_fe snapshots"; ls "$work/fork_exec/out"; fail=$((fail + 1))
fi
# Children forked while heapsnap's thread reads debug information (in the
# first tens of milliseconds) each write their exit snapshot: none waits
# for a lock its parent's thread held. Bounded: a child that waited would
# wait for ever.
mkdir -p "$work/forkloop"
timeout 120 "$HEAPSNAP" run -q -o "$work/forkloop/%e.%p.%n.hsnap" -- \
  "$PROGS/prog_forkexec" forkloop >"$work/forkloop.out" 2>&1
rc_fl=$?
n_fl=$(find "$work/forkloop" -name '*.hsnap' | wc -l)
if [ "$rc_fl" = 0 ] && [ "$n_fl" = 41 ] && grep -q 'ok=40 of 40 kids' "$work/forkloop.out"; then
  echo "PASS fork_during_warm_up (41 snapshots)"; pass=$((pass + 1))
else
  echo "FAIL fork_during_warm_up: exit $rc_fl, $n_fl snapshots"; head -5 "$work/forkloop.out"
  fail=$((fail + 1))
fi
# --no-follow: only the parent writes.
mkdir -p "$work/nofollow"
"$HEAPSNAP" run -q --no-follow -o "$work/nofollow/%e.%p.%n.hsnap" -- "$PROGS/prog_forkexec" >/dev/null
n_nf=$(find "$work/nofollow" -name '*.hsnap' | wc -l)
if [ "$n_nf" = 1 ]; then
  echo "PASS no_follow (1 snapshot)"; pass=$((pass + 1))
else
  echo "FAIL no_follow: $n_nf snapshots"; ls "$work/nofollow"; fail=$((fail + 1))
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
