//! `corpus tokens`: id parity with Python tiktoken (Qwen's qwen.tiktoken and cl100k_base),
//! packed shards read back by pyarrow, determinism across thread counts, resume, reports.
//!
//! The Python checks (tests/parity/tiktoken_parity.py) need `tiktoken`, `dashscope`,
//! `pyarrow` and `numpy`; .ci/run installs them. Under CI=true a missing Python or
//! package fails these tests; elsewhere they print a notice and skip the Python part.

use crate::common;
use common::{testing::assert_mentions, write_file};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn texts() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/data/text"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    v.sort();
    v
}

fn corpus(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = corpus(args);
    assert!(
        out.status.success(),
        "corpus {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the parity script; `None` (with a notice) when Python or a package is missing
/// outside CI.
fn python(args: &[&str]) -> Option<String> {
    let script = root().join("tests/parity/tiktoken_parity.py");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let out = match Command::new("python3").arg(&script).args(args).output() {
        Ok(out) => out,
        Err(e) => {
            assert!(!ci, "CI=true but python3 cannot run: {e}");
            eprintln!("notice: python3 not found ({e}); skipping the tiktoken/pyarrow check");
            return None;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        assert!(!ci, "CI=true but the parity script cannot run: {stderr}");
        eprintln!("notice: {stderr}skipping the tiktoken/pyarrow check");
        return None;
    }
    assert!(
        out.status.success(),
        "tiktoken_parity.py {args:?} failed:\n{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn qwen_vocab() -> Option<String> {
    python(&["qwen-vocab"]).map(|s| s.trim().to_string())
}

/// Texts that exercise the patterns: digits, contractions, whitespace runs, CRLF, emoji,
/// special-token text, pieces long enough for the heap merge.
fn edge_cases(dir: &Path) -> PathBuf {
    let texts = [
        String::new(),
        "2024年10月1日, 3.14159 and 1,000,000 and ١٢٣".into(),
        "   leading spaces\n\n\n  trailing   ".into(),
        "I'M HERE, you're THERE, it'S, we'VE, they'll, I'd".into(),
        "emoji 🙂👍🏽 and combining e\u{301} and \u{200b}zero width".into(),
        "tabs\t\tand\r\nCRLF\r\n\r\n \u{a0}nbsp\u{3000}ideographic space".into(),
        "<|endoftext|> and <|im_start|>user in plain text".into(),
        "的".repeat(300),
        "ab".repeat(600),
        "Supercalifragilisticexpialidocious".repeat(20),
        format!("{}x{}", " ".repeat(5000), "\n".repeat(700)),
        "9".repeat(1000),
        "!?".repeat(400),
    ];
    let path = dir.join("edge.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("edge-{i}"), "text": t}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn strs(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn qwen_ids_match_tiktoken() {
    let Some(vocab) = qwen_vocab() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = texts();
    inputs.push(edge_cases(dir.path()));
    let out = dir.path().join("ids.jsonl");
    let mut args = vec!["tokens", "encode", "--vocab", &vocab, "--pattern", "qwen"];
    let names = strs(&inputs);
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", out.to_str().unwrap(), "-t", "2"]);
    ok(&args);
    let mut py = vec![
        "ids",
        "--vocab",
        &vocab,
        "--pattern",
        "qwen",
        "--corpus-ids",
        out.to_str().unwrap(),
    ];
    py.extend(names.iter().map(String::as_str));
    let report = python(&py).unwrap_or_default();
    assert!(
        report.is_empty() || report.contains("identical"),
        "{report}"
    );
}

#[test]
fn cl100k_ids_match_tiktoken() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("cl100k_base.tiktoken");
    ok(&[
        "tokens",
        "vocab-dump",
        "cl100k",
        "-o",
        vocab.to_str().unwrap(),
    ]);
    let mut inputs = texts();
    inputs.push(edge_cases(dir.path()));
    let names = strs(&inputs);
    let out = dir.path().join("ids.jsonl");
    let mut args = vec![
        "tokens",
        "encode",
        "--vocab",
        "cl100k",
        "--pattern",
        "cl100k",
    ];
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", out.to_str().unwrap()]);
    ok(&args);
    // The built-in vocabulary and its dump give the same ids.
    let out2 = dir.path().join("ids2.jsonl");
    let mut args = vec!["tokens", "encode", "--pattern", "cl100k", "--vocab"];
    args.push(vocab.to_str().unwrap());
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", out2.to_str().unwrap(), "-t", "1"]);
    ok(&args);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out2).unwrap());
    let mut py = vec![
        "ids",
        "--vocab",
        vocab.to_str().unwrap(),
        "--pattern",
        "cl100k",
        "--corpus-ids",
        out.to_str().unwrap(),
    ];
    py.extend(names.iter().map(String::as_str));
    python(&py);
}

fn pack(vocab: &str, out: &Path, extra: &[&str]) -> String {
    let names = strs(&texts());
    let mut args = vec!["tokens", "pack", "--vocab", vocab, "--pattern", "qwen"];
    args.extend(names.iter().map(String::as_str));
    args.extend([
        "-o",
        out.to_str().unwrap(),
        "--seq-len",
        "512",
        "--val-fraction",
        "0.1",
        "--shard-sequences",
        "64",
        "--seed",
        "3",
    ]);
    args.extend(extra);
    let out = corpus(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn pack_is_deterministic_resumable_and_pyarrow_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    // cl100k is built in, so this part runs without Python.
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    pack("cl100k", &a, &["-t", "1"]);
    pack("cl100k", &b, &["-t", "2"]);
    let fa = files(&a);
    assert_eq!(fa, files(&b), "output depends on the thread count");
    let names: Vec<&str> = fa.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "docs-train.parquet",
            "docs-validation.parquet",
            "manifest.json",
            "train-00000.parquet",
            "train-00001.parquet",
            "train-00002.parquet",
            "train-00003.parquet",
            "validation-00000.parquet"
        ]
    );
    let m: Value = serde_json::from_slice(&fa[2].1).unwrap();
    let (train, val) = (&m["splits"]["train"], &m["splits"]["validation"]);
    assert_eq!(
        train["docs"].as_u64().unwrap() + val["docs"].as_u64().unwrap(),
        478
    );
    for s in [train, val] {
        let total = s["tokens"].as_u64().unwrap()
            + s["eot_tokens"].as_u64().unwrap()
            + s["pad_tokens"].as_u64().unwrap();
        assert_eq!(total, s["sequences"].as_u64().unwrap() * 512);
        let by_lang: u64 = s["by_lang"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(by_lang, s["tokens"].as_u64().unwrap());
    }
    assert_eq!(train["by_lang"].as_object().unwrap().len(), 2);
    assert_eq!(m["tokenizer"]["eot_id"], 100_256);

    // A rerun over the complete output does nothing; other settings redo it.
    let before = std::fs::metadata(a.join("train-00000.parquet"))
        .unwrap()
        .modified()
        .unwrap();
    let msg = pack("cl100k", &a, &["-t", "2"]);
    assert!(msg.contains("nothing to do"), "{msg}");
    let after = std::fs::metadata(a.join("train-00000.parquet"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    let msg = pack("cl100k", &a, &["--format", "arrow"]);
    assert!(!msg.contains("nothing to do"), "{msg}");
    // The Parquet files of the earlier settings are gone.
    let names: Vec<String> = files(&a).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "docs-train.arrow",
            "docs-validation.arrow",
            "manifest.json",
            "train-00000.arrow",
            "train-00001.arrow",
            "train-00002.arrow",
            "train-00003.arrow",
            "validation-00000.arrow"
        ]
    );

    let Some(vocab) = qwen_vocab() else { return };
    let names = strs(&texts());
    for format in ["parquet", "arrow"] {
        let out = dir.path().join(format!("qwen-{format}"));
        pack(&vocab, &out, &["--format", format]);
        let mut py = vec![
            "shards",
            out.to_str().unwrap(),
            "--vocab",
            &vocab,
            "--pattern",
            "qwen",
        ];
        py.extend(names.iter().map(String::as_str));
        python(&py);
    }
}

#[test]
fn pack_resumes_after_a_failed_input_and_writes_no_copy_of_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let good = &texts()[0];
    // A gzip header and then garbage: nothing in it can be read.
    let bad = write_file(
        dir.path(),
        "z.jsonl.gz",
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff],
    );
    let out = dir.path().join("out");
    let run = out.join(".run");
    let pack = |extra: &[&str]| {
        let mut args = vec!["tokens", "pack", "--vocab", "cl100k", "-t", "1", "-o"];
        args.extend([out.to_str().unwrap(), good.to_str().unwrap()]);
        args.extend(extra);
        corpus(&args)
    };
    let first = pack(&[bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(1), "{err}");
    assert_mentions(&err, &["z.jsonl.gz", "nothing could be read"]);
    // The good input is encoded and kept for the rerun; no shard, no copy of it.
    assert_eq!(run.join("done").read_dir().unwrap().count(), 1);
    let ids: Vec<String> = std::fs::read_dir(run.join("tokenize"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ids.iter().any(|n| n.ends_with(".ids")), "{ids:?}");
    assert!(!run.join("docs").exists() || run.join("docs").read_dir().unwrap().count() == 0);
    assert!(!out.join("manifest.json").exists());
    std::fs::write(&bad, b"{\"id\": \"z\", \"text\": \"the last document\"}\n").unwrap();
    let second = pack(&[bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(
        err.contains("1 input file(s) encoded by an earlier run"),
        "{err}"
    );
    assert!(
        !run.exists(),
        "the run directory is removed once the shards are written"
    );
    // The same bytes as a pack from scratch.
    let fresh = dir.path().join("fresh");
    let mut args = vec!["tokens", "pack", "--vocab", "cl100k", "-q", "-o"];
    args.extend([
        fresh.to_str().unwrap(),
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    ok(&args);
    assert_eq!(files(&out), files(&fresh));
}

#[test]
fn reports_of_a_pack_and_of_documents_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pack");
    pack("cl100k", &out, &[]);
    let html = dir.path().join("mix.html");
    let json = ok(&[
        "tokens",
        "report",
        out.to_str().unwrap(),
        "--json",
        "--html",
        html.to_str().unwrap(),
    ]);
    let packed: Value = serde_json::from_str(&json).unwrap();
    let names = strs(&texts());
    let mut args = vec![
        "tokens",
        "report",
        "--vocab",
        "cl100k",
        "--pattern",
        "qwen",
        "--json",
    ];
    args.extend(names.iter().map(String::as_str));
    let docs: Value = serde_json::from_str(&ok(&args)).unwrap();
    assert_eq!(packed["total"], docs["total"]);
    assert_eq!(packed["by_source"], docs["by_source"]);
    assert_eq!(packed["by_lang"], docs["by_lang"]);
    assert_eq!(docs["by_shard"].as_object().unwrap().len(), 3);
    assert_eq!(packed["by_split"].as_object().unwrap().len(), 2);
    let zh = docs["by_lang"]["zh"]["tokens"].as_u64().unwrap();
    assert!(zh > 50_000, "{zh}");

    let page = std::fs::read_to_string(&html).unwrap();
    assert_mentions(&page, &["<svg", "<rect"]);
    assert!(!page.contains("<script") && !page.contains(" src=") && !page.contains("<link"));

    let table = ok(&["tokens", "report", out.to_str().unwrap()]);
    assert_mentions(&table, &["source", "train-00000.parquet"]);
}

/// A damaged record costs only itself, as in `corpus run`: skipped with a warning
/// that names file and record, the documents around it encoded; a bad vocabulary names
/// its line.
#[test]
fn bad_input_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(
        dir.path(),
        "bad.jsonl",
        "{\"id\":\"a\",\"text\":\"fine\"}\n{\"id\": \"b\", \"text\": 7}\n\
         {\"id\":\"c\",\"text\":\"also fine\"}\n",
    );
    let ids = dir.path().join("o.jsonl");
    let out = corpus(&[
        "tokens",
        "encode",
        "--vocab",
        "cl100k",
        bad.to_str().unwrap(),
        "-o",
        ids.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_mentions(&err, &["warning: skipped", "bad.jsonl", "record 1"]);
    let written: Vec<String> = std::fs::read_to_string(&ids)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(written, ["\"a\"", "\"c\""]);

    let vocab = write_file(dir.path(), "v.tiktoken", "YQ== 0\nYg==\n");
    let out = corpus(&[
        "tokens",
        "encode",
        "--vocab",
        vocab.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("v.tiktoken: line 2"), "{err}");
}

#[test]
fn export_megatron_and_documents() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pack");
    pack("cl100k", &out, &["--format", "arrow"]);
    let prefix = dir.path().join("mg");
    ok(&[
        "export",
        "megatron",
        out.to_str().unwrap(),
        "-o",
        prefix.to_str().unwrap(),
    ]);
    let idx = std::fs::read(dir.path().join("mg.idx")).unwrap();
    let bin = std::fs::read(dir.path().join("mg.bin")).unwrap();
    assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
    assert_eq!(u64::from_le_bytes(idx[9..17].try_into().unwrap()), 1);
    assert_eq!(idx[17], 4, "int32 for a vocabulary over 65,500 ids");
    let n = u64::from_le_bytes(idx[18..26].try_into().unwrap()) as usize;
    assert_eq!(
        u64::from_le_bytes(idx[26..34].try_into().unwrap()) as usize,
        n + 1
    );
    assert_eq!(idx.len(), 34 + n * 4 + n * 8 + (n + 1) * 8);
    let sizes: u64 = (0..n)
        .map(|k| {
            u64::from(u32::from_le_bytes(
                idx[34 + 4 * k..38 + 4 * k].try_into().unwrap(),
            ))
        })
        .sum();
    assert_eq!(sizes * 4, bin.len() as u64);
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let train = &m["splits"]["train"];
    assert_eq!(n as u64, train["docs"].as_u64().unwrap());
    assert_eq!(
        sizes,
        train["tokens"].as_u64().unwrap() + train["eot_tokens"].as_u64().unwrap()
    );
    // Every document ends with <|endoftext|> (cl100k here: 100256).
    let last = u32::from_le_bytes(bin[bin.len() - 4..].try_into().unwrap());
    assert_eq!(last, 100_256);
    python(&["megatron", prefix.to_str().unwrap(), out.to_str().unwrap()]);

    let names = strs(&texts());
    let jsonl = dir.path().join("docs.jsonl");
    let mut args = vec!["export", "docs", "--fields", "id,lang,label,nope"];
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", jsonl.to_str().unwrap()]);
    ok(&args);
    let text = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(text.lines().count(), 478);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(
            r#"{"id":"movie-review-neg-cv000_29416","lang":"en","label":"neg","nope":null}"#
        ),
        "{first}"
    );
    let parquet = dir.path().join("docs.parquet");
    let mut args = vec![
        "export",
        "docs",
        "--format",
        "parquet",
        "--fields",
        "id,text,lang",
    ];
    args.extend(names.iter().map(String::as_str));
    args.extend(["-o", parquet.to_str().unwrap()]);
    ok(&args);
    let batches = corpus::commands::export::read_batches(&parquet).unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 478);
    let schema = batches[0].schema();
    let cols: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(cols, ["id", "text", "lang"]);
}

#[test]
fn pack_reads_the_kept_documents_of_a_pipeline_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let names = strs(&texts());
    // A run that writes dropped/, stats and markers next to docs/, in Parquet.
    let mut args = vec![
        "dedup",
        "--exact",
        "--dropped",
        "-q",
        "--format",
        "parquet",
        "-o",
    ];
    args.push(run.to_str().unwrap());
    args.extend(names.iter().map(String::as_str));
    ok(&args);
    assert!(run.join("docs/part-00000.parquet").is_file());
    assert!(run.join("docs").is_dir() && run.join("stats.json").is_file());
    let out = dir.path().join("pack");
    let mut args = vec!["tokens", "pack", "--vocab", "cl100k", "-q", "-o"];
    args.push(out.to_str().unwrap());
    args.push(run.to_str().unwrap());
    ok(&args);
    let m: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let docs = m["splits"]["train"]["docs"].as_u64().unwrap()
        + m["splits"]["validation"]["docs"].as_u64().unwrap();
    // The kept documents only (exact dedup drops one repeated review), not dropped/.
    let stats: Value =
        serde_json::from_slice(&std::fs::read(run.join("stats.json")).unwrap()).unwrap();
    assert_eq!(docs, stats["docs_out"].as_u64().unwrap());
    assert_eq!(docs, 477);
    assert_eq!(m["inputs"].as_array().unwrap().len(), 3);
}

/// A reader that stops early (`| head`) ends the run cleanly: workers and reader stop
/// instead of waiting on each other.
#[test]
fn encode_stops_when_its_reader_goes_away() {
    use std::io::Read;
    let names = strs(&texts());
    let mut child = Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["tokens", "encode", "--vocab", "cl100k", "-t", "2"])
        .args(&names)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // stdout is closed here; the output (over 1 MB) cannot fit in the pipe.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("corpus tokens encode hangs after its reader went away");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert_eq!(&head, b"{\"id\":\"movie-rev");
}

/// The counts of the note "tokenize: token ids of N docs derived for packing (M of them
/// counted by upsample already)".
fn ids_note(said: &str) -> (u64, u64) {
    let line = said
        .lines()
        .find(|l| l.starts_with("tokenize: token ids of "))
        .unwrap_or_else(|| panic!("no ids note in {said}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// A `[tokenize]` table packs the run's kept documents after the run, once every shard
/// is complete: with two tasks, the first to finish waits for the other, which packs,
/// and the shards equal `corpus tokens pack` over the same documents (with copies made
/// by `upsample`, whose token ids are the ones packed).
#[test]
fn a_run_with_a_tokenize_table_packs_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = texts()
        .iter()
        .map(|p| format!("{:?}", p.to_str().unwrap()))
        .collect();
    let cfg = write_file(
        dir.path(),
        "run.toml",
        format!(
            "[input]\npaths = [{}]\n[output]\ndir = \"out\"\n\n[[stages]]\nkind = \"length\"\nmin_chars = 1\n\n\
             [[stages]]\nkind = \"upsample\"\nvocab = \"cl100k\"\ndefault_weight = 2.0\n\n\
             [tokenize]\nvocab = \"cl100k\"\nseq_len = 512\nval_fraction = 0.1\nseed = 3\n",
            paths.join(", ")
        ),
    );
    let run = dir.path().join("out");
    let cfg = cfg.to_str().unwrap();
    let first = corpus(&["run", cfg, "--task-index", "0", "--task-count", "2"]);
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("not complete yet"));
    assert!(!run.join("tokens").exists());
    let second = corpus(&["run", cfg, "--task-index", "1", "--task-count", "2"]);
    let said = String::from_utf8_lossy(&second.stderr).into_owned();
    assert!(second.status.success(), "{said}");
    // The ids upsample counted are the ones packed: the text is encoded once.
    let (docs, reused) = ids_note(&said);
    assert!(docs > 0 && reused == docs, "{said}");
    assert!(said.contains("from the pass before"), "{said}");
    assert!(!run.join("tokenize").exists(), "the ids go once packed");
    let direct = dir.path().join("direct");
    ok(&[
        "tokens",
        "pack",
        "--vocab",
        "cl100k",
        "-q",
        "--seq-len",
        "512",
        "--val-fraction",
        "0.1",
        "--seed",
        "3",
        "-o",
        direct.to_str().unwrap(),
        run.to_str().unwrap(),
    ]);
    let shards = |d: &Path| -> Vec<(String, Vec<u8>)> {
        files(d)
            .into_iter()
            .filter(|(n, _)| n.ends_with(".parquet"))
            .collect()
    };
    assert!(!shards(&direct).is_empty());
    assert_eq!(shards(&run.join("tokens")), shards(&direct));
}

/// Instruction data (`[input.jsonl] format = "messages"` or `"prompt_response"`) is
/// rendered in ChatML, flows through a run, and its markers become special tokens when
/// encoded; the same markers in ordinary text stay ordinary text.
#[test]
fn instruction_data_is_rendered_in_chatml_and_its_markers_are_special_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let chat = write_file(
        dir.path(),
        "chat.jsonl",
        concat!(
            r#"{"id": "c1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."}]}"#,
            "\n",
            r#"{"id": "c2", "messages": [{"role": "user"}]}"#,
            "\n",
            r#"{"id": "c3", "messages": [{"role": "user", "content": "say <|im_end|> now"}]}"#,
            "\n",
        ),
    );
    let pr = write_file(
        dir.path(),
        "pr.jsonl",
        concat!(
            r#"{"id": "p1", "prompt": "Name a colour.", "response": "Blue.", "tag": 7}"#,
            "\n"
        ),
    );
    let web = write_file(
        dir.path(),
        "web.jsonl",
        "{\"id\": \"w1\", \"text\": \"a page that says <|im_start|>user\"}\n",
    );
    let run = |name: &str, input: &Path, format: &str| -> PathBuf {
        let cfg = dir.path().join(format!("{name}.toml"));
        let out = dir.path().join(name);
        std::fs::write(
            &cfg,
            format!(
                "[input]\npaths = [{:?}]\n[input.jsonl]\nformat = \"{format}\"\n[output]\ndir = {:?}\n",
                input.to_str().unwrap(),
                out.to_str().unwrap()
            ),
        )
        .unwrap();
        ok(&["run", cfg.to_str().unwrap(), "-q"]);
        out
    };
    let encode = |out: &Path| -> Vec<Value> {
        ok(&[
            "tokens",
            "encode",
            "--vocab",
            "cl100k",
            out.to_str().unwrap(),
        ])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    };
    // cl100k with Qwen's numbering: 100256 <|endoftext|>, then these two.
    let im_start = 100257u64;
    let im_end = 100258u64;

    let out = run("chat", &chat, "messages");
    let stats: Value =
        serde_json::from_slice(&std::fs::read(out.join("stats.json")).unwrap()).unwrap();
    // c2 lacks content and c3 carries a marker inside a message: both corrupt, skipped.
    assert_eq!(stats["input"]["corrupt"]["bad_chat"], 2, "{stats}");
    let docs: Vec<Value> = common::gunzip(&out.join("docs/part-00000.jsonl.gz"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 1);
    assert_eq!(
        docs[0]["text"],
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>"
    );
    let ids = encode(&out);
    let ids: Vec<u64> = ids[0]["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids.iter().filter(|&&i| i == im_start).count(), 3);
    assert_eq!(ids.iter().filter(|&&i| i == im_end).count(), 3);
    assert_eq!(ids[0], im_start);

    let out = run("pr", &pr, "prompt_response");
    let text = common::gunzip(&out.join("docs/part-00000.jsonl.gz"));
    let doc: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        doc["text"],
        "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>"
    );
    assert_eq!(doc["meta"]["extra"]["tag"], 7);

    let out = run("web", &web, "text");
    let ids = encode(&out);
    assert!(
        !ids[0]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v.as_u64() == Some(im_start))
    );
}
