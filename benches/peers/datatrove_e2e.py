"""The end-to-end peer of benches/e2e.sh: a datatrove pipeline of the stages datatrove has
offline, in FineWeb's order, over the same WARC files as `corpus run`.

Usage: python3 datatrove_e2e.py --warc-dir DIR --tokenizer tokenizer.json --work DIR

1. WarcReader -> Trafilatura (FineWeb's settings: favour_precision, 1 s timeout) ->
   GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter (no terminal
   punctuation rule, as FineWeb) -> FineWebQualityFilter -> JsonlWriter
2. MinHash dedup (5-grams, 14 x 8, as FineWeb and corpus): signatures, buckets, clusters,
   filter -> DocumentTokenizer (the tokenizer.json of corpus's vocabulary,
   benches/peers/tiktoken_to_hf.py), writing token shards.
Language ID is left out (datatrove's needs fastText's lid.176.bin from the network), and
so are exact dedup, normalization and decontamination; corpus runs all of them.
One task, one worker: run under /usr/bin/time for CPU seconds and peak memory. Prints the
documents read, written after filtering, after dedup, and tokens.
"""
import argparse, json, time

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster,
                                      MinhashDedupFilter, MinhashDedupSignature)
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter,
                                        GopherQualityFilter, GopherRepetitionFilter)
from datatrove.pipeline.readers import JsonlReader, WarcReader
from datatrove.pipeline.tokens import DocumentTokenizer
from datatrove.pipeline.writers import JsonlWriter


def run(pipeline, logs, tasks=1):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=logs).run()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--warc-dir", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    w = a.work
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1)
    times = {}
    t = time.perf_counter()
    run([
        WarcReader(a.warc_dir, glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True, timeout=1.0),
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        JsonlWriter(f"{w}/filtered"),
    ], f"{w}/logs/1-filter")
    times["extract+filters"] = time.perf_counter() - t
    t = time.perf_counter()
    run([JsonlReader(f"{w}/filtered"), MinhashDedupSignature(f"{w}/sigs", config=cfg)],
        f"{w}/logs/2-sigs")
    # one task per band (datatrove's requirement), run one after the other
    run([MinhashDedupBuckets(f"{w}/sigs", f"{w}/buckets", config=cfg)], f"{w}/logs/3-buckets",
        tasks=cfg.num_buckets)
    run([MinhashDedupCluster(f"{w}/buckets", f"{w}/remove", config=cfg)], f"{w}/logs/4-cluster")
    times["minhash"] = time.perf_counter() - t
    t = time.perf_counter()
    run([
        JsonlReader(f"{w}/filtered"),
        MinhashDedupFilter(f"{w}/remove"),
        DocumentTokenizer(f"{w}/tokens", tokenizer_name_or_path=a.tokenizer,
                          eos_token="<|endoftext|>", save_filename="e2e"),
    ], f"{w}/logs/5-filter-tokenize")
    times["filter+tokenize"] = time.perf_counter() - t

    def counters(stage):
        with open(f"{w}/logs/{stage}/stats.json") as f:
            return json.load(f)

    read = kept = deduped = tokens = None
    for step in counters("1-filter"):
        s = step["stats"]
        if "WARC" in step["name"] or "Warc" in step["name"]:
            read = s.get("documents", {}).get("total", read)
        if "Jsonl" in step["name"]:
            kept = s.get("total", kept)
    for step in counters("5-filter-tokenize"):
        s = step["stats"]
        if "MinHash" in step["name"]:
            deduped = s.get("forwarded", deduped)
        if "tokeniz" in step["name"].lower():
            tokens = s.get("tokens", {}).get("total", tokens)
    print(json.dumps({"read": read, "kept_after_filters": kept, "kept_after_dedup": deduped,
                      "tokens": tokens, "seconds": times}))


if __name__ == "__main__":
    main()
