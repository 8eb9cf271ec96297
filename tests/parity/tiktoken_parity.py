#!/usr/bin/env python3
"""Checks corpus's token outputs against Python tiktoken and pyarrow (run by tests/tokens.rs).

Commands (each exits 0 when everything matches, 1 with a description of the first
differences otherwise, 3 when a needed package is missing):

  ids --vocab FILE --pattern qwen|cl100k --corpus-ids CORPUS.jsonl INPUT.jsonl[.gz]...
      Encodes the `text` of every input line with tiktoken (ordinary text, no special
      tokens) and compares with corpus's `{"id", "ids"}` lines, in order.
      `qwen`: Qwen's pattern as dashscope's Qwen tokenizer defines it (PAT_STR), the
      vocabulary file given (dashscope's qwen.tiktoken).
      `cl100k`: tiktoken's own cl100k_base definition (tiktoken_ext.openai_public), with
      its ranks read from FILE (corpus's dump of its built-in copy) after checking that
      FILE has the SHA-256 tiktoken expects of cl100k_base.tiktoken.

  qwen-vocab
      Prints the path of qwen.tiktoken inside the installed dashscope package.

  shards DIR --vocab FILE --pattern qwen|cl100k INPUT.jsonl[.gz]...
      Reads a `corpus tokens pack` output with pyarrow: checks the schema (fixed-size
      list of uint32 of the manifest's seq_len), the counts against the manifest, that
      document starts agree with the document table, and that every document's tokens
      decode (tiktoken) back to its input text followed by <|endoftext|>.

  megatron PREFIX DIR
      Reads PREFIX.bin/.idx (Megatron-LM MMapIndexedDataset layout) with numpy and checks
      that its documents are the documents of the pack output DIR's train split, in order.
"""
import argparse
import base64
import gzip
import hashlib
import json
import os
import struct
import sys

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


def need(module):
    try:
        return __import__(module)
    except ImportError as e:
        print(f"missing Python package: {module} ({e})", file=sys.stderr)
        sys.exit(3)


def read_docs(paths):
    docs = []
    # corpus reads its inputs in sorted path order.
    for path in sorted(paths):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(json.loads(line))
    return docs


def encoding(vocab, pattern):
    tiktoken = need("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    if pattern == "qwen":
        need("dashscope")
        from dashscope.tokenizers.qwen_tokenizer import PAT_STR

        ranks = load_tiktoken_bpe(vocab)
        return tiktoken.Encoding("qwen", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens={})
    if pattern == "cl100k":
        with open(vocab, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != CL100K_SHA256:
            sys.exit(f"{vocab}: sha256 {digest} is not cl100k_base's {CL100K_SHA256}")
        import tiktoken_ext.openai_public as public

        real_load = public.load_tiktoken_bpe
        public.load_tiktoken_bpe = lambda _url, expected_hash=None: real_load(vocab)
        try:
            spec = public.cl100k_base()
        finally:
            public.load_tiktoken_bpe = real_load
        return tiktoken.Encoding(
            "cl100k_base", pat_str=spec["pat_str"], mergeable_ranks=spec["mergeable_ranks"], special_tokens={}
        )
    sys.exit(f"unknown pattern {pattern}")


def cmd_ids(args):
    enc = encoding(args.vocab, args.pattern)
    docs = read_docs(args.inputs)
    with open(args.corpus_ids, encoding="utf-8") as f:
        ours = [json.loads(line) for line in f if line.strip()]
    if len(ours) != len(docs):
        sys.exit(f"corpus wrote {len(ours)} lines for {len(docs)} documents")
    bad = 0
    tokens = 0
    for doc, mine in zip(docs, ours):
        want = enc.encode_ordinary(doc["text"])
        tokens += len(want)
        if str(doc.get("id")) != mine["id"] or want != mine["ids"]:
            bad += 1
            if bad <= 3:
                k = next((i for i, (a, b) in enumerate(zip(want, mine["ids"])) if a != b), min(len(want), len(mine["ids"])))
                print(
                    f"document {doc.get('id')}: corpus id {mine['id']}, first difference at token {k}: "
                    f"tiktoken {want[k:k + 8]} corpus {mine['ids'][k:k + 8]}",
                    file=sys.stderr,
                )
    if bad:
        sys.exit(f"{bad} of {len(docs)} documents differ")
    print(f"ids: {len(docs)} documents, {tokens} tokens identical ({args.pattern})")


def read_table(path):
    need("pyarrow")
    import pyarrow.ipc
    import pyarrow.parquet

    if path.endswith(".parquet"):
        return pyarrow.parquet.read_table(path)
    with pyarrow.ipc.open_file(path) as reader:
        return reader.read_all()


def cmd_shards(args):
    pa = need("pyarrow")
    enc = encoding(args.vocab, args.pattern)
    eot = enc.n_vocab  # corpus numbers <|endoftext|> right after the vocabulary
    with open(os.path.join(args.dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    seq_len = manifest["config"]["seq_len"]
    if manifest["tokenizer"]["eot_id"] != eot:
        sys.exit(f"manifest eot_id {manifest['tokenizer']['eot_id']} != {eot}")
    texts = {str(d["id"]): d["text"] for d in read_docs(args.inputs)}
    seen = 0
    for name, split in manifest["splits"].items():
        tokens = []
        first_docs = []
        starts = []
        for shard in split["shards"]:
            table = read_table(os.path.join(args.dir, shard["file"]))
            col = table.schema.field("tokens").type
            if not pa.types.is_fixed_size_list(col) or col.list_size != seq_len or col.value_type != pa.uint32():
                sys.exit(f"{shard['file']}: tokens column is {col}, want fixed_size_list<uint32>[{seq_len}]")
            if table.num_rows != shard["sequences"]:
                sys.exit(f"{shard['file']}: {table.num_rows} rows, manifest says {shard['sequences']}")
            flat = table.column("tokens").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            base = len(tokens) // seq_len if tokens else 0
            for row, offs in enumerate(table.column("doc_starts").to_pylist()):
                starts.extend((base + row) * seq_len + o for o in offs)
            first_docs.extend(table.column("first_doc").to_pylist())
            tokens.extend(flat.tolist())
        if len(tokens) != split["sequences"] * seq_len:
            sys.exit(f"{name}: {len(tokens)} tokens, want {split['sequences']} x {seq_len}")
        docs = read_table(os.path.join(args.dir, split["docs_file"])).to_pylist()
        if len(docs) != split["docs"]:
            sys.exit(f"{name}: document table has {len(docs)} rows, manifest says {split['docs']}")
        want_starts = [d["sequence"] * seq_len + d["offset"] for d in docs]
        if starts != want_starts:
            sys.exit(f"{name}: doc_starts disagree with the document table")
        for k, d in enumerate(docs):
            s = want_starts[k]
            ids = tokens[s : s + d["n_tokens"] + 1]
            if ids[-1] != eot:
                sys.exit(f"{name}: document {d['id']} is not followed by <|endoftext|>")
            if enc.decode_bytes(ids[:-1]) != texts[d["id"]].encode("utf-8"):
                sys.exit(f"{name}: document {d['id']} does not decode to its text")
            if first_docs[s // seq_len] > k:
                sys.exit(f"{name}: first_doc of sequence {s // seq_len} is after document {k}")
        pad = split["pad_tokens"]
        if pad and set(tokens[-pad:]) != {eot}:
            sys.exit(f"{name}: padding is not <|endoftext|>")
        seen += len(docs)
    if seen != len(texts):
        sys.exit(f"the splits hold {seen} documents, the inputs {len(texts)}")
    print(f"shards: {seen} documents decode back to their text")


def cmd_megatron(args):
    np = need("numpy")
    with open(args.prefix + ".idx", "rb") as f:
        idx = f.read()
    magic = b"MMIDIDX\x00\x00"
    if not idx.startswith(magic):
        sys.exit("bad .idx magic")
    off = len(magic)
    (version,) = struct.unpack("<Q", idx[off : off + 8])
    (code,) = struct.unpack("<B", idx[off + 8 : off + 9])
    (n_seq,) = struct.unpack("<Q", idx[off + 9 : off + 17])
    (n_doc,) = struct.unpack("<Q", idx[off + 17 : off + 25])
    off += 25
    dtypes = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}
    dtype = dtypes[code]
    sizes = np.frombuffer(idx, dtype=np.int32, count=n_seq, offset=off)
    off += sizes.nbytes
    pointers = np.frombuffer(idx, dtype=np.int64, count=n_seq, offset=off)
    off += pointers.nbytes
    doc_idx = np.frombuffer(idx, dtype=np.int64, count=n_doc, offset=off)
    if version != 1 or off + doc_idx.nbytes != len(idx):
        sys.exit(f"version {version}, {len(idx) - off - doc_idx.nbytes} stray bytes in .idx")
    data = np.memmap(args.prefix + ".bin", dtype=dtype, mode="r")
    itemsize = np.dtype(dtype).itemsize
    if list(doc_idx) != list(range(n_seq + 1)):
        sys.exit("doc_idx is not 0..=n")
    if n_seq and (pointers[0] != 0 or any(pointers[1:] != pointers[:-1] + sizes[:-1] * itemsize)):
        sys.exit("pointers are not the running sum of sizes")
    with open(os.path.join(args.dir, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    split = manifest["splits"]["train"]
    seq_len = manifest["config"]["seq_len"]
    flat = []
    for shard in split["shards"]:
        table = read_table(os.path.join(args.dir, shard["file"]))
        flat.extend(table.column("tokens").combine_chunks().flatten().to_numpy(zero_copy_only=False).tolist())
    docs = read_table(os.path.join(args.dir, split["docs_file"])).to_pylist()
    if n_seq != len(docs):
        sys.exit(f".idx has {n_seq} documents, the split {len(docs)}")
    for k, d in enumerate(docs):
        s = d["sequence"] * seq_len + d["offset"]
        want = flat[s : s + d["n_tokens"] + 1]
        got = data[pointers[k] // itemsize : pointers[k] // itemsize + sizes[k]].tolist()
        if got != want:
            sys.exit(f"document {k} ({d['id']}) differs")
    print(f"megatron: {n_seq} documents, dtype code {code}, identical to the shards")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ids")
    a.add_argument("--vocab", required=True)
    a.add_argument("--pattern", required=True)
    a.add_argument("--corpus-ids", required=True)
    a.add_argument("inputs", nargs="+")
    sub.add_parser("qwen-vocab")
    s = sub.add_parser("shards")
    s.add_argument("dir")
    s.add_argument("--vocab", required=True)
    s.add_argument("--pattern", required=True)
    s.add_argument("inputs", nargs="+")
    m = sub.add_parser("megatron")
    m.add_argument("prefix")
    m.add_argument("dir")
    args = p.parse_args()
    if args.cmd == "ids":
        cmd_ids(args)
    elif args.cmd == "qwen-vocab":
        dashscope = need("dashscope")
        path = os.path.join(os.path.dirname(dashscope.__file__), "resources", "qwen.tiktoken")
        if not os.path.isfile(path):
            print(f"dashscope has no {path}", file=sys.stderr)
            sys.exit(3)
        print(path)
    elif args.cmd == "shards":
        cmd_shards(args)
    else:
        cmd_megatron(args)


if __name__ == "__main__":
    main()
