"""Scan speed of datatrove's n-gram decontamination (NGramsDecontFilter) on one core.

Usage: python3 decontam_datatrove.py [--n 13] [--sample K] --benchmark NAME=PATH ... INPUT...
INPUT: JSONL(.gz) files or folders of them (documents with a "text" field).

datatrove's indexer (NGramsDecontIndexer) takes its test sets from lighteval, which fetches
them from the Hugging Face Hub, so it cannot run offline. Its filter can: this script
writes the `<task>.index.hashes` files the indexer would write (its own `compute_hashes`
recipe: simplify_text, the English word tokenizer, n-grams joined by spaces, 64-bit xxhash)
from the same benchmark files corpus reads, then times NGramsDecontFilter.filter over the
documents (every K-th one with --sample K), index loading excluded.
Prints one line: docs, MB of text, seconds, docs/s, MB/s, documents flagged.
"""
import argparse, os, sys, tempfile, time

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
from datatrove.utils.hashing import create_hash_func
from datatrove.utils.text import ngrams, simplify_text
from datatrove.utils.word_tokenizers import load_word_tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decontam_io import documents, examples  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--sample", type=int, default=1)
    ap.add_argument("--benchmark", action="append", default=[])
    ap.add_argument("inputs", nargs="+")
    args = ap.parse_args()
    config = NGramsDecontConfig(n_grams=args.n)
    tokenizer = load_word_tokenizer("en")
    hash_func = create_hash_func(config.hash_config)
    index = tempfile.mkdtemp()
    t = time.perf_counter()
    total = 0
    for spec in args.benchmark:
        name, path = spec.split("=", 1)
        hashes = set()
        for text in examples(path):
            tokens = tokenizer.word_tokenize(simplify_text(text, config.norm_config))
            hashes.update(map(hash_func, map(" ".join, ngrams(tokens, args.n))))
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(f"{index}/{name}.index.hashes")
        total += len(hashes)
    print(f"datatrove index: {total} n-gram hashes in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    filt = NGramsDecontFilter(index, config=config)
    filt.load_index_hashes()
    docs = [Document(text=text, id=i) for i, text in documents(args.inputs, args.sample)]
    mb = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    t = time.perf_counter()
    flagged = sum(1 for d in docs if filt.filter(d) is not True)
    secs = time.perf_counter() - t
    print(f"datatrove NGramsDecontFilter: {len(docs)} docs, {mb:.1f} MB, {secs:.1f} s, "
          f"{len(docs) / secs:.0f} docs/s, {mb / secs:.2f} MB/s, flagged {flagged}")


if __name__ == "__main__":
    main()
