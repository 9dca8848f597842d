# heapsnap.bash - bash completion for `heapsnap run`; installed as
# share/bash-completion/completions/heapsnap. tests/man checks that it
# offers every option of `heapsnap --help`.
_heapsnap() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local opts="--frames --output --signal --interval --every-bytes --at-peak
    --no-at-exit --sample --http --wrapper --no-follow --no-follow-fork
    --no-follow-exec --top --quiet --help --version -n -o -w -q -h -V
    --leaks --suppressions"
  COMPREPLY=()
  if [ "$COMP_CWORD" = 1 ]; then
    COMPREPLY=($(compgen -W "run --help --version" -- "$cur"))
    return
  fi
  # After `--` the words are the program's: complete it as a command.
  local i
  for ((i = 2; i < COMP_CWORD; i++)); do
    if [ "${COMP_WORDS[i]}" = -- ]; then
      if [ $((i + 1)) = "$COMP_CWORD" ]; then
        COMPREPLY=($(compgen -c -- "$cur"))
      else
        COMPREPLY=($(compgen -f -- "$cur"))
      fi
      return
    fi
  done
  case $prev in
  -o | --output | --suppressions) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  --signal) COMPREPLY=($(compgen -W "USR1 USR2 HUP PROF URG WINCH" -- "$cur")); return ;;
  --sample) COMPREPLY=($(compgen -W "default 0" -- "$cur")); return ;;
  -n | --frames | --interval | --every-bytes | --top | -w | --wrapper | --http) return ;;
  esac
  COMPREPLY=($(compgen -W "$opts --" -- "$cur"))
}
complete -F _heapsnap heapsnap
