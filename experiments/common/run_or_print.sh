# Sourced by the launchers: `run CMD ARGS...` executes a command, or with DRY_RUN=1 prints it
# (shell-quoted, one line) so `--dry_run` shows exactly what would run; tests parse that line.
run() {
  if [ "${DRY_RUN:-0}" = 1 ]; then
    printf '%q ' "$@" | sed 's/ $//'; echo
  else
    "$@"
  fi
}
# `python -m dsmath_jax.main` with the config, the workdir and the overrides, as one quoted string
# for a remote shell (gcloud --command, sbatch --wrap).
main_command() {
  local config=$1 workdir=$2; shift 2
  printf 'python -m dsmath_jax.main --config=%q --workdir=%q' "$config" "$workdir"
  local arg; for arg in "$@"; do printf ' %q' "$arg"; done
}
