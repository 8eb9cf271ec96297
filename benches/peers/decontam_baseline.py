"""A straightforward Python 13-gram decontamination scan, single core, standard library only.

Usage: python3 decontam_baseline.py [--n 13] [--sample K] --benchmark NAME=PATH ... INPUT...
INPUT: JSONL(.gz) files or folders of them (documents with a "text" field).

The same normalization idea as corpus's dedup key: NFKC, lower-cased, digits folded to 0,
punctuation and symbols as separators, whitespace-separated words, every CJK character a
token of its own. The index is a Python set of the hashes of every n-gram (tokens joined
by spaces) of every example of the benchmark files (every string of a JSON record, every
cell of a CSV row). A document is flagged at its first n-gram found in the set. Times
the scan over the documents (every K-th one with --sample K), index building excluded.
Prints one line: docs, MB of text, seconds, docs/s, MB/s, documents flagged.
"""
import argparse, os, re, sys, time, unicodedata

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from decontam_io import documents, examples  # noqa: E402

CJK = "\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
TOKEN = re.compile(f"[{CJK}]|[^\\W_{CJK}]+")
DIGIT = re.compile(r"\d")


def tokens(text):
    return TOKEN.findall(DIGIT.sub("0", unicodedata.normalize("NFKC", text).lower()))


def grams(toks, n):
    return (hash(" ".join(toks[i:i + n])) for i in range(len(toks) - n + 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=13)
    ap.add_argument("--sample", type=int, default=1)
    ap.add_argument("--benchmark", action="append", default=[])
    ap.add_argument("inputs", nargs="+")
    args = ap.parse_args()
    t = time.perf_counter()
    index = set()
    for spec in args.benchmark:
        index.update(*(grams(tokens(text), args.n) for text in examples(spec.split("=", 1)[1])))
    print(f"baseline index: {len(index)} n-gram hashes in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    docs = [text for _, text in documents(args.inputs, args.sample)]
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    t = time.perf_counter()
    flagged = sum(1 for d in docs if any(h in index for h in grams(tokens(d), args.n)))
    secs = time.perf_counter() - t
    print(f"python baseline: {len(docs)} docs, {mb:.1f} MB, {secs:.1f} s, "
          f"{len(docs) / secs:.0f} docs/s, {mb / secs:.2f} MB/s, flagged {flagged}")


if __name__ == "__main__":
    main()
