#!/bin/bash
# check_completion.sh - the bash completions source cleanly, complete
# options and option values, and offer every option of the tool's --help.
#
#   check_completion.sh HEAPSNAP SNAPDIFF SOURCE_DIR
set -u
HS=$1 SD=$2 SRC=$3
fails=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# complete FILE FUNC WORD...: what FUNC offers for the last WORD.
complete_() {
  local file=$1 func=$2
  shift 2
  bash --norc --noprofile -c '
    source "$1" || exit 3
    func=$2; shift 2
    COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    "$func"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$file" "$func" "$@"
}
expect() { # WHAT WANTED FILE FUNC WORD...
  local what=$1 want=$2
  shift 2
  complete_ "$@" | grep -qxF -- "$want" || fail "$what: '$want' not offered for '${*:3}'"
}
H=$SRC/tools/completion/heapsnap.bash S=$SRC/tools/completion/snapdiff.bash
bash --norc -c "source '$H' && source '$S' && complete -p heapsnap snapdiff" >/dev/null ||
  fail "the completions do not source or do not register"
expect "heapsnap command" run "$H" _heapsnap heapsnap r
expect "heapsnap option" --frames "$H" _heapsnap heapsnap run --fr
expect "heapsnap --signal value" USR2 "$H" _heapsnap heapsnap run --signal U
expect "heapsnap program after --" bash "$H" _heapsnap heapsnap run -- bas
expect "snapdiff option" --format "$S" _snapdiff snapdiff --fo
expect "snapdiff --format value" pprof "$S" _snapdiff snapdiff --format p
expect "snapdiff --by value" traceback "$S" _snapdiff snapdiff --by t

# Every option of --help is offered (from the bare "-" prefix).
opts() { "$1" --help | grep -E '^ +-' | grep -oE '(^|[ ,])--?[A-Za-z][A-Za-z-]*' | tr -d ' ,' | sort -u; }
have=$(complete_ "$H" _heapsnap heapsnap run -)
for o in $(opts "$HS"); do grep -qxF -- "$o" <<<"$have" || fail "heapsnap completion lacks $o"; done
have=$(complete_ "$S" _snapdiff snapdiff -)
for o in $(opts "$SD"); do grep -qxF -- "$o" <<<"$have" || fail "snapdiff completion lacks $o"; done
echo "completion: $fails failed"
[ $fails = 0 ]
