"""Python tiktoken over the same documents as benches/tokenize.rs: texts read into memory
first, then only encoding timed (encode_ordinary per document; on N threads each thread
takes every N-th document, as the Rust bench does), best of R runs; wall and CPU time.

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
from concurrent.futures import ThreadPoolExecutor

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
        best = best_cpu = float("inf")
        for _ in range(a.runs):
            start = time.perf_counter()
            cpu = time.process_time()
            if t == 1:
                tokens = sum(len(enc.encode_ordinary(x)) for x in texts)
            else:
                # One thread per share of the documents, dealt round-robin as in the Rust
                # bench (tiktoken releases the GIL while it encodes). This beats
                # encode_ordinary_batch, whose per-document futures cost more than
                # short documents take to encode.
                with ThreadPoolExecutor(t) as pool:
                    parts = pool.map(lambda k: sum(len(enc.encode_ordinary(x)) for x in texts[k::t]), range(t))
                    tokens = sum(parts)
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        print(
            f"tiktoken threads={t} docs={len(texts)} tokens={tokens} bytes={nbytes} seconds={best:.3f} cpu_seconds={best_cpu:.2f} "
            f"tokens_per_s={tokens / best:.0f} mb_per_s={nbytes / 1e6 / best:.2f}"
        )


if __name__ == "__main__":
    main()
