//! `corpus dedup --fuzzy`: in-memory and multi-pass modes agree, near-duplicates go,
//! distinct documents stay, intermediate files are checked.

use crate::common;
use common::{testing::assert_mentions, write_file};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
}

fn run(args: &[&str]) -> std::process::Output {
    let out = corpus().args(args).arg("-q").output().unwrap();
    assert!(
        out.status.success(),
        "corpus {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn reviews() -> Vec<Value> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jsonl/movie_reviews-sample.jsonl"),
    )
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Replaces every `every`-th word (a light edit keeps most 5-word shingles only when
/// `every` is large).
fn edit(text: &str, every: usize) -> String {
    text.split_whitespace()
        .enumerate()
        .map(|(i, w)| {
            if i % every == every - 1 {
                format!("{w}zz")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Three input files: 20 originals; light edits of reviews 0..8 (one word in 60
/// changed) plus an extra field, with a corrupt line among them; heavy edits of
/// reviews 8..14 (one word in 3).
fn inputs(dir: &Path) -> Vec<String> {
    let docs = reviews();
    let mut a = String::new();
    for d in &docs[..20] {
        a.push_str(&serde_json::to_string(d).unwrap());
        a.push('\n');
    }
    let mut b = String::new();
    for (i, d) in docs[..8].iter().enumerate() {
        let v = serde_json::json!({
            "id": format!("light-{i}"),
            "text": edit(d["text"].as_str().unwrap(), 60),
            "label": i,
        });
        b.push_str(&format!("{v}\n"));
        if i == 3 {
            // A corrupt record: skipped and counted by every pass, the records after it
            // keep their places.
            b.push_str("{\"id\": \"broken\", \"text\": \n");
        }
    }
    let mut c = String::new();
    for (i, d) in docs[8..14].iter().enumerate() {
        let v = serde_json::json!({"id": format!("heavy-{i}"), "text": edit(d["text"].as_str().unwrap(), 3)});
        c.push_str(&format!("{v}\n"));
    }
    c.push_str("{\"id\": \"short\", \"text\": \"too short\"}\n");
    let mut paths = Vec::new();
    for (name, body) in [("a.jsonl", a), ("b.jsonl", b), ("c.jsonl", c)] {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        paths.push(p.to_string_lossy().into_owned());
    }
    paths
}

fn ids(out: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            common::gunzip(f)
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn multi_pass(inputs: &[String], work: &Path, out: &Path, extra: &[&str]) {
    let w = work.to_str().unwrap();
    let with = |pass: &str, task: Option<(usize, usize)>| {
        let method = if extra.contains(&"--exact") {
            "--exact"
        } else {
            "--fuzzy"
        };
        let mut args = vec!["dedup", method, "--pass", pass, "--work-dir", w];
        let t;
        if let Some((i, n)) = task {
            t = [i.to_string(), n.to_string()];
            args.extend(["--task-index", &t[0], "--task-count", &t[1]]);
            args.extend(extra.iter().filter(|a| **a != "--exact"));
            args.extend(inputs.iter().map(String::as_str));
            if pass == "filter" {
                args.extend(["-o", out.to_str().unwrap()]);
            }
            run(&args);
        } else {
            args.extend(extra.iter().filter(|a| **a != "--exact"));
            args.extend(inputs.iter().map(String::as_str));
            run(&args);
        }
    };
    for i in 0..2 {
        with("signatures", Some((i, 2)));
    }
    for i in 0..3 {
        with("buckets", Some((i, 3)));
    }
    with("cluster", None);
    for i in 0..2 {
        with("filter", Some((i, 2)));
    }
}

#[test]
fn near_duplicates_go_and_both_modes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    for extra in [
        &[][..],
        &["--verify", "off"][..],
        &["--threshold", "0.7", "--verify", "estimate"][..],
    ] {
        let mem = dir.path().join("mem");
        let _ = std::fs::remove_dir_all(&mem);
        let mut args = vec!["dedup", "--fuzzy", "-o", mem.to_str().unwrap()];
        args.extend(extra);
        args.extend(inputs.iter().map(String::as_str));
        run(&args);
        let kept = ids(&mem);
        // Originals stay, light edits go, heavy edits and the short document stay.
        assert_eq!(kept.len(), 20 + 6 + 1, "{kept:?}");
        assert!(!kept.iter().any(|i| i.starts_with("light-")), "{kept:?}");
        assert!(kept.iter().any(|i| i == "short"));

        let work = dir.path().join("work");
        let multi = dir.path().join("multi");
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir_all(&multi);
        multi_pass(&inputs, &work, &multi, extra);
        for part in [
            "part-00000.jsonl.gz",
            "part-00001.jsonl.gz",
            "part-00002.jsonl.gz",
        ] {
            assert_eq!(
                std::fs::read(mem.join("docs").join(part)).unwrap(),
                std::fs::read(multi.join("docs").join(part)).unwrap(),
                "{part} differs between modes ({extra:?})"
            );
        }
    }
}

#[test]
fn survivors_keep_their_fields_and_annotations_name_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let out = dir.path().join("ann");
    let mut args = vec![
        "dedup",
        "--fuzzy",
        "--annotate",
        "--keep",
        "longest",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(inputs.iter().map(String::as_str));
    run(&args);
    let text = common::gunzip(&out.join("docs/part-00001.jsonl.gz"));
    let docs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(docs.len(), 8, "annotate keeps every document");
    let originals = reviews();
    for (d, o) in docs.iter().zip(&originals) {
        let m = &d["meta"]["extra"]["minhash"];
        assert_eq!(m["size"], 2, "{d}");
        // keep = longest: the edit survives when its text is longer than the original's.
        let chars = |v: &Value| v["text"].as_str().unwrap().chars().count();
        assert_eq!(m["survivor"], chars(d) > chars(o), "{d}");
        assert!(m["cluster"].as_str().unwrap().starts_with("0:"), "{d}");
        assert!(
            d["meta"]["extra"]["label"].is_number(),
            "extra fields survive: {d}"
        );
    }
}

#[test]
fn output_is_the_same_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let mut outs = Vec::new();
    for t in ["1", "4"] {
        let out = dir.path().join(format!("t{t}"));
        let mut args = vec!["dedup", "--fuzzy", "-t", t, "-o", out.to_str().unwrap()];
        args.extend(inputs.iter().map(String::as_str));
        run(&args);
        outs.push(out);
    }
    for part in ["part-00000.jsonl.gz", "part-00001.jsonl.gz"] {
        assert_eq!(
            std::fs::read(outs[0].join("docs").join(part)).unwrap(),
            std::fs::read(outs[1].join("docs").join(part)).unwrap()
        );
    }
}

#[test]
fn damaged_or_foreign_intermediate_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let work = dir.path().join("work");
    let w = work.to_str().unwrap();
    let pass = |pass: &str, extra: &[&str]| {
        let mut args = vec!["dedup", "--fuzzy", "--pass", pass, "--work-dir", w, "-q"];
        args.extend(extra);
        args.extend(inputs.iter().map(String::as_str));
        corpus().args(&args).output().unwrap()
    };
    assert!(pass("signatures", &[]).status.success());
    // Buckets with other settings: the band files are refused, naming one.
    let out = pass("buckets", &["--seed", "7"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_mentions(&err, &["other MinHash settings", ".band"]);
    // A damaged band file.
    let band = work.join("bands/b000/f000001.band");
    let mut bytes = std::fs::read(&band).unwrap();
    let n = bytes.len();
    bytes[n - 17] ^= 0x55;
    std::fs::write(&band, &bytes).unwrap();
    let out = pass("buckets", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_mentions(&err, &["f000001.band", "damaged"]);
    // The signature pass notices the damage is not in its own files, so redo the band
    // by removing the signature file of input 1 (it is the completion mark).
    std::fs::remove_file(work.join("signatures/f000001.sig")).unwrap();
    assert!(pass("signatures", &[]).status.success());
    assert!(pass("buckets", &[]).status.success());
    // Cluster with another input list.
    let out = corpus()
        .args([
            "dedup",
            "--fuzzy",
            "--pass",
            "cluster",
            "--work-dir",
            w,
            "-q",
        ])
        .args(&inputs[..2])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("input files"), "{err}");
    // The filter refuses to run before the cluster pass.
    let out = corpus()
        .args([
            "dedup",
            "--fuzzy",
            "--pass",
            "filter",
            "--work-dir",
            w,
            "-q",
            "-o",
        ])
        .arg(dir.path().join("o"))
        .args(&inputs)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cluster pass"), "{err}");
    assert!(pass("cluster", &[]).status.success());
}

#[test]
fn explain_prints_the_curve() {
    let out = run(&[
        "dedup",
        "--fuzzy",
        "--explain",
        "--bands",
        "20",
        "--rows",
        "5",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("100 hashes = 20 bands x 5 rows"), "{text}");
    assert!(text.contains("0.85"));
}

#[test]
fn a_run_with_minhash_dedup_matches_the_dedup_command_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let cfg = dir.path().join("run.toml");
    let paths: Vec<String> = inputs.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[input]\npaths = [{}]\n[output]\ndir = \"out\"\ndropped = true\n\n[[stages]]\nkind = \"length\"\nmin_chars = 1\n\n\
             [[stages]]\nkind = \"minhash_dedup\"\n\n[[stages]]\nkind = \"length\"\nmin_chars = 1\n",
            paths.join(", ")
        ),
    )
    .unwrap();
    let run_out = dir.path().join("out");
    run(&["run", cfg.to_str().unwrap()]);
    let cmd_out = dir.path().join("cmd");
    let mut args = vec!["dedup", "--fuzzy", "-o", cmd_out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    run(&args);
    assert_eq!(ids(&run_out), ids(&cmd_out));
    // One funnel: the stage before, the dedup, the stage after.
    let stats: Value =
        serde_json::from_slice(&std::fs::read(run_out.join("stats.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = stats["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["length", "minhash_dedup", "length"]);
    assert_eq!(stats["stages"][1]["drops"]["near_duplicate"], 8);
    // `corpus sample --by cluster`: each near-duplicate in its cluster, with what the
    // filter recorded and the id of its cluster's survivor, which was kept.
    let out = run(&[
        "sample",
        run_out.to_str().unwrap(),
        "--by",
        "cluster",
        "--n",
        "5",
        "--jsonl",
    ]);
    let sampled: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(sampled.len(), 8);
    let kept = ids(&run_out);
    for v in &sampled {
        assert_eq!(v["drop"]["reason"], "near_duplicate", "{v}");
        assert!(v["id"].as_str().unwrap().starts_with("light-"), "{v}");
        let cluster = v["meta"]["extra"]["minhash"]["cluster"].as_str().unwrap();
        assert_eq!(v["stratum"], format!("cluster {cluster}"));
        let detail = v["drop"]["detail"].as_str().unwrap();
        let expected = format!("cluster {cluster} of 2 documents, survivor {cluster}");
        assert!(detail.starts_with(&expected), "{detail}");
        let survivor = v["survivor"].as_str().unwrap().to_string();
        assert!(
            kept.contains(&survivor) && !survivor.starts_with("light-"),
            "{v}"
        );
    }
    // A rerun with --resume redoes nothing and changes nothing.
    let before = std::fs::read(run_out.join("docs/part-00001.jsonl.gz")).unwrap();
    let out = corpus()
        .args(["run", cfg.to_str().unwrap(), "--resume"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 done, 3 skipped"));
    assert_eq!(
        before,
        std::fs::read(run_out.join("docs/part-00001.jsonl.gz")).unwrap()
    );
    // In-run dedup needs the whole input: a multi-task run is refused.
    let out = corpus()
        .args(["run", cfg.to_str().unwrap(), "--task-count", "2", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one task"));
}

#[test]
fn exact_dedup_through_the_passes_matches_the_exact_stage() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = inputs(dir.path());
    // A fourth file: upper-cased copies of reviews 3..9 (the same dedup key) and one new.
    let mut d = String::new();
    for (i, r) in reviews()[3..9].iter().enumerate() {
        let v = serde_json::json!({"id": format!("upper-{i}"), "text": r["text"].as_str().unwrap().to_uppercase()});
        d.push_str(&format!("{v}\n"));
    }
    d.push_str("{\"id\": \"new\", \"text\": \"something else entirely, not seen before\"}\n");
    let p = write_file(dir.path(), "d.jsonl", d);
    inputs.push(p.to_string_lossy().into_owned());

    let stage_out = dir.path().join("stage");
    let mut args = vec!["dedup", "--exact", "-o", stage_out.to_str().unwrap()];
    args.extend(inputs.iter().map(String::as_str));
    run(&args);

    let work = dir.path().join("work");
    let passes_out = dir.path().join("passes");
    multi_pass(&inputs, &work, &passes_out, &["--exact"]);
    // (`--exact` takes the place of `--fuzzy` in every pass.)
    let kept = ids(&passes_out);
    assert_eq!(kept, ids(&stage_out));
    assert!(!kept.iter().any(|i| i.starts_with("upper-")), "{kept:?}");
    assert!(kept.iter().any(|i| i == "new"));
    let stats: Value =
        serde_json::from_slice(&std::fs::read(passes_out.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["stages"][0]["drops"]["duplicate"], 6);
}
