"""PyTorch + transformers peer of `corpus ref train` (benches/reflm_gpu.sh).

Trains `Qwen2ForCausalLM` with the architecture and [train] settings of a corpus reference
config (configs/ref-100m.toml) on the same token shards, in the same order, and prints a
JSON summary with the fields of corpus's `summary.json` that the comparison reads:
tokens/s in optimizer steps, model FLOPs utilization, GPU memory, validation loss and
perplexity.

Kept the same as corpus: the token stream (a split's shards in order, without the padding
of the last sequence), windows of context + 1 tokens at stride context, the SplitMix64
window order per epoch (models/src/reflm/rng.rs, train.rs `Order`), the schedule (linear
warm-up, cosine to min_lr_ratio), AdamW with weight decay on matrices and embeddings only,
global-norm clipping, bf16 autocast with f32 master weights and loss when
precision = "bf16", validation on the first eval_sequences windows, the model FLOPs per
token (6N + 12LHT) and the peak-FLOPs table. Different: the initial weights (transformers'
init from the same N(0, init_std) distribution, another generator) and the kernels
(attention by --attn: `sdpa`, PyTorch's fused attention, by default; `eager` materialises
the scores as corpus does).

    python benches/peers/reflm_torch.py --shards S --config configs/ref-100m.toml \
        [--steps N] [--device cuda] [--attn sdpa|eager] [--json out.json]

Needs torch, transformers, pyarrow. Exits 1 if the loss is not finite.
"""

import argparse
import json
import math
import os
import sys
import time
import tomllib

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

MASK64 = (1 << 64) - 1

# Dense peak TFLOP/s (bf16, f32) by device name: models/src/reflm/perf.rs.
PEAKS = [
    ("H100 PCIE", 756.0, 51.2),
    ("H100 NVL", 835.0, 60.0),
    ("H200 NVL", 835.0, 60.0),
    ("H100", 989.4, 66.9),
    ("H200", 989.4, 66.9),
    ("A100", 312.0, 19.5),
]

TRAIN_DEFAULTS = dict(
    seed=1, batch_sequences=8, grad_accum=1, steps=200, lr=3e-3, warmup_steps=20,
    min_lr_ratio=0.1, weight_decay=0.1, beta1=0.9, beta2=0.95, eps=1e-8, grad_clip=1.0,
    eval_every=50, eval_sequences=64, checkpoint_every=100, loss_chunk_tokens=1024,
    precision="f32",
)


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK64

    def next_u64(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def below(self, n):
        return (self.next_u64() * n) >> 64

    def permutation(self, n):
        v = list(range(n))
        for i in range(n - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]
        return v


class Order:
    """The window of global sample g: corpus's train.rs `Order`."""

    def __init__(self, seed, n):
        self.seed, self.n, self.epoch, self.perm = seed, n, None, None

    def get(self, g):
        epoch = g // self.n
        if epoch != self.epoch:
            rng = SplitMix64(self.seed ^ ((epoch * 0xA24BAED4963EE407) & MASK64))
            self.perm = rng.permutation(self.n)
            self.epoch = epoch
        return self.perm[g % self.n]


def read_stream(shards, split):
    with open(os.path.join(shards, "manifest.json")) as f:
        m = json.load(f)
    info = m["splits"][split]
    total = info["tokens"] + info["eot_tokens"]
    parts = []
    for shard in info["shards"]:
        path = os.path.join(shards, shard["file"])
        table = ipc.open_file(path).read_all() if path.endswith(".arrow") else pq.read_table(path)
        col = table.column("tokens").combine_chunks()
        parts.append(torch.from_numpy(col.values.to_numpy(zero_copy_only=False).astype("int64")))
    stream = torch.cat(parts)[:total]
    if len(stream) != total:
        sys.exit(f"{shards}: split {split} holds {len(stream)} tokens, the manifest says {total}")
    return stream, m


def lr_at(t, step):
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    decay = max(t["steps"] - t["warmup_steps"], 1)
    x = min((step - t["warmup_steps"]) / decay, 1.0)
    lo = t["lr"] * t["min_lr_ratio"]
    return lo + 0.5 * (t["lr"] - lo) * (1.0 + math.cos(math.pi * x))


def ceil_div(a, b):
    return -(-a // b)


def intermediate(m):
    """SwiGLU size: corpus's ModelConfig::intermediate (8/3 of hidden, up to a multiple of 8)."""
    if m.get("intermediate", 0):
        return m["intermediate"]
    return ceil_div(ceil_div(m["hidden"] * 8, 3), 8) * 8


def parameters(m, vocab):
    """corpus's ModelConfig::parameters."""
    h = m["hidden"]
    kv = (m.get("kv_heads") or m["heads"]) * (h // m["heads"])
    attn = h * h + h + 2 * (h * kv + kv) + h * h
    layer = attn + 3 * h * intermediate(m) + 2 * h
    return m["layers"] * layer + 2 * vocab * h + h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", required=True)
    ap.add_argument("--val-shards")
    ap.add_argument("--config", required=True)
    ap.add_argument("--steps", type=int, help="override [train] steps")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--peak-tflops", type=float)
    ap.add_argument("--json")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()

    with open(a.config, "rb") as f:
        cfg = tomllib.load(f)
    m = cfg["model"]
    t = dict(TRAIN_DEFAULTS, **cfg.get("train", {}))
    if a.steps:
        t["steps"] = a.steps
    train, man = read_stream(a.shards, "train")
    val, vman = read_stream(a.val_shards or a.shards, "validation")
    if man["tokenizer"]["hash"] != vman["tokenizer"]["hash"]:
        sys.exit("training and validation shards were tokenized with different vocabularies")
    vocab = m.get("vocab") or man["tokenizer"]["vocab_size"]
    eot = man["tokenizer"]["eot_id"]
    ctx = m["context"]
    dev = torch.device(a.device)
    bf16 = t["precision"] == "bf16"
    if bf16 and dev.type != "cuda":
        sys.exit('precision = "bf16" is for GPUs (as in corpus)')

    torch.manual_seed(t["seed"])
    hf = Qwen2Config(
        vocab_size=vocab, hidden_size=m["hidden"], intermediate_size=intermediate(m),
        num_hidden_layers=m["layers"], num_attention_heads=m["heads"],
        num_key_value_heads=m.get("kv_heads") or m["heads"], max_position_embeddings=ctx,
        rope_theta=m.get("rope_theta", 10000.0), rms_norm_eps=m.get("rms_norm_eps", 1e-6),
        initializer_range=m.get("init_std", 0.02), tie_word_embeddings=False,
        use_sliding_window=False, attention_dropout=0.0, bos_token_id=eot, eos_token_id=eot,
        use_cache=False,
    )
    model = Qwen2ForCausalLM._from_config(hf, attn_implementation=a.attn)  # f32
    model.to(dev).train()
    n_params = sum(p.numel() for p in model.parameters())
    expected = parameters(m, vocab)
    if n_params != expected:
        sys.exit(f"Qwen2ForCausalLM has {n_params} parameters, corpus's config {expected}: not the same architecture")
    fwd = torch.compile(model) if a.compile else model

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=t["lr"], betas=(t["beta1"], t["beta2"]), eps=t["eps"], fused=dev.type == "cuda",
    )
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    mem_peak, mem_total = None, None

    def sample_memory():
        nonlocal mem_peak, mem_total
        if cuda:
            free, total = torch.cuda.mem_get_info(dev)
            mem_peak = max(mem_peak or 0, total - free)
            mem_total = total

    def autocast():
        return torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16)

    def batch(stream, ws):
        x = torch.stack([stream[w * ctx: w * ctx + ctx] for w in ws]).to(dev, non_blocking=True)
        y = torch.stack([stream[w * ctx + 1: w * ctx + ctx + 1] for w in ws]).to(dev, non_blocking=True)
        return x, y

    def evaluate():
        n = (len(val) - 1) // ctx
        if t["eval_sequences"]:
            n = min(n, t["eval_sequences"])
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad(), autocast():
            for s in range(0, n, t["batch_sequences"]):
                x, y = batch(val, range(s, min(n, s + t["batch_sequences"])))
                logits = fwd(input_ids=x).logits.float()
                total += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, vocab), y.reshape(-1), reduction="sum").item()
                count += y.numel()
        model.train()
        return total / count

    n_windows = (len(train) - 1) // ctx
    order = Order(t["seed"], n_windows)
    per_step = t["batch_sequences"] * t["grad_accum"] * ctx
    step_secs, tokens, val_loss, loss = 0.0, 0, None, float("nan")
    started = time.perf_counter()
    for step in range(t["steps"]):
        sync()
        t0 = time.perf_counter()
        lr = lr_at(t, step)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = 0.0
        for micro in range(t["grad_accum"]):
            base = (step * t["grad_accum"] + micro) * t["batch_sequences"]
            x, y = batch(train, [order.get(base + j) for j in range(t["batch_sequences"])])
            with autocast():
                logits = fwd(input_ids=x).logits
            l = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), y.reshape(-1))
            (l / t["grad_accum"]).backward()
            loss += l.item() / t["grad_accum"]
            sample_memory()
            del logits, l
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"] or float("inf"))
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        sample_memory()
        step_secs += time.perf_counter() - t0
        tokens += per_step
        v = ""
        if step + 1 == t["steps"] or (t["eval_every"] and (step + 1) % t["eval_every"] == 0):
            val_loss = evaluate()
            v = f" val {val_loss:.4f} (ppl {math.exp(val_loss):.1f})"
        if not a.quiet:
            print(f"step {step + 1}/{t['steps']}: loss {loss:.4f} lr {lr:.2e} |g| {float(norm):.3f} "
                  f"{tokens / step_secs:.0f} tokens/s{v}", file=sys.stderr)
    secs = time.perf_counter() - started

    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    flops_per_token = 6.0 * (n_params - vocab * m["hidden"]) + 12.0 * m["layers"] * m["hidden"] * ctx
    peak = a.peak_tflops * 1e12 if a.peak_tflops else None
    if peak is None and cuda:
        for key, p_bf16, p_f32 in PEAKS:
            if key in name.upper():
                peak = 1e12 * (p_bf16 if bf16 else p_f32)
                break
    step_tps = tokens / step_secs if step_secs else 0.0
    out = {
        "peer": f"torch {torch.__version__} + transformers Qwen2ForCausalLM ({a.attn}{', compiled' if a.compile else ''})",
        "steps": t["steps"], "tokens": tokens, "parameters": n_params,
        "train_loss": loss, "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss) if val_loss is not None else None,
        "tokens_per_second": tokens / secs, "step_tokens_per_second": step_tps,
        "device": f"{a.device} ({name})" if cuda else "cpu", "precision": t["precision"],
        "flops_per_token": flops_per_token, "peak_flops": peak,
        "mfu": flops_per_token * step_tps / peak if peak else None,
        "gpu_memory_peak_bytes": mem_peak, "gpu_memory_total_bytes": mem_total,
        "torch_max_memory_reserved_bytes": torch.cuda.max_memory_reserved(dev) if cuda else None,
    }
    text = json.dumps(out, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    if not (math.isfinite(loss) and val_loss is not None and math.isfinite(val_loss)):
        sys.exit("the loss is not finite")


if __name__ == "__main__":
    main()
