#!/bin/bash
# fork_loader.sh - runs hs_stress_forkjit in every mode, with the rule
# unwinder and with HEAPSNAP_UNWIND=libunwind, each in a directory of its
# own. usage: fork_loader.sh PROG LIBHEAPSNAP DLLIB FORKS_PER_MODE
set -u
prog=$1 lib=$2 dllib=$3 forks=${4:-300}
rc=0
for unwind in fast libunwind; do
  d=$(mktemp -d /tmp/hs_forkjit.XXXXXX)
  if ! env HEAPSNAP_FRAMES=16 HEAPSNAP_UNWIND=$unwind \
      HEAPSNAP_OUTPUT="$d/s.%p.hsnap" HEAPSNAP_QUIET=1 LD_PRELOAD="$lib" \
      "$prog" all "$forks" "$dllib"; then
    echo "FAIL: forkjit with HEAPSNAP_UNWIND=$unwind" >&2
    rc=1
  fi
  rm -rf "$d"
done
exit $rc
