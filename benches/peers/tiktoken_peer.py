"""Python tiktoken over the same documents as benches/tokenize.rs: texts read into memory
first, then only encoding timed (encode_ordinary per document on 1 thread;
encode_ordinary_batch with num_threads=N, which releases the GIL, on N), best of R runs.

Usage: python3 benches/peers/tiktoken_peer.py --vocab FILE --pattern qwen|cl100k DATA_DIR
         [--threads N] [--runs R]
Prints one `tiktoken threads=T tokens=...` line per thread count.
"""
import argparse
import gzip
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "parity"))
from tiktoken_parity import encoding  # noqa: E402  (same vocabulary/pattern set-up as the parity test)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", required=True)
    p.add_argument("--pattern", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("data")
    a = p.parse_args()
    enc = encoding(a.vocab, a.pattern)
    texts = []
    for name in sorted(os.listdir(a.data)):
        if name.endswith(".jsonl.gz"):
            with gzip.open(os.path.join(a.data, name), "rt", encoding="utf-8") as f:
                texts.extend(json.loads(line)["text"] for line in f if line.strip())
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    for t in (1, a.threads):
        best = float("inf")
        for _ in range(a.runs):
            start = time.perf_counter()
            if t == 1:
                tokens = sum(len(enc.encode_ordinary(x)) for x in texts)
            else:
                tokens = sum(len(ids) for ids in enc.encode_ordinary_batch(texts, num_threads=t))
            best = min(best, time.perf_counter() - start)
        print(
            f"tiktoken threads={t} docs={len(texts)} tokens={tokens} bytes={nbytes} seconds={best:.3f} "
            f"tokens_per_s={tokens / best:.0f} mb_per_s={nbytes / 1e6 / best:.2f}"
        )


if __name__ == "__main__":
    main()
