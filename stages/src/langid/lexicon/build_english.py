#!/usr/bin/env python3
"""Builds english.txt, the English lexicon of the `langid` short-text rule (see SOURCE.md).

Usage: python3 stages/src/langid/lexicon/build_english.py [--data ../shared/data] [--min-count 3]
(run `cargo fetch --locked` first: the crate sources of Cargo.lock are read too)

English side: word counts over MIT-licensed English text of ../shared/data (Davidson tweets,
GSM8K, BIG-Bench-Hard without its German translation task, MMLU, DCLM human-label documents)
and over the English documentation of this workspace's dependencies (the README and the
`///`/`//!` doc comments of every crate in Cargo.lock whose licence is MIT or Apache-2.0, from
cargo's registry: software words such as "crash", "startup", "render", "malformed");
none of it is an evaluation set of the langid bench (the langid developer sentences and the
en/zh corpus documents are not read). Other-language side: whatlang 0.18's trigram profiles
(MIT): a word all of whose trigrams (padded with spaces, as whatlang pads) are in the
300-trigram profile of some other Latin-script language is plausible there, and left out
("die", "hand", "in", "son", "man", "test"...). Output: one lowercase ASCII word per line,
3 to 16 letters, sorted; deterministic for the same inputs.
"""
import argparse, csv, glob, gzip, io, json, os, re, sys, collections, tomllib

def english_texts(d):
    for l in gzip.open(f'{d}/safety/en-davidson-hate-offensive/data.jsonl.gz', 'rt'):
        yield json.loads(l)['text']
    for l in gzip.open(f'{d}/benchmarks/gsm8k/test.jsonl.gz', 'rt'):
        x = json.loads(l); yield x['question'] + '\n' + x['answer']
    for f in sorted(glob.glob(f'{d}/benchmarks/bbh/bbh/*.json.gz')):
        if 'salient_translation' in f:  # German source sentences
            continue
        for ex in json.load(gzip.open(f, 'rt'))['examples']:
            yield ex['input'] + '\n' + ex['target']
    for f in sorted(glob.glob(f'{d}/benchmarks/mmlu/*/*.csv.gz')):
        for row in csv.reader(io.TextIOWrapper(gzip.open(f), 'utf-8')):
            yield '\n'.join(row[:-1])
    for l in gzip.open(f'{d}/quality/dclm-human-labels/labels.jsonl.gz', 'rt'):
        yield json.loads(l)['text']

def crate_docs(lock_path):
    """Prose of the dependencies' documentation: README files and doc comments of the crates
    in Cargo.lock under an MIT or Apache-2.0 licence, inline code and camelCase identifiers
    left out. Reads cargo's registry; fails naming a crate that is not there."""
    registries = sorted(glob.glob(os.path.expanduser('~/.cargo/registry/src/*/')))
    assert registries, 'no cargo registry sources: run `cargo fetch --locked` first'
    code = re.compile(r'`[^`]*`')
    word = re.compile(r'[^\W\d_]+')
    with open(lock_path, 'rb') as f:
        packages = tomllib.load(f)['package']
    for p in sorted(packages, key=lambda p: (p['name'], p['version'])):
        if 'registry' not in p.get('source', ''):
            continue  # the workspace's own crates
        dirs = [d for r in registries if os.path.isdir(d := f"{r}{p['name']}-{p['version']}")]
        assert dirs, f"{p['name']} {p['version']} is not in cargo's registry: run `cargo fetch --locked`"
        d = dirs[0]
        with open(f'{d}/Cargo.toml', 'rb') as f:
            licence = tomllib.load(f)['package'].get('license', '')
        if not isinstance(licence, str) or not re.search(r'\b(MIT|Apache-2\.0)\b', licence):
            continue
        texts = []
        for path in sorted(glob.glob(f'{d}/README*')):
            texts.append(open(path, encoding='utf-8', errors='replace').read())
        for path in sorted(glob.glob(f'{d}/src/**/*.rs', recursive=True)):
            for line in open(path, encoding='utf-8', errors='replace'):
                line = line.strip()
                if line.startswith('///') or line.startswith('//!'):
                    texts.append(line[3:])
        for t in texts:
            words = word.findall(code.sub(' ', t))
            yield ' '.join(w for w in words if not any(c.isupper() for c in w[1:]))

def latin_profiles():
    path = glob.glob(os.path.expanduser('~/.cargo/registry/src/*/whatlang-0.18.0/src/trigrams/profiles.rs'))[0]
    src = open(path, encoding='utf-8').read()
    out, script = {}, None
    for m in re.finditer(r'pub static (\w+)_LANGS|\(\s*Lang::(\w+),\s*&\[(.*?)\]', src, re.S):
        if m.group(1):
            script = m.group(1)
        elif script == 'LATIN' and m.group(2) != 'Eng':
            tris = re.findall(r"Trigram\('(.*?)', '(.*?)', '(.*?)'\)", m.group(3))
            out[m.group(2)] = {''.join(t).replace("\\'", "'") for t in tris}
    assert len(out) >= 30, 'whatlang Latin profiles not found'
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=os.path.join(os.path.dirname(__file__), '../../../../../shared/data'))
    ap.add_argument('--min-count', type=int, default=3)
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'english.txt'))
    ap.add_argument('--lock', default=os.path.join(os.path.dirname(__file__), '../../../../Cargo.lock'))
    a = ap.parse_args()
    word = re.compile(r'[^\W\d_]+')
    cnt = collections.Counter()
    for texts in (english_texts(a.data), crate_docs(a.lock)):
        for t in texts:
            cnt.update(w for w in word.findall(t.lower()) if w.isascii())
    profiles = latin_profiles()
    def plausible_elsewhere(w):
        p = f' {w} '
        tris = [p[i:i + 3] for i in range(len(p) - 2)]
        return any(all(t in s for t in tris) for s in profiles.values())
    words = sorted(w for w, c in cnt.items()
                   if c >= a.min_count and 3 <= len(w) <= 16 and not plausible_elsewhere(w))
    with open(a.out, 'w') as f:
        f.write('\n'.join(words) + '\n')
    print(f'{len(words)} words from {sum(cnt.values())} tokens -> {a.out}', file=sys.stderr)

if __name__ == '__main__':
    main()
