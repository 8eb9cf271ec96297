#!/usr/bin/env bash
# Submits a pipeline config (configs/cc-job.toml by default) to Slurm as the passes of its
# plan (`corpus plan CONFIG --json`), one job per pass chained with afterok dependencies,
# each an array over the same output directory. For configs/cc-job.toml:
#
#   minhash_dedup.signatures (array of TASKS) -> minhash_dedup.buckets (array, by band)
#     -> minhash_dedup.cluster (1 task) -> minhash_dedup.filter (array of TASKS)
#
# and whatever the config's barriers make of it for another (exact_dedup adds three
# passes, tokenize one). A pass sharded by file gets TASKS tasks, one sharded by band
# at most as many tasks as bands, a single pass one task. A pass starts only when every
# task of the one before has succeeded; if one fails, the jobs after it are cancelled
# (--kill-on-invalid-dep) and resubmitting the same command resumes: every pass skips
# what is complete.
#
# Usage: configs/cc-job-slurm.sh [-n TASKS] [CONFIG] [-- FLAGS for `corpus run`...]
# (the --set flags among FLAGS also go to `corpus plan`)
# Environment: CORPUS      the corpus binary (default: corpus on PATH)
#              SBATCH_FLAGS extra sbatch flags: partition, time, account, --output...
# Prints the job ids, one per pass, in order.
set -euo pipefail
TASKS=4
CONFIG=configs/cc-job.toml
while [ $# -gt 0 ]; do
  case "$1" in
    -n) TASKS=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "usage: $0 [-n TASKS] [CONFIG] [-- corpus run flags]" >&2; exit 2 ;;
    *) CONFIG=$1; shift ;;
  esac
done
CORPUS=${CORPUS:-corpus}
sets=()
prev=
for a in "$@"; do
  [ "$prev" = --set ] && sets+=(--set "$a")
  case "$a" in --set=*) sets+=("$a") ;; esac
  prev=$a
done
plan=$("$CORPUS" plan "$CONFIG" --json ${sets[@]+"${sets[@]}"})
# `corpus plan --json` prints one field a line: "name", "sharding", "tasks" of each pass.
passes=$(printf '%s\n' "$plan" |
  sed -n 's/^ *"\(name\|sharding\|tasks\)": "\{0,1\}\([^",]*\)"\{0,1\},\{0,1\}$/\2/p' |
  paste - - -)
[ -n "$passes" ] || { echo "$0: corpus plan printed no passes" >&2; exit 1; }
run=$(printf '%q ' "$CORPUS" run "$CONFIG" -q "$@")
# shellcheck disable=SC2086 # SBATCH_FLAGS is a list of flags
sub() { sbatch --parsable --kill-on-invalid-dep=yes ${SBATCH_FLAGS:-} "$@"; }
ids=()
after=()
while read -r name sharding tasks; do
  case "$sharding" in
    files) n=$TASKS ;;
    single) n=1 ;;
    *) n=$(( tasks < TASKS ? tasks : TASKS )) ;;
  esac
  array=()
  [ "$sharding" = single ] || array=(--array=0-$((n - 1)))
  id=$(sub --job-name="corpus-$name" ${after[@]+"${after[@]}"} ${array[@]+"${array[@]}"} \
    --wrap "$run --pass $name")
  ids+=("$id")
  after=(--dependency=afterok:"$id")
done <<< "$passes"
echo "${ids[*]}"
