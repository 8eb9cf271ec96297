"""Reading benchmark examples and documents for the decontamination peers (decontam_*.py)."""
import csv, glob, gzip, json, os


def opener(path):
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def strings(value, out):
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, list):
        for v in value:
            strings(v, out)
    elif isinstance(value, dict):
        for v in value.values():
            strings(v, out)


def examples(path):
    """The text of every example under path, as corpus's loader reads it (every string
    of a JSON record, every cell of a CSV row)."""
    if os.path.isdir(path):
        for entry in sorted(os.listdir(path)):
            full = os.path.join(path, entry)
            base = entry.removesuffix(".gz")
            if os.path.isdir(full) or base.endswith((".jsonl", ".json", ".csv")):
                yield from examples(full)
        return
    base = path.removesuffix(".gz")
    with opener(path) as f:
        if base.endswith(".csv"):
            for row in csv.reader(f):
                yield "\n".join(row)
        elif base.endswith(".jsonl"):
            for line in f:
                if line.strip():
                    out = []
                    strings(json.loads(line), out)
                    yield "\n".join(out)
        else:
            value = json.load(f)
            if isinstance(value, dict):
                value = next((v for v in value.values() if isinstance(v, list)
                              and all(isinstance(i, dict) for i in v)), [value])
            for record in value if isinstance(value, list) else [value]:
                out = []
                strings(record, out)
                yield "\n".join(out)


def documents(inputs, sample):
    files = []
    for p in inputs:
        files += sorted(glob.glob(f"{p}/**/*.jsonl*", recursive=True)) if os.path.isdir(p) else [p]
    k = 0
    for path in files:
        with opener(path) as f:
            for line in f:
                if k % sample == 0:
                    d = json.loads(line)
                    yield str(d.get("id", k)), d["text"]
                k += 1
