"""MinHash signature throughput of datasketch and datatrove on the same documents.

Usage: python3 minhash_sig.py [--limit N] FILE.jsonl[.gz]...
Prints one line per tool: docs, seconds, docs/s, MB/s (of text), peak RSS growth.
Settings as corpus's defaults and FineWeb's: 5-word shingles, 112 hashes (14 x 8), seed 1.
Runs on one core (numpy's threads limited to 1 by the caller's environment).
"""
import gzip, json, resource, sys, tempfile, time


def read(paths, limit):
    docs = []
    for p in paths:
        op = gzip.open if p.endswith(".gz") else open
        with op(p, "rt", encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                docs.append((d.get("id", str(len(docs))), d["text"]))
                if limit and len(docs) >= limit:
                    return docs
    return docs


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name, docs, secs, rss0):
    mb = sum(len(t.encode()) for _, t in docs) / 1e6
    print(f"{name}: {len(docs)} docs {secs:.2f}s {len(docs)/secs:.0f} docs/s {mb/secs:.2f} MB/s "
          f"peak-rss {rss_mb():.0f} MB (+{rss_mb()-rss0:.0f})", flush=True)


def bench_datasketch(docs):
    from datasketch import MinHash
    import re
    rss0 = rss_mb()
    word = re.compile(r"\w+")
    t = time.perf_counter()
    for _, text in docs:
        toks = word.findall(text.lower())
        sh = [" ".join(toks[i:i + 5]).encode() for i in range(len(toks) - 4)]
        m = MinHash(num_perm=112, seed=1)
        if sh:
            m.update_batch(sh)
    report("datasketch 2.0 (update_batch)", docs, time.perf_counter() - t, rss0)


def bench_datatrove(docs):
    from datatrove.data import Document
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig
    rss0 = rss_mb()
    with tempfile.TemporaryDirectory() as out:
        # sha1 shingle hashes: datatrove's xxhash path passes str to xxhash, which the
        # current xxhash wheel refuses.
        config = MinhashConfig(hash_config=HashConfig(precision=64, hash_fc="sha1"))
        step = MinhashDedupSignature(output_folder=out, config=config)
        t = time.perf_counter()
        data = (Document(text=text, id=i) for i, text in docs)
        for _ in step.run(data, rank=0, world_size=1) or ():
            pass
        report("datatrove 0.10 MinhashDedupSignature (sha1)", docs, time.perf_counter() - t, rss0)


if __name__ == "__main__":
    args = sys.argv[1:]
    limit = 0
    if args and args[0] == "--limit":
        limit = int(args[1])
        args = args[2:]
    docs = read(args, limit)
    which = {"datasketch": bench_datasketch, "datatrove": bench_datatrove}
    for name in (sys.argv and __import__("os").environ.get("PEERS", "datasketch,datatrove")).split(","):
        which[name](docs)
