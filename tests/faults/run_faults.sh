#!/bin/bash
# run_faults.sh - makes heapsnap's own allocations fail at every point (or a
# sample of points) of a program run under LD_PRELOAD, and checks that the
# program cannot tell: same stdout and exit status as untraced, every
# snapshot loads, and every lost trace is counted (docs/reliability.md).
#
#   run_faults.sh LIB SNAPCHECK [--exact] [--sample K] -- CMD...
#
# --exact: CMD is one deterministic process; then also check, against the
#   uninjected run, that traced + dropped is unchanged (each allocation is
#   either traced or counted as dropped) and that a run that dropped nothing
#   has the very same exit snapshot totals.
# --sample K: test points 1..10 and K more spread evenly, not all of them.
# Addresses decide how tables fill (hashes of pointers and return
# addresses), so every run is under `setarch -R` to make the number and
# order of internal allocations repeatable.
set -u
LIB=$1 CHECK=$2
shift 2
EXACT=0 SAMPLE=0
while [ "$1" != "--" ]; do
  case $1 in
  --exact) EXACT=1 ;;
  --sample) SAMPLE=$2; shift ;;
  *) echo "run_faults.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
shift
W=$(mktemp -d /tmp/hs-faults.XXXXXX)
trap 'rm -rf "$W"' EXIT

# run DIR [FAULT]: CMD traced, snapshots and output in DIR.
run() {
  local d=$1
  mkdir -p "$d"
  # A fixed environment: a host may allocate per variable (python copies
  # environ), and this script exports its own to the parallel runs.
  local env=(env -i PATH="$PATH" LANG=C PYTHONHASHSEED=0)
  if [ $# -gt 1 ]; then
    setarch -R "${env[@]}" LD_PRELOAD="$LIB" HEAPSNAP_FRAMES=16 \
      HEAPSNAP_OUTPUT="$d/s.%p.%n.hsnap" HEAPSNAP_FAULT_ALLOC="$2" \
      "${CMD[@]}" >"$d/out" 2>"$d/err" </dev/null
  else
    setarch -R "${env[@]}" "${CMD[@]}" >"$d/out" 2>"$d/err" </dev/null
  fi
  echo $? >"$d/rc"
}

# field NAME LINE: the number before/after a word in a report line.
report_lines() { grep '^heapsnap: fault injection: pid ' "$1/err"; }
num() { # num "LINE" KEY -> the integer KEY refers to
  local l=$1
  case $2 in
  pid) l=${l#*pid }; echo "${l%%:*}" ;;
  calls) l=${l#*: pid *: }; echo "${l%% internal*}" ;;
  failed) l=${l#*allocations, }; echo "${l%% failed*}" ;;
  dropped) l=${l#*failed; }; echo "${l%% traces*}" ;;
  traced) l=${l%% traced}; echo "${l##* }" ;;
  esac
}

# check DIR POINT: every promise for one injected run; prints the faults.
check() {
  local d=$1 p=$2 bad=0
  fail() { echo "FAIL [HEAPSNAP_FAULT_ALLOC=$p] $*"; bad=1; }
  [ "$(cat "$d/rc")" = "$REF_RC" ] ||
    fail "exit status $(cat "$d/rc"), untraced $REF_RC"
  cmp -s "$d/out" "$W/ref/out" || fail "stdout differs from the untraced run"
  # stderr: the untraced run's, plus only the reports.
  if grep -v '^heapsnap: fault injection: pid ' "$d/err" |
    grep -vxF -f "$W/ref/err" | grep -q .; then
    fail "unexpected stderr: $(grep -v '^heapsnap: fault injection' "$d/err" | head -3)"
  fi
  if ls "$d" | grep -q '\.tmp\.'; then fail "temporary file left behind"; fi
  local snaps
  snaps=$(ls "$d"/*.hsnap 2>/dev/null)
  if [ -n "$snaps" ] && ! "$CHECK" $snaps >"$d/check" 2>&1; then
    fail "a snapshot does not load: $(grep snapcheck: "$d/check" | head -2)"
  fi
  local line nfail=0
  while read -r line; do
    local pid calls failed dropped traced
    pid=$(num "$line" pid) calls=$(num "$line" calls)
    failed=$(num "$line" failed) dropped=$(num "$line" dropped)
    traced=$(num "$line" traced)
    nfail=$((nfail + failed))
    [ "$failed" = 0 ] && [ "$dropped" != 0 ] &&
      fail "pid $pid dropped $dropped traces with no injected failure"
    local snap="$d/s.$pid.0.hsnap" info sd
    if [ -f "$snap" ]; then
      info=$(grep -F "$snap " "$d/check")
      sd=${info#* dropped=}
      sd=${sd%% *}
      [ "$sd" = "$dropped" ] ||
        fail "pid $pid: snapshot says dropped=$sd, the library counted $dropped"
    else
      fail "pid $pid wrote no exit snapshot"
    fi
    if [ $EXACT = 1 ]; then
      [ $((traced + dropped)) = "$BASE_TOTAL" ] ||
        fail "traced $traced + dropped $dropped != $BASE_TOTAL allocation calls"
      local cnt sz
      cnt=${info#* count=} cnt=${cnt%% *}
      sz=${info#* size=} sz=${sz%% *}
      if [ "$dropped" = 0 ]; then
        [ "$cnt/$sz" = "$BASE_COUNT/$BASE_SIZE" ] ||
          fail "nothing dropped, yet the exit snapshot has $cnt traces" \
            "($sz bytes), not $BASE_COUNT ($BASE_SIZE)"
      elif [ "$cnt" -gt "$BASE_COUNT" ]; then
        fail "more traces ($cnt) than the uninjected run ($BASE_COUNT)"
      fi
    fi
  done < <(report_lines "$d")
  [ $EXACT = 1 ] && ! report_lines "$d" | grep -q . && fail "no fault report"
  # A point within the count must inject (the runs are repeatable).
  [ $EXACT = 1 ] && [ $nfail = 0 ] && fail "nothing was injected"
  [ $bad = 0 ] && echo "ok $p $nfail"
}

CMD=("$@")
run "$W/ref"
REF_RC=$(cat "$W/ref/rc")
run "$W/count" 0
if ! cmp -s "$W/count/out" "$W/ref/out" ||
  [ "$(cat "$W/count/rc")" != "$REF_RC" ]; then
  echo "FAIL: the traced run (no injection) differs from the untraced one"
  exit 1
fi
K=0
while read -r line; do
  c=$(num "$line" calls)
  [ "$c" -gt $K ] && K=$c
  if [ $EXACT = 1 ]; then
    BASE_TOTAL=$(($(num "$line" traced) + $(num "$line" dropped)))
    info=$("$CHECK" "$W/count/s.$(num "$line" pid).0.hsnap") || exit 1
    BASE_COUNT=${info#* count=} BASE_COUNT=${BASE_COUNT%% *}
    BASE_SIZE=${info#* size=} BASE_SIZE=${BASE_SIZE%% *}
  fi
done < <(report_lines "$W/count")
if [ $K = 0 ]; then
  echo "FAIL: no internal allocation counted (is HEAPSNAP_FAULT_ALLOC wired?)"
  exit 1
fi

POINTS=()
WHICH="every point"
if [ "$SAMPLE" -gt 0 ] && [ "$K" -gt $((SAMPLE + 10)) ]; then
  WHICH="a sample: 1-10 and $SAMPLE more spread evenly"
  for ((n = 1; n <= 10; n++)); do POINTS+=("$n"); done
  for ((i = 1; i <= SAMPLE; i++)); do POINTS+=($((10 + i * (K - 10) / SAMPLE))); done
else
  for ((n = 1; n <= K; n++)); do POINTS+=("$n"); done
fi
POINTS+=("1+" "$((K / 2))+")

export -f run check num report_lines
export LIB CHECK W REF_RC EXACT BASE_TOTAL="${BASE_TOTAL:-}" \
  BASE_COUNT="${BASE_COUNT:-}" BASE_SIZE="${BASE_SIZE:-}"
# Arrays do not cross export: hand CMD over NUL-separated.
printf '%s\0' "${CMD[@]}" >"$W/cmd"
start=$(date +%s%N)
printf '%s\n' "${POINTS[@]}" |
  xargs -P "$(nproc)" -I{} bash -c '
    mapfile -d "" CMD <"$W/cmd"
    run "$W/p{}" "{}"
    check "$W/p{}" "{}"
    rm -rf "$W/p{}"' >"$W/results"
end=$(date +%s%N)
nok=$(grep -c '^ok ' "$W/results")
if grep -q '^FAIL' "$W/results"; then
  grep '^FAIL' "$W/results" | head -20
  echo "FAIL: $((${#POINTS[@]} - nok)) of ${#POINTS[@]} injection runs failed"
  exit 1
fi
if [ "$nok" != ${#POINTS[@]} ]; then
  echo "FAIL: $nok of ${#POINTS[@]} runs reported"
  exit 1
fi
ms=$(((end - start) / 1000000))
printf 'faults: %s: %d internal allocations; %d runs (%s, then 1+ and %d+), all passed in %d.%d s\n' \
  "${CMD[*]}" "$K" ${#POINTS[@]} "$WHICH" $((K / 2)) $((ms / 1000)) $((ms % 1000 / 100))
