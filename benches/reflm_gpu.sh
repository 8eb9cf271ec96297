#!/usr/bin/env bash
# Reference model on a GPU (benches/README.md, "Reference model"; docs/cuda.md):
#  1. parity: a tiny model trained 8 steps with --device cpu and --device cuda from the
#     same seed has the same losses (f32, within 1e-3) and bf16 stays within 3%;
#  2. trains configs/ref-100m.toml for a fixed token budget with `corpus ref train --device cuda`
# and with PyTorch + transformers' Qwen2ForCausalLM (benches/peers/reflm_torch.py) on the
# same shards, windows, order, batch and schedule, and prints tokens/s, model FLOPs
# utilization, GPU memory and validation perplexity side by side.
#
# Usage: benches/reflm_gpu.sh [--bin PATH] [--tokens N] [--shards DIR] [--config FILE]
#          [--python PY] [--attn sdpa,eager] [--peak-tflops X] [--skip-torch] [--skip-corpus]
#          [--skip-parity]
#   --bin      a CUDA build of corpus (default: build one with scripts/build-cuda.sh,
#              about 10 minutes on 2 cores; libcudart.so.13 must sit beside it)
#   --tokens   training tokens for each run (default 20000000: 306 steps of 65,536)
#   --shards   token shards (default: the developer corpus, ../shared/data/corpus, packed
#              with the shipped vocabulary; about 15M tokens, so the budget repeats it)
#   --attn     the peer's attention kernels, comma-separated (default sdpa,eager: PyTorch's
#              fused attention, and the materialised scores corpus computes)
# Needs: an NVIDIA GPU with driver >= 580; python with torch (CUDA), transformers, pyarrow.
# Exits 1 when the parity check fails, a run fails, a loss is not finite, the runs saw different token counts, or
# the perplexities differ by more than 25% (the initial weights differ; see the peer).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=
tokens=20000000
shards=
cfg=configs/ref-100m.toml
py=python3
attns=sdpa,eager
peak=()
torch_run=1
corpus_run=1
parity=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --shards) shards=$2; shift 2 ;;
    --config) cfg=$2; shift 2 ;;
    --python) py=$2; shift 2 ;;
    --attn) attns=$2; shift 2 ;;
    --peak-tflops) peak=(--peak-tflops "$2"); shift 2 ;;
    --skip-torch) torch_run=0; shift ;;
    --skip-corpus) corpus_run=0; shift ;;
    --skip-parity) parity=0; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
out=target/bench-out/reflm-gpu
mkdir -p "$out"
if [ -z "$bin" ]; then
  scripts/build-cuda.sh
  bin=target/cuda/release/corpus
fi
[ -x "$bin" ] || { echo "no corpus binary at $bin" >&2; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
if [ "$torch_run" = 1 ]; then
  "$py" -c "import torch, transformers, pyarrow; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" >&2
fi

# cuBLAS and cuRAND for corpus (docs/cuda.md): those of the python environment's NVIDIA
# wheels (PyTorch's), ahead of the system's.
nvlibs=$("$py" - <<'PY' 2>/dev/null || true
import glob, os
import nvidia
dirs = {os.path.dirname(p) for base in nvidia.__path__
        for p in glob.glob(os.path.join(base, "**", "lib", "lib*.so*"), recursive=True)}
print(":".join(sorted(dirs)))
PY
)
ldp=${LD_LIBRARY_PATH:-}
if [ -n "$nvlibs" ]; then ldp=$nvlibs${ldp:+:$ldp}; fi
corpus_env=(env "LD_LIBRARY_PATH=$ldp")

if [ -z "$shards" ]; then
  shards=$out/shards
  if [ ! -f "$shards/manifest.json" ]; then
    "$bin" tokens pack --vocab models/assets/corpus152k.tiktoken.gz ../shared/data/corpus \
      -o "$shards" --seq-len 2048 --val-fraction 0.02 -q
  fi
fi
if [ "$parity" = 1 ]; then
  echo "== 1. parity: the same tiny model on the CPU and the GPU" >&2
  for p in f32 bf16; do
    printf '%s\n' "[model]" "layers = 2" "hidden = 64" "heads = 4" "kv_heads = 2" "context = 64" \
      "[train]" "batch_sequences = 4" "grad_accum = 2" "steps = 8" "lr = 3e-3" "warmup_steps = 2" \
      "eval_every = 4" "eval_sequences = 8" "checkpoint_every = 0" "loss_chunk_tokens = 100" \
      "precision = \"$p\"" > "$out/parity-$p.toml"
  done
  rm -rf "$out/parity-cpu" "$out/parity-cuda-f32" "$out/parity-cuda-bf16"
  "$bin" ref train --shards "$shards" --config "$out/parity-f32.toml" --out "$out/parity-cpu" -q > /dev/null
  for p in f32 bf16; do
    "${corpus_env[@]}" "$bin" ref train --shards "$shards" --config "$out/parity-$p.toml" \
      --out "$out/parity-cuda-$p" --device cuda -q > /dev/null
  done
  python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = {k: [json.loads(l) for l in open(f"{out}/parity-{k}/metrics.jsonl")]
        for k in ("cpu", "cuda-f32", "cuda-bf16")}
bad = []
for c, g, h in zip(rows["cpu"], rows["cuda-f32"], rows["cuda-bf16"]):
    for k in ("loss", "grad_norm", "val_loss"):
        if c.get(k) is not None and abs(c[k] - g[k]) > 1e-3 * max(abs(c[k]), 1.0):
            bad.append(f"step {c['step']} {k}: cpu {c[k]:.6f} cuda {g[k]:.6f}")
    if abs(c["loss"] - h["loss"]) > 0.03 * c["loss"]:
        bad.append(f"step {c['step']} loss: cpu f32 {c['loss']:.4f} cuda bf16 {h['loss']:.4f}")
    print(f"step {c['step']}: loss cpu {c['loss']:.5f} cuda f32 {g['loss']:.5f} cuda bf16 {h['loss']:.5f}")
if bad or len(rows["cpu"]) != 8:
    sys.exit("parity failed:\n" + "\n".join(bad))
PY
fi

# The config with the budget's steps, warm-up a tenth of them, one evaluation at the end.
read -r steps run_cfg < <(python3 - "$cfg" "$tokens" "$out" <<'PY'
import re, sys, tomllib
path, tokens, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path).read()
c = tomllib.loads(text)
t = c["train"]
per_step = t["batch_sequences"] * t.get("grad_accum", 1) * c["model"]["context"]
steps = max(1, -(-tokens // per_step))
for k, v in [("steps", steps), ("warmup_steps", max(1, steps // 10)), ("eval_every", 0),
             ("checkpoint_every", 0)]:
    text, n = re.subn(rf"(?m)^{k} = \S+", f"{k} = {v}", text)
    if n != 1:
        sys.exit(f"{path}: expected one `{k} = ...` line in [train]")
dst = f"{out}/ref.toml"
open(dst, "w").write(text)
print(steps, dst)
PY
)
echo "== 2. $run_cfg: $steps steps ($tokens tokens budget)" >&2

results=()
if [ "$corpus_run" = 1 ]; then
  rm -rf "$out/corpus-model"
  echo "== corpus ref train --device cuda" >&2
  "${corpus_env[@]}" "$bin" ref train --shards "$shards" --config "$run_cfg" \
    --out "$out/corpus-model" --device cuda "${peak[@]}" > "$out/corpus.json"
  results+=("$out/corpus.json")
fi
if [ "$torch_run" = 1 ]; then
  for attn in ${attns//,/ }; do
    echo "== torch + transformers ($attn)" >&2
    "$py" benches/peers/reflm_torch.py --shards "$shards" --config "$run_cfg" --device cuda \
      --attn "$attn" "${peak[@]}" --json "$out/torch-$attn.json" > /dev/null
    results+=("$out/torch-$attn.json")
  done
fi
python3 - "${results[@]}" <<'PY'
import json, math, sys
rows = []
for path in sys.argv[1:]:
    r = json.load(open(path))
    name = "torch " + r["peer"].split("(")[-1].rstrip(")") if "peer" in r else "corpus (candle)"
    rows.append((name, r))
gib = lambda b: f"{b / 2**30:.1f}" if b else "-"
print(f"{'run':<22} {'tokens':>11} {'tok/s':>9} {'MFU':>6} {'GPU GiB':>8} {'val loss':>9} {'val ppl':>9}")
for name, r in rows:
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "-"
    print(f"{name:<22} {r['tokens']:>11} {r['step_tokens_per_second']:>9.0f} {mfu:>6} "
          f"{gib(r.get('gpu_memory_peak_bytes')):>8} {r['val_loss']:>9.4f} {r['val_perplexity']:>9.2f}")
print("device:", rows[0][1]["device"] if rows else "-", "| precision:", rows[0][1]["precision"] if rows else "-")
bad = [n for n, r in rows if not (r["val_loss"] is not None and math.isfinite(r["val_loss"]))]
if bad:
    sys.exit(f"not finite: {bad}")
if len({r["tokens"] for _, r in rows}) > 1:
    sys.exit("the runs saw different numbers of tokens")
ppl = [r["val_perplexity"] for _, r in rows]
if ppl and max(ppl) > 1.25 * min(ppl):
    sys.exit(f"validation perplexities differ by more than 25%: {ppl}")
PY
