"""Write a Hugging Face `tokenizer.json` equivalent to a tiktoken vocabulary file, so that
peer tools that only take HF tokenizers (datatrove's DocumentTokenizer) tokenize with the
same vocabulary as corpus in the end-to-end benchmark (benches/e2e.sh).

Usage: python3 tiktoken_to_hf.py VOCAB.tiktoken[.gz] OUT.json [--check TEXT_FILE]

The BPE merges are recovered from the ranks (each token of rank r is what byte-pair
merging with ranks below r turns its bytes into: exactly two parts), the pre-tokenizer is
Qwen's split pattern followed by byte-level mapping (as Qwen2's own tokenizer.json), and
`<|endoftext|>` follows the last rank. With --check, the ids of every line of TEXT_FILE
are compared with tiktoken's (when tiktoken is installed).
"""
import base64, gzip, json, sys

QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def byte_map():
    """GPT-2's bytes -> printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def load(path):
    op = gzip.open if path.endswith(".gz") else open
    ranks = {}
    with op(path, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    return ranks


def split_in_two(token, ranks):
    """Byte-pair merge `token` with ranks below its own until two parts are left."""
    limit = ranks[token]
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, at = None, -1
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < limit and (best is None or r < best):
                best, at = r, i
        if best is None:
            break
        parts[at : at + 2] = [parts[at] + parts[at + 1]]
    if len(parts) != 2:
        raise SystemExit(f"token of rank {limit} does not split into two lower-ranked parts")
    return parts


def main():
    args = sys.argv[1:]
    check = None
    if "--check" in args:
        i = args.index("--check")
        check = args[i + 1]
        del args[i : i + 2]
    vocab_path, out = args
    ranks = load(vocab_path)
    bm = byte_map()
    enc = lambda b: "".join(bm[x] for x in b)
    vocab = {enc(t): r for t, r in ranks.items()}
    merges = []
    for t, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(t) > 1:
            a, b = split_in_two(t, ranks)
            merges.append(f"{enc(a)} {enc(b)}")
    eot = max(ranks.values()) + 1
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": eot, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
             "rstrip": False, "normalized": False, "special": True}
        ],
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN_PATTERN}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                 "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    print(f"{out}: {len(vocab)} tokens, {len(merges)} merges, <|endoftext|> = {eot}", file=sys.stderr)
    if check:
        import tiktoken
        from tokenizers import Tokenizer

        ref = tiktoken.Encoding("check", pat_str=QWEN_PATTERN, mergeable_ranks=ranks,
                                special_tokens={"<|endoftext|>": eot})
        hf = Tokenizer.from_file(out)
        lines = open(check, encoding="utf-8").read().splitlines()
        bad = sum(ref.encode_ordinary(l) != hf.encode(l, add_special_tokens=False).ids for l in lines)
        print(f"check: {len(lines) - bad} of {len(lines)} lines tokenize identically", file=sys.stderr)
        if bad:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
