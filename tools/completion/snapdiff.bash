# snapdiff.bash - bash completion for snapdiff; installed as
# share/bash-completion/completions/snapdiff. tests/man checks that it
# offers every option of `snapdiff --help`.
_snapdiff() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local opts="--by --cumulative --sort --top --include --exclude --domain
    --wrapper --raw --format --output --timeline --help --version -o -h -V
    --leaks --suppressions"
  COMPREPLY=()
  case $prev in
  --by) COMPREPLY=($(compgen -W "lineno filename function traceback" -- "$cur")); return ;;
  --sort) COMPREPLY=($(compgen -W "live allocated count temporary" -- "$cur")); return ;;
  --format) COMPREPLY=($(compgen -W "text json csv folded pprof html" -- "$cur")); return ;;
  -o | --output | --suppressions) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  --top | --include | --exclude | --domain | --wrapper) return ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    # Snapshots first; directories to reach them.
    COMPREPLY=($(compgen -f -X '!*.hsnap' -- "$cur") $(compgen -d -- "$cur"))
  fi
}
complete -F _snapdiff snapdiff
