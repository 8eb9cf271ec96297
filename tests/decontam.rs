//! `corpus decontam`: the index file built once and loaded, the drop and remove-span
//! policies, the report, on real reviews (tests/data/jsonl) with GSM8K and MMLU questions
//! (tests/data/benchmarks) planted in them.

use crate::common;

use common::{gunzip, testing::assert_mentions, write_file};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REVIEWS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/jsonl/movie_reviews-sample.jsonl"
);
const BENCH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/benchmarks");

fn corpus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
}

fn run_ok(args: &[&str]) -> Output {
    let out = corpus().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "corpus {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn first_field(path: &str, field: &str, k: usize) -> String {
    let line = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .nth(k)
        .unwrap()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    v[field].as_str().unwrap().to_string()
}

/// The 30 reviews, with GSM8K question 1 planted in review 3 (upper-cased) and 3 in
/// review 7, and an MMLU question with its choices in review 12; an `extra` field on
/// every line.
fn write_input(dir: &Path) -> PathBuf {
    let gsm = format!("{BENCH}/gsm8k-test-head20.jsonl");
    let q1 = first_field(&gsm, "question", 0).to_uppercase();
    let q3 = first_field(&gsm, "question", 2);
    let mmlu = std::fs::read_to_string(format!("{BENCH}/mmlu-anatomy-test-head20.csv")).unwrap();
    let mmlu_row = mmlu.lines().next().unwrap().replace(',', " ");
    let mut out = String::new();
    for (i, line) in std::fs::read_to_string(REVIEWS)
        .unwrap()
        .lines()
        .enumerate()
    {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = v["text"].as_str().unwrap().to_string();
        let cut = text[..text.len() / 2].rfind(' ').unwrap();
        let planted = match i {
            3 => Some(&q1),
            7 => Some(&q3),
            12 => Some(&mmlu_row),
            _ => None,
        };
        if let Some(q) = planted {
            v["text"] = format!("{}\n{q}\n{}", &text[..cut], &text[cut..]).into();
        }
        v["extra"] = serde_json::json!({"n": i});
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let path = dir.join("docs.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

fn docs(out: &Path) -> Vec<serde_json::Value> {
    gunzip(&out.join("docs/part-00000.jsonl.gz"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn benchmarks() -> Vec<String> {
    vec![
        "--benchmark".into(),
        format!("gsm8k={BENCH}/gsm8k-test-head20.jsonl"),
        "--benchmark".into(),
        format!("mmlu={BENCH}/mmlu-anatomy-test-head20.csv"),
        "--benchmark".into(),
        format!("humaneval={BENCH}/humaneval-head5.jsonl"),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn an_index_built_once_gives_the_same_output_and_the_report_names_the_examples() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let index = dir.path().join("idx/bench.index");
    let mut a: Vec<String> = vec!["decontam".into(), "index".into()];
    a.extend(benchmarks());
    a.extend(["-o".into(), index.display().to_string()]);
    let out = run_ok(&args(&a));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_mentions(&said, &["gsm8k: 20 examples", "n-grams"]);
    // The same benchmarks give the same bytes.
    let again = dir.path().join("again.index");
    a.pop();
    a.push(again.display().to_string());
    run_ok(&args(&a));
    assert_eq!(
        std::fs::read(&index).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let from_index = dir.path().join("from-index");
    let report = dir.path().join("report.json");
    run_ok(&[
        "decontam",
        input.to_str().unwrap(),
        "-o",
        from_index.to_str().unwrap(),
        "--index",
        index.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "-q",
    ]);
    let from_bench = dir.path().join("from-bench");
    let mut b: Vec<String> = vec![
        "decontam".into(),
        input.display().to_string(),
        "-o".into(),
        from_bench.display().to_string(),
        "-q".into(),
    ];
    b.extend(benchmarks());
    run_ok(&args(&b));
    // --benchmark writes the index it built next to the output, the same bytes.
    assert_eq!(
        std::fs::read(from_bench.join("decontam.index")).unwrap(),
        std::fs::read(&index).unwrap()
    );
    let kept = docs(&from_index);
    assert_eq!(kept, docs(&from_bench));
    let ids: Vec<&str> = kept.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 27);
    for (k, planted) in [3, 7, 12].iter().enumerate() {
        assert!(
            !kept
                .iter()
                .any(|d| d["meta"]["extra"]["extra"]["n"] == *planted),
            "{k}"
        );
    }

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["documents"], 30);
    assert_eq!(r["kept"], 27);
    assert_eq!(r["dropped"]["contaminated"], 3);
    let bench = |name: &str| {
        r["benchmarks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap()
            .clone()
    };
    let g = bench("gsm8k");
    assert_eq!(
        (g["documents"].as_u64(), g["examples"].as_u64()),
        (Some(2), Some(20))
    );
    let hit: Vec<&str> = g["matched_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["example"].as_str().unwrap())
        .collect();
    assert_eq!(
        hit,
        ["gsm8k-test-head20.jsonl:1", "gsm8k-test-head20.jsonl:3"]
    );
    let sample = g["sample_ngrams"][0]["ngram"].as_str().unwrap();
    assert_eq!(sample.split(' ').count(), 13, "{sample}");
    let m = bench("mmlu");
    assert_eq!(m["documents"], 1);
    assert_eq!(
        m["matched_examples"][0]["example"],
        "mmlu-anatomy-test-head20.csv:1"
    );
    assert_eq!(bench("humaneval")["documents"], 0);
}

#[test]
fn remove_span_keeps_the_document_without_the_question_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let run = |threads: &str, name: &str| {
        let out = dir.path().join(name);
        let mut a: Vec<String> = vec![
            "decontam".into(),
            input.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--policy".into(),
            "remove-span".into(),
            "--threads".into(),
            threads.into(),
            "--dropped".into(),
            "-q".into(),
        ];
        a.extend(benchmarks());
        run_ok(&args(&a));
        out
    };
    let one = run("1", "one");
    let four = run("4", "four");
    assert_eq!(docs(&one), docs(&four));
    let kept = docs(&one);
    // Every review is kept; the planted ones lose the question, its window and nothing
    // else, and keep their id and fields.
    assert_eq!(kept.len(), 30);
    let original: Vec<serde_json::Value> = std::fs::read_to_string(REVIEWS)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, d) in kept.iter().enumerate() {
        assert_eq!(d["id"], original[i]["id"]);
        assert_eq!(d["meta"]["extra"]["extra"]["n"], i);
        let text = d["text"].as_str().unwrap();
        if [3, 7, 12].contains(&i) {
            let info = &d["meta"]["extra"]["decontam"];
            assert_eq!(info["pieces"], 2, "{i}");
            assert!(!text.to_lowercase().contains("ducks lay"), "{text}");
            let removed = info["removed"][0].as_array().unwrap();
            let span = removed[1].as_u64().unwrap() - removed[0].as_u64().unwrap();
            assert!(span > 400 && span < 900, "{i}: {span}");
            // Of the review itself, about 2 x 200 characters went with it.
            let o = original[i]["text"].as_str().unwrap();
            let lost = o.len() as i64 - text.len() as i64;
            assert!((380..=420).contains(&lost), "{i}: {lost}");
        } else {
            assert_eq!(text, original[i]["text"].as_str().unwrap(), "{i}");
        }
    }
    // Scanned again, nothing matches.
    let rescan = dir.path().join("rescan");
    let mut a: Vec<String> = vec![
        "decontam".into(),
        one.display().to_string(),
        "-o".into(),
        rescan.display().to_string(),
        "-q".into(),
    ];
    a.extend(benchmarks());
    run_ok(&args(&a));
    assert_eq!(docs(&rescan).len(), 30);
}

#[test]
fn a_config_loads_an_index_relative_to_its_folder_and_bad_indexes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_input(dir.path());
    let index = dir.path().join("bench.index");
    let mut a: Vec<String> = vec!["decontam".into(), "index".into(), "-q".into()];
    a.extend(benchmarks());
    a.extend(["-o".into(), index.display().to_string()]);
    run_ok(&args(&a));
    let config = write_file(
        dir.path(),
        "run.toml",
        format!(
            "[input]\npaths = [\"{}\"]\n[output]\ndir = \"out\"\n\
             [[stages]]\nkind = \"decontam\"\nindex = \"bench.index\"\npolicy = \"remove_span\"\n",
            input.display()
        ),
    );
    run_ok(&["run", config.to_str().unwrap(), "-q"]);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["stages"][0]["counters"]["edited"], 3);

    // A damaged index, another n, or a file that is not an index: exit 2, named.
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let damaged = write_file(dir.path(), "damaged.index", &bytes);
    for (file, extra, says) in [
        (&damaged, vec![], "checksum"),
        (&index, vec!["--n", "8"], "n = 13"),
        (&input, vec![], "not a CDXIDX file"),
    ] {
        let mut a = vec![
            "decontam",
            input.to_str().unwrap(),
            "-o",
            "unused",
            "--index",
            file.to_str().unwrap(),
            "-q",
        ];
        a.extend(extra);
        let out = corpus().current_dir(dir.path()).args(&a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_mentions(&err, &[file.file_name().unwrap().to_str().unwrap(), says]);
    }
}
