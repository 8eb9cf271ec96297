#!/usr/bin/env python3
"""Train the shipped text classifiers (models/assets/quality.onnx, safety.onnx).

Features are NOT computed here: every text goes through `corpus scorer features`, the
Rust extractor the runtime uses (models/src/features.rs), so training and inference
share one implementation. The model is a logistic regression on those hashed n-gram
vectors, written as a small ONNX graph:

    score = Sigmoid(ReduceSum(Gather(W, indices) * values, axis=1) + b)

with inputs `indices` (int64 [batch, k]) and `values` (float [batch, k]), padded with
index 0 / value 0, and output `score` (float [batch]).

Usage (from the repository root, after `cargo build`):

    pip install numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 onnx==1.23.2 onnxruntime==1.32.0
    python3 models/recipes/train_classifiers.py --corpus target/debug/corpus \
        --data /work/shared/data --out models/assets

Deterministic: fixed splits (sha1 of a document key) and a deterministic solver.
Writes <name>.onnx and <name>.metrics.json for quality and safety, and
parity_sample.jsonl (texts + the scores onnxruntime gives them) for the Rust tests.
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime
import scipy.sparse as sp
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def key_bucket(key, mod):
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % mod


def chunks(text, max_chars=1500, min_chars=200):
    """Splits a document at line boundaries into pieces of at most max_chars, so long
    references and short web pages are compared at similar lengths."""
    out, cur = [], ""
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        if cur and len(cur) + len(line) + 1 > max_chars:
            out.append(cur)
            cur = ""
        cur = (cur + "\n" + line) if cur else line
    if cur:
        out.append(cur)
    return [c[:max_chars] for c in out if len(c) >= min_chars]


DETOK = [
    (re.compile(r" ([,.!?;:%)\]}])"), r"\1"),
    (re.compile(r"([(\[{$]) "), r"\1"),
    (re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"),
    (re.compile(r'" (.*?) "'), r'"\1"'),
]


def detokenize(text):
    """Movie reviews come tokenized, one sentence per line: join and detokenize them
    so the spacing around punctuation is not a shortcut for the classifier."""
    text = " ".join(t.strip() for t in text.split("\n") if t.strip())
    for pat, rep in DETOK:
        text = pat.sub(rep, text)
    sentences = re.split(r"(?<=[.!?]) ", text)
    return " ".join(s[:1].upper() + s[1:] for s in sentences)


def features(corpus, texts, workdir, name):
    """Runs the Rust extractor over texts; returns a CSR matrix [len(texts), DIM]."""
    src = os.path.join(workdir, name + ".jsonl")
    dst = os.path.join(workdir, name + ".feat")
    with open(src, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    subprocess.run([corpus, "scorer", "features", src, "-o", dst], check=True)
    with open(dst, "rb") as f:
        data = f.read()
    assert data[:8] == b"CFEAT\0\0\0", "not a feature dump"
    version, bits = struct.unpack_from("<II", data, 8)
    pos = 16
    indptr, indices, values = [0], [], []
    for _ in texts:
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
        indices.append(np.frombuffer(data, dtype="<u4", count=n, offset=pos))
        pos += 4 * n
        values.append(np.frombuffer(data, dtype="<f4", count=n, offset=pos))
        pos += 4 * n
        indptr.append(indptr[-1] + n)
    assert pos == len(data), "trailing bytes in the feature dump"
    dim = 1 << bits
    m = sp.csr_matrix(
        (np.concatenate(values), np.concatenate(indices), np.array(indptr)),
        shape=(len(texts), dim),
        dtype=np.float32,
    )
    return m, version, bits


def to_onnx(weights, bias, bits, version, doc):
    W = numpy_helper.from_array(weights.astype(np.float32), name="W")
    b = numpy_helper.from_array(np.array([bias], dtype=np.float32), name="b")
    nodes = [
        helper.make_node("Gather", ["W", "indices"], ["w_sel"], axis=0),
        helper.make_node("Mul", ["w_sel", "values"], ["contrib"]),
        helper.make_node("ReduceSum", ["contrib"], ["logit0"], axes=[1], keepdims=0),
        helper.make_node("Add", ["logit0", "b"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["score"]),
    ]
    graph = helper.make_graph(
        nodes,
        "corpus_text_classifier",
        [
            helper.make_tensor_value_info("indices", TensorProto.INT64, ["batch", "k"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", "k"]),
        ],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])],
        initializer=[W, b],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 11)],
        producer_name="corpus models/recipes/train_classifiers.py",
        doc_string=doc,
    )
    model.ir_version = 7
    for k, v in {"corpus.features.version": str(version), "corpus.features.bits": str(bits)}.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(model)
    return model


def padded(m):
    """CSR rows -> padded (indices int64, values float32) as the runtime builds them."""
    k = max(1, int(np.diff(m.indptr).max()))
    idx = np.zeros((m.shape[0], k), dtype=np.int64)
    val = np.zeros((m.shape[0], k), dtype=np.float32)
    for r in range(m.shape[0]):
        s, e = m.indptr[r], m.indptr[r + 1]
        idx[r, : e - s] = m.indices[s:e]
        val[r, : e - s] = m.data[s:e]
    return idx, val


def ort_scores(path, m, batch=256):
    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = []
    for s in range(0, m.shape[0], batch):
        idx, val = padded(m[s : s + batch])
        out.append(sess.run(["score"], {"indices": idx, "values": val})[0])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def metrics(y, p):
    y = np.asarray(y)
    return {
        "n": int(len(y)),
        "positives": int(y.sum()),
        "auc": round(float(roc_auc_score(y, p)), 4) if 0 < y.sum() < len(y) else None,
        "f1": round(float(f1_score(y, p >= 0.5)), 4),
        "accuracy": round(float(((p >= 0.5) == y).mean()), 4),
    }


def train(name, corpus, rows, evals, out, workdir, C, doc):
    """rows: dicts with text, label, key, lang, set. 1 in 5 keys -> held-out test."""
    test = [key_bucket(r["key"], 5) == 0 for r in rows]
    X, version, bits = features(corpus, [r["text"] for r in rows], workdir, name)
    y = np.array([r["label"] for r in rows])
    tr = np.array([not t for t in test])
    te = np.array(test)
    # Balance languages and classes: each (lang, label) cell gets the same total weight.
    cells = {}
    for r, t in zip(rows, tr):
        if t:
            cells[(r["lang"], r["label"])] = cells.get((r["lang"], r["label"]), 0) + 1
    w = np.array([len(rows) / (len(cells) * cells.get((r["lang"], r["label"]), 1)) for r in rows])
    clf = LogisticRegression(C=C, max_iter=2000, solver="lbfgs")
    clf.fit(X[tr], y[tr], sample_weight=w[tr])
    path = os.path.join(out, name + ".onnx")
    model = to_onnx(clf.coef_[0], float(clf.intercept_[0]), bits, version, doc)
    onnx.save(model, path)

    p_test = ort_scores(path, X[te])
    p_sk = clf.predict_proba(X[te])[:, 1]
    parity = float(np.abs(p_test - p_sk).max()) if len(p_sk) else 0.0
    assert parity < 1e-5, f"onnxruntime and sklearn disagree by {parity}"
    result = {
        "model": name,
        "train_docs": int(tr.sum()),
        "test_docs": int(te.sum()),
        "C": C,
        "held_out": metrics(y[te], p_test),
        "held_out_by_lang": {},
        "held_out_by_set": {},
        "external": {},
        "onnxruntime_vs_sklearn_max_abs_diff": parity,
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "train_counts": {},
    }
    test_rows = [r for r, t in zip(rows, test) if t]
    for key in ("lang", "set"):
        groups = sorted({r[key] for r in test_rows})
        for g in groups:
            sel = np.array([r[key] == g for r in test_rows])
            result["held_out_by_" + key][g] = metrics(y[te][sel], p_test[sel])
    for r, t in zip(rows, tr):
        if t:
            k = f"{r['set']}:{r['label']}"
            result["train_counts"][k] = result["train_counts"].get(k, 0) + 1
    for ename, erows in evals.items():
        if not erows:
            continue
        Xe, _, _ = features(corpus, [r["text"] for r in erows], workdir, name + "-" + ename)
        pe = ort_scores(path, Xe)
        m = metrics([r["label"] for r in erows], pe)
        agree = [i for i, r in enumerate(erows) if r.get("agree")]
        if agree:
            m["accuracy_annotators_agree"] = round(
                float(((pe[agree] >= 0.5) == np.array([erows[i]["label"] for i in agree])).mean()), 4
            )
            m["n_annotators_agree"] = len(agree)
        result["external"][ename] = m
    with open(os.path.join(out, name + ".metrics.json"), "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(result, indent=1, sort_keys=True))
    return path, test_rows, p_test


def quality_data(d, corpus, workdir):
    rows = []

    def add(text, label, key, lang, name):
        for i, c in enumerate(chunks(text)):
            rows.append({"text": c, "label": label, "key": key, "lang": lang, "set": name})

    # Reference side (label 1): permissively licensed edited text only.
    for r in read_jsonl(f"{d}/corpus/en-reviews-movie_reviews.jsonl.gz"):  # CC BY 4.0
        add(detokenize(r["text"]), 1, r["id"], "en", "movie_reviews")
    for r in read_jsonl(f"{d}/corpus/zh-wiki-cmrc2018.jsonl.gz"):  # CC BY-SA 4.0
        add(r["text"], 1, r["id"], "zh", "cmrc2018_wiki")
    # Web side (label 0): text extracted from the WARC samples and the trafilatura pages
    # by `corpus extract` (en/zh only), web-genre treebank text, user comments.
    web = os.path.join(workdir, "web.jsonl")
    inputs = [
        f"{d}/warc/CC-MAIN-20200808165417-20200808195417-00395.sample.warc.gz",
        f"{d}/warc/cc-main-2024-22-whirlwind.warc.gz",
        f"{d}/warc/dolma-sample-0000.warc.gz",
        f"{d}/extraction/trafilatura-eval/html",
    ]
    subprocess.run([corpus, "extract", "-q", "-o", web] + inputs, check=True)
    tagged = subprocess.run(
        [corpus, "langid", "--jsonl", web], check=True, capture_output=True, text=True
    ).stdout
    for line in tagged.splitlines():
        r = json.loads(line)
        if r.get("lang") in ("en", "zh"):
            add(r["text"], 0, r["id"], r["lang"], "web_extracted")
    for r in read_jsonl(f"{d}/corpus/en-web-ud-ewt-dev.jsonl.gz"):  # CC BY-SA 4.0
        add(detokenize(r["text"]), 0, r["id"], "en", "ud_ewt_web")
    for r in read_jsonl(f"{d}/corpus/en-web-commoncrawl-ccnet.jsonl.gz"):  # Common Crawl
        add(r["text"], 0, r["id"], "en", "ccnet_web")
    # Short user comments, grouped into pseudo-pages of consecutive comments.
    def comments(path, lang, name, field_ok=lambda r: True):
        buf, n = [], 0
        for r in read_jsonl(path):
            if not field_ok(r):
                continue
            buf.append(r["text"].replace("\n", " "))
            if sum(len(b) for b in buf) > 600:
                add("\n".join(buf), 0, f"{name}-{n}", lang, name)
                buf, n = [], n + 1
    comments(f"{d}/safety/zh-cold/data.jsonl.gz", "zh", "cold_comments")  # Apache-2.0
    comments(f"{d}/safety/zh-swsr-sexism/data.jsonl.gz", "zh", "swsr_comments")  # MIT
    comments(f"{d}/safety/en-davidson-hate-offensive/data.jsonl.gz", "en", "davidson_tweets")  # MIT
    evals = {
        "dclm_human_labels": [
            {"text": r["text"], "label": r["label"], "agree": r["annotators_agree"]}
            for r in read_jsonl(f"{d}/quality/dclm-human-labels/labels.jsonl.gz")
        ]
    }
    return rows, evals


def safety_data(d):
    rows = []

    def add(name, lang):
        for r in read_jsonl(f"{d}/safety/{name}/data.jsonl.gz"):
            if r.get("unsafe") is None:
                continue
            rows.append(
                {"text": r["text"], "label": int(r["unsafe"]), "key": r["text"], "lang": lang, "set": name}
            )

    # Training sets: licences that allow a shipped derived model.
    add("en-davidson-hate-offensive", "en")  # MIT
    add("zh-cold", "zh")  # Apache-2.0
    add("zh-swsr-sexism", "zh")  # MIT
    # Evaluation only (never trained on): no licence / research-only / NC-ND / GPL /
    # too small / text normalised unlike web text.
    evals = {}
    for name in ["en-olid", "en-ethos", "en-jigsaw-toxic-sample", "en-hatexplain-mbib", "zh-toxicn"]:
        evals[name] = [
            {"text": r["text"], "label": int(r["unsafe"])}
            for r in read_jsonl(f"{d}/safety/{name}/data.jsonl.gz")
            if r.get("unsafe") is not None
        ]
    return rows, evals


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, help="path of the built corpus binary")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default="models/assets")
    ap.add_argument("--sample-dir", default="tests/data/classifier")
    args = ap.parse_args()
    corpus = os.path.abspath(args.corpus)
    with tempfile.TemporaryDirectory() as workdir:
        rows, evals = safety_data(args.data)
        doc = "corpus safety classifier: P(unsafe: toxic/offensive/hateful/sexist) of a text, en+zh"
        spath, stest, sp_ = train("safety", corpus, rows, evals, args.out, workdir, 4.0, doc)
        rows, evals = quality_data(args.data, corpus, workdir)
        doc = "corpus quality classifier: P(reference-like text) vs extracted web text, en+zh"
        qpath, qtest, qp = train("quality", corpus, rows, evals, args.out, workdir, 4.0, doc)
    # A parity sample for the Rust tests: held-out texts with the scores onnxruntime
    # gives them on the Rust extractor's features.
    sample = []
    for model, test in (("safety", stest), ("quality", qtest)):
        for lang in ("en", "zh"):
            picked = [r for r in test if r["lang"] == lang][:12]
            sample += [{"model": model, "lang": lang, "text": r["text"][:600]} for r in picked]
    with tempfile.TemporaryDirectory() as workdir:
        for model, path in (("safety", spath), ("quality", qpath)):
            rows = [s for s in sample if s["model"] == model]
            X, _, _ = features(corpus, [s["text"] for s in rows], workdir, "sample-" + model)
            for s, score in zip(rows, ort_scores(path, X)):
                s["score"] = float(score)
    dest = os.path.join(args.sample_dir, "sample.jsonl")
    os.makedirs(args.sample_dir, exist_ok=True)
    with open(dest, "w", encoding="utf-8") as f:
        for s in sample:
            f.write(json.dumps(s, ensure_ascii=False) + "\n")

if __name__ == "__main__":
    main()
