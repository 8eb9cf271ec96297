"""Peer WARC readers over the same file as benches/warc_read.rs.

Each iterates all records and reads every record's full payload; best of N runs.
Prints `name records=N seconds=S input_bytes=B ...` lines like the Rust bench.
Usage: python3 benches/peers/warc_read.py PATH [--runs N]
"""
import os
import sys
import time


def fastwarc_run(path, parse_http):
    from fastwarc.warc import ArchiveIterator

    n = payload = 0
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f, parse_http=parse_http):
            payload += len(rec.reader.read())
            n += 1
    return n, payload


def warcio_run(path):
    from warcio.archiveiterator import ArchiveIterator

    n = payload = 0
    with open(path, "rb") as f:
        for rec in ArchiveIterator(f):
            payload += len(rec.content_stream().read())
            n += 1
    return n, payload


def main():
    args = sys.argv[1:]
    runs = 3
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i : i + 2]
    path = args[0] if args else "target/bench-data/bench.warc.gz"
    size = os.path.getsize(path)
    peers = [
        ("fastwarc", lambda: fastwarc_run(path, False)),
        ("fastwarc-http", lambda: fastwarc_run(path, True)),
        ("warcio", lambda: warcio_run(path)),
    ]
    for name, fn in peers:
        best = float("inf")
        for _ in range(runs if name != "warcio" else 1):
            t = time.perf_counter()
            n, payload = fn()
            best = min(best, time.perf_counter() - t)
        print(
            f"{name} records={n} docs=0 seconds={best:.4f} input_bytes={size} "
            f"payload_bytes={payload} records_per_s={n / best:.0f} mb_per_s={size / best / 1e6:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
