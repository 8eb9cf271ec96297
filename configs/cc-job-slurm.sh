#!/usr/bin/env bash
# Submits a multi-pass job config (configs/cc-job.toml by default) to Slurm as four jobs
# chained with afterok dependencies, each pass an array over the same output directory:
#
#   signatures (array of TASKS)  ->  buckets (array)  ->  cluster (1 task)  ->  filter (array of TASKS)
#
# A pass starts only when every task of the one before has succeeded; if one fails, the
# jobs after it are cancelled (--kill-on-invalid-dep) and resubmitting the same command
# resumes: every pass skips what is complete.
#
# Usage: configs/cc-job-slurm.sh [-n TASKS] [CONFIG] [-- FLAGS for `corpus run`...]
# Environment: CORPUS      the corpus binary (default: corpus on PATH)
#              SBATCH_FLAGS extra sbatch flags: partition, time, account, --output...
# Prints the four job ids.
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
# Buckets are sharded by LSH band (14 by default): more tasks than bands would idle.
BUCKET_TASKS=${BUCKET_TASKS:-$(( TASKS < 14 ? TASKS : 14 ))}
run=$(printf '%q ' "$CORPUS" run "$CONFIG" -q "$@")
# shellcheck disable=SC2086 # SBATCH_FLAGS is a list of flags
sub() { sbatch --parsable --kill-on-invalid-dep=yes ${SBATCH_FLAGS:-} "$@"; }
sig=$(sub --job-name=corpus-signatures --array=0-$((TASKS - 1)) --wrap "$run --pass signatures")
buckets=$(sub --job-name=corpus-buckets --dependency=afterok:"$sig" \
  --array=0-$((BUCKET_TASKS - 1)) --wrap "$run --pass buckets")
cluster=$(sub --job-name=corpus-cluster --dependency=afterok:"$buckets" --wrap "$run --pass cluster")
filter=$(sub --job-name=corpus-filter --dependency=afterok:"$cluster" \
  --array=0-$((TASKS - 1)) --wrap "$run --pass filter")
echo "$sig $buckets $cluster $filter"
