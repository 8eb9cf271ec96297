#!/usr/bin/env bash
# Object storage overhead: `corpus run` over the same generated WARC shards read from
# local files, from a plain HTTP server and from an S3-compatible server (moto), and
# written to local disk or to S3, all on loopback. Prints wall time, CPU time, peak RSS
# and MB/s of gzipped input, best of N runs, for a read-only pipeline (`length`: the
# cost of reading and writing) and one with HTML extraction (`extract`).
# Usage: benches/object_store.sh [--shard-mb N] [--runs N] [--debug]
# (--debug: the dev-profile binaries already built, for a quick look without a release build)
# Needs python3 with moto[server] (installed from PyPI if missing); nothing leaves the
# machine (servers bind 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARD_MB=25
RUNS=3
PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --shard-mb) SHARD_MB=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    *) echo "usage: $0 [--shard-mb N] [--runs N] [--debug]" >&2; exit 2 ;;
  esac
done
python3 -c "import moto.server, boto3" 2>/dev/null || python3 -m pip install --quiet "moto[server]==5.2.1"
DATA=target/bench-data/pipeline-${SHARD_MB}mb
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin corpus --bin gen-warc
elif [ ! -x target/debug/corpus ] || [ ! -x target/debug/gen-warc ]; then
  # The binaries a `cargo test` build leaves (a plain `cargo build` unifies features
  # without the dev-dependencies and rebuilds much of the tree).
  cargo build --tests --quiet --bin corpus --bin gen-warc
fi
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
mkdir -p "$DATA"
for i in 0 1 2 3; do
  f=$DATA/shard-$i.warc.gz
  [ -f "$f" ] || "$BIN/gen-warc" --out "$f" --size-mb "$SHARD_MB" >/dev/null
done
BYTES=$(cat "$DATA"/shard-*.warc.gz | wc -c)

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; exit 1; }

HTTP_PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$DATA" "$HTTP_PORT" >/dev/null 2>&1 &
PIDS+=($!)
S3_PORT=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$S3_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$HTTP_PORT"
wait_port "$S3_PORT"
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
python3 - "$DATA" <<'PY'
import boto3, glob, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
s3.create_bucket(Bucket="bench")
for f in sorted(glob.glob(os.path.join(sys.argv[1], "shard-*.warc.gz"))):
    s3.upload_file(f, "bench", "in/" + os.path.basename(f))
PY

LOCAL_IN="\"$PWD/$DATA/shard-0.warc.gz\", \"$PWD/$DATA/shard-1.warc.gz\", \"$PWD/$DATA/shard-2.warc.gz\", \"$PWD/$DATA/shard-3.warc.gz\""
HTTP_IN=$(for i in 0 1 2 3; do printf '"http://127.0.0.1:%s/shard-%s.warc.gz", ' "$HTTP_PORT" "$i"; done)
S3_IN=$(for i in 0 1 2 3; do printf '"s3://bench/in/shard-%s.warc.gz", ' "$i"; done)

config() { # NAME INPUTS OUTPUT STAGE
  cat > "$WORK/$1.toml" <<TOML
[input]
paths = [$2]
[output]
dir = "$3"
dropped = true
[[stages]]
kind = "$4"
TOML
}

printf '%-34s %8s %8s %9s %10s\n' run wall_s cpu_s rss_mb mb_gz/s
for stage in length extract; do
  for spec in "local local" "http local" "s3 local" "local s3"; do
    set -- $spec
    case $1 in local) in=$LOCAL_IN ;; http) in=$HTTP_IN ;; s3) in=$S3_IN ;; esac
    case $2 in local) out=$WORK/out ;; s3) out=s3://bench/out-$stage ;; esac
    config run "$in" "$out" "$stage"
    best=""
    for _ in $(seq "$RUNS"); do
      /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" \
        "$BIN/corpus" run "$WORK/run.toml" --overwrite -q --threads 2
      read -r wall user sys rss < "$WORK/time"
      if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $wall < ${best%% *} else 1)"; then
        best="$wall $user $sys $rss"
      fi
    done
    python3 - "$stage: $1 -> $2" $best "$BYTES" <<'PY'
import sys
name, wall, user, sys_, rss, size = sys.argv[1:]
wall, cpu = float(wall), float(user) + float(sys_)
print(f"{name:<34} {wall:>8.2f} {cpu:>8.2f} {int(rss)/1024:>9.1f} {int(size)/1e6/wall:>10.1f}")
PY
  done
done
