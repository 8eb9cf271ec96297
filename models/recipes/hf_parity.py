"""Parity of corpus's reference model with Hugging Face transformers.

Loads a `corpus ref train` checkpoint (model.safetensors + config.json) as
`Qwen2ForCausalLM`, scores the same validation windows `corpus ref eval` scores (the
split's shards concatenated in order without the padding of the last sequence, windows of
`context + 1` tokens at stride `context`, the first --max-windows of them) and compares the
mean next-token loss with the one corpus reported.

    corpus ref eval --shards S --checkpoint C --max-windows 64 --json corpus.json
    python models/recipes/hf_parity.py --shards S --checkpoint C --max-windows 64 \
        --corpus-json corpus.json

Exits 1 when the losses differ by more than --tolerance (1e-3). Needs torch,
transformers, pyarrow (not needed by CI).
"""

import argparse
import json
import math
import os
import sys

import pyarrow.parquet as pq
import pyarrow.ipc as ipc
import torch
from transformers import Qwen2ForCausalLM


def resolve_checkpoint(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return path
    with open(os.path.join(path, "latest")) as f:
        return os.path.join(path, f.read().strip())


def read_stream(shards, split):
    with open(os.path.join(shards, "manifest.json")) as f:
        m = json.load(f)
    info = m["splits"][split]
    total = info["tokens"] + info["eot_tokens"]
    out = []
    for shard in info["shards"]:
        path = os.path.join(shards, shard["file"])
        if path.endswith(".arrow"):
            table = ipc.open_file(path).read_all()
        else:
            table = pq.read_table(path)
        for seq in table.column("tokens").to_pylist():
            out.extend(seq)
    return out[:total]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shards", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--split", default="validation")
    ap.add_argument("--context", type=int, default=0)
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--corpus-json")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    a = ap.parse_args()

    ckpt = resolve_checkpoint(a.checkpoint)
    model = Qwen2ForCausalLM.from_pretrained(ckpt, torch_dtype=torch.float32, attn_implementation="eager").eval()
    ctx = a.context or model.config.max_position_embeddings
    stream = read_stream(a.shards, a.split)
    n = (len(stream) - 1) // ctx
    if a.max_windows:
        n = min(n, a.max_windows)
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, n, a.batch):
            ws = range(s, min(n, s + a.batch))
            x = torch.tensor([stream[w * ctx : w * ctx + ctx] for w in ws])
            y = torch.tensor([stream[w * ctx + 1 : w * ctx + ctx + 1] for w in ws])
            logits = model(input_ids=x).logits.float()
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum"
            )
            total += float(loss)
            count += y.numel()
    loss = total / count
    result = {"checkpoint": ckpt, "context": ctx, "windows": n, "tokens": count,
              "hf_loss": loss, "hf_perplexity": math.exp(loss)}
    ok = True
    if a.corpus_json:
        with open(a.corpus_json) as f:
            c = json.load(f)
        result["corpus_loss"] = c["loss"]
        result["abs_diff"] = abs(c["loss"] - loss)
        ok = result["abs_diff"] <= a.tolerance and c["tokens"] == count
    print(json.dumps(result, indent=2))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
