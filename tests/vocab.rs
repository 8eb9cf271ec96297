//! `corpus vocab build` and `corpus vocab compare` on a small real corpus
//! (tests/data/vocab/mini.jsonl.gz: Chinese Wikipedia and English web text, see its
//! SOURCE.md), with a small target size so that it runs in seconds in debug builds.

use crate::common;
use common::{testing::assert_mentions, write_file};

use corpus::commands::vocab::{Sidecar, is_heldout, read_docs};
use corpus_models::tokenizer::{Pattern, QWEN_PATTERN, Tokenizer, VocabSource};
use corpus_models::vocab_build::{Vocabulary, cl100k_without_multi_digit};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vocab/mini.jsonl.gz")
}

fn corpus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(args)
        .output()
        .expect("running corpus")
}

fn build(out: &Path, threads: &str) -> Output {
    corpus(&[
        "vocab",
        "build",
        "--corpus",
        mini().to_str().unwrap(),
        "--size",
        "99400",
        "--holdout",
        "0.2",
        "--extra-tokens",
        "4",
        "-t",
        threads,
        "-o",
        out.to_str().unwrap(),
    ])
}

#[test]
fn build_writes_a_loadable_deterministic_vocabulary_with_its_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tiktoken.gz");
    let out = build(&a, "2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_mentions(&stderr, &["0 of", "encode differently"]);

    // Same bytes with another thread count.
    let b = dir.path().join("b.tiktoken.gz");
    assert!(build(&b, "1").status.success());
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    assert!(bytes.starts_with(&[0x1f, 0x8b]), "gzip by name");

    // The file loads back: cl100k's tokens minus the multi-digit ones, in order, then
    // the new ones up to the target size.
    let vocab = Vocabulary::load(&a).unwrap();
    assert_eq!(vocab.len(), 99_400);
    let base = cl100k_without_multi_digit();
    assert_eq!(vocab.tokens()[..99_156], base.tokens[..]);
    let new = &vocab.tokens()[99_156..];
    assert!(new.iter().all(|t| !t.iter().any(u8::is_ascii_digit)));
    // Chinese Wikipedia text gets multi-character tokens ("的" alone is one token in cl100k
    // already; e.g. two-character words are new).
    let zh_words = new
        .iter()
        .filter_map(|t| std::str::from_utf8(t).ok())
        .filter(|s| {
            s.chars()
                .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
                .count()
                >= 2
        })
        .count();
    assert!(
        zh_words >= 20,
        "{zh_words} Chinese words among the new tokens"
    );

    // The sidecar says what it is.
    let side: Sidecar =
        serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
    assert_eq!(side.file, "a.tiktoken.gz");
    assert_eq!(side.ordinary_tokens, 99_400);
    assert_eq!(side.base_tokens, 99_156);
    assert_eq!(side.removed_multi_digit, 1_100);
    assert_eq!(side.new_tokens, 244);
    assert_eq!(side.special_tokens["<|endoftext|>"], 99_400);
    assert_eq!(side.special_tokens["<|im_start|>"], 99_401);
    assert_eq!(side.special_tokens["<|im_end|>"], 99_402);
    assert_eq!(side.special_tokens["<|extra_3|>"], 99_406);
    assert_eq!(side.n_vocab, 99_407);
    assert_eq!(side.pattern_name, "qwen");
    assert_eq!(side.training.stop, "size");
    assert_eq!(side.training.mismatched_words, 0);
    assert_eq!(side.training.corpus.len(), 1);
    assert_eq!(side.training.corpus[0].0, "mini.jsonl.gz");
    let docs = read_docs(&mini()).unwrap();
    let train = docs.iter().filter(|d| !is_heldout(&d.text, 0.2)).count();
    assert!(train > 0 && train < docs.len());
    assert_eq!(side.training.documents, train as u64);
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(side.sha256, sha);
    assert!(side.command.contains("vocab build"), "{}", side.command);

    // Nothing but the two outputs (and b's) in the directory: no temporary leftovers.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a.json", "a.tiktoken.gz", "b.json", "b.tiktoken.gz"]
    );

    // compare: fewer Chinese tokens than cl100k on the text trained on; the held-out
    // split measures only the held-out documents.
    let spec = format!("mini={}", a.display());
    let out = corpus(&[
        "vocab",
        "compare",
        "--vocab",
        "cl100k",
        "--vocab",
        &spec,
        "--json",
        mini().to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmp: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cmp["vocabs"], serde_json::json!(["cl100k_base", "mini"]));
    let rows = cmp["rows"].as_array().unwrap();
    let zh = rows.iter().find(|r| r["lang"] == "zh").unwrap();
    let (cl, ours) = (
        zh["tokens"][0].as_u64().unwrap(),
        zh["tokens"][1].as_u64().unwrap(),
    );
    assert!(
        (ours as f64) < 0.9 * cl as f64,
        "zh tokens: cl100k {cl}, ours {ours}"
    );
    let total_docs: u64 = rows.iter().map(|r| r["docs"].as_u64().unwrap()).sum();
    assert_eq!(total_docs, docs.len() as u64);

    let out = corpus(&[
        "vocab",
        "compare",
        "--vocab",
        "cl100k",
        "--vocab",
        a.to_str().unwrap(),
        "--holdout",
        "0.2",
        mini().to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let held = docs.len() - train;
    let rows: Vec<&str> = table.lines().skip(2).collect();
    let counted: usize = rows
        .iter()
        .map(|r| {
            r.split('|')
                .nth(2)
                .unwrap()
                .trim()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(counted, held, "{table}");
    assert!(
        table.contains("a.tiktoken.gz (99400) bytes/token"),
        "{table}"
    );
}

#[test]
fn bad_input_and_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.jsonl");
    let mut f = std::fs::File::create(&bad).unwrap();
    writeln!(f, r#"{{"text": "fine", "lang": "en"}}"#).unwrap();
    writeln!(f, r#"{{"text": "broken"#).unwrap();
    drop(f);
    let out_path = dir.path().join("v.tiktoken");
    let out = corpus(&[
        "vocab",
        "build",
        "--corpus",
        bad.to_str().unwrap(),
        "--size",
        "99200",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    // A damaged record is skipped with a warning naming it, as in `corpus run`.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_mentions(&stderr, &["warning: skipped", "bad.jsonl", "line 2"]);
    assert!(stderr.contains("1 documents trained on"), "{stderr}");
    std::fs::remove_file(&out_path).unwrap();

    let out = corpus(&[
        "vocab",
        "build",
        "--corpus",
        mini().to_str().unwrap(),
        "--size",
        "1000",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("smaller than the base vocabulary"),
        "{stderr}"
    );

    let broken = write_file(dir.path(), "broken.tiktoken", "YQ== 0\nnot-a-line\n");
    let out = corpus(&[
        "vocab",
        "compare",
        "--vocab",
        broken.to_str().unwrap(),
        mini().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.tiktoken: line 2"), "{stderr}");
}

#[test]
fn the_shipped_vocabulary_matches_its_sidecar() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/assets");
    let file = assets.join("corpus152k.tiktoken.gz");
    let bytes = std::fs::read(&file).unwrap();
    let side: Sidecar =
        serde_json::from_slice(&std::fs::read(assets.join("corpus152k.json")).unwrap()).unwrap();
    let sha: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        side.sha256, sha,
        "rebuild with models/recipes/build_vocab.sh"
    );
    let vocab = Vocabulary::load(&file).unwrap();
    assert_eq!(vocab.len(), 151_643);
    assert_eq!(side.ordinary_tokens, 151_643);
    assert_eq!(side.n_vocab, 151_851);
    assert_eq!(side.special_tokens["<|endoftext|>"], 151_643);
    assert_eq!(side.special_tokens["<|extra_204|>"], 151_850);
    assert_eq!(side.pattern, QWEN_PATTERN, "Qwen's pattern");
    let base = cl100k_without_multi_digit();
    assert_eq!(vocab.tokens()[..99_156], base.tokens[..]);
    // The tokenizer reads the .gz file itself, with the sidecar's pattern and special
    // tokens.
    let extras = side.special_tokens.len() as u32 - 3;
    let tokenizer = Tokenizer::load(
        &VocabSource::File(file.clone()),
        &Pattern::from_regex(&side.pattern),
        extras,
    )
    .unwrap();
    assert_eq!(tokenizer.pattern(), &Pattern::Qwen);
    assert_eq!(tokenizer.vocab_size(), side.n_vocab);
    for (name, &id) in &side.special_tokens {
        assert_eq!(tokenizer.special_id(name), Some(id), "{name}");
    }
    // Encoding real Chinese takes far fewer tokens than cl100k, decodes back, and gives
    // tiktoken's ids for the same ranks and pattern.
    let text = "北京大学创办于1898年，初名京师大学堂，是中国第一所国立综合性大学。";
    let ids = tokenizer.encode(text).unwrap();
    let bpe = tiktoken_rs::CoreBPE::new(vocab.ranks(), Default::default(), &side.pattern).unwrap();
    assert_eq!(ids, bpe.encode_ordinary(text));
    let cl = tiktoken_rs::cl100k_base_singleton().encode_ordinary(text);
    assert!(
        ids.len() * 3 < cl.len() * 2,
        "{} vs cl100k {}",
        ids.len(),
        cl.len()
    );
    assert_eq!(tokenizer.decode(&ids).unwrap(), text);
    assert_eq!(tokenizer.eot(), 151_643);
}
