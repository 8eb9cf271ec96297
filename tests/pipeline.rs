//! End-to-end tests of the executor and the CLI on real sample text: determinism over
//! thread counts, task sharding, kill-and-resume, refusing to mix runs, and errors.

use crate::common;
use common::{gunzip, testing::assert_mentions, write_file};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/jsonl/movie_reviews-sample.jsonl"
);

fn corpus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
}

/// Writes `files` JSONL inputs of real reviews, each line repeated `copies` times with
/// distinct ids, and a config over them; returns the config path.
fn setup(dir: &Path, files: usize, copies: usize, extra: &str) -> PathBuf {
    let sample = std::fs::read_to_string(SAMPLE).unwrap();
    let input = dir.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in 0..files {
        let mut out = String::new();
        for c in 0..copies {
            for line in sample.lines() {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                let id = format!("{}-{f}-{c}", v["id"].as_str().unwrap());
                v["id"] = id.into();
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
        std::fs::write(input.join(format!("reviews-{f:02}.jsonl")), out).unwrap();
    }
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[input]
paths = ["in"]

[output]
dir = "out"
dropped = true

[executor]
batch_docs = 7

[[stages]]
kind = "length"
min_chars = 3000
max_chars = 6000
{extra}
"#
        ),
    )
    .unwrap();
    config
}

/// Runs `config` with 1 and with 4 worker threads into `dir/one` and `dir/many`.
fn run_with_1_and_4_threads(dir: &Path, config: &str) -> (PathBuf, PathBuf) {
    let one = dir.join("one");
    let many = dir.join("many");
    for (threads, out) in [("1", &one), ("4", &many)] {
        run_ok(&[
            "run",
            config,
            "-q",
            "--threads",
            threads,
            "-o",
            out.to_str().unwrap(),
        ]);
    }
    (one, many)
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

/// Every file under `dir` (relative path -> bytes), leaving out what may legitimately
/// differ between equivalent runs: statistics (they hold timings) and the config copy.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["docs", "dropped", "done"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let mut bytes = std::fs::read(e.path()).unwrap();
            if sub == "done" {
                // A marker records when its input was last changed: equivalent runs over
                // a rewritten input differ there.
                let mut marker: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                marker["input_mtime"] = serde_json::Value::Null;
                bytes = marker.to_string().into_bytes();
            }
            out.push((format!("{sub}/{}", e.file_name().to_string_lossy()), bytes));
        }
    }
    out.sort();
    out
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap()
}

#[test]
fn output_is_identical_for_any_thread_count_and_task_split() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 5, 3, "");
    let config = config.to_str().unwrap();
    let (one, many) = run_with_1_and_4_threads(dir.path(), config);
    let reference = tree(&one);
    assert_eq!(reference.len(), 15, "5 docs, 5 dropped, 5 markers");
    assert_eq!(tree(&many), reference);

    // The same job split over three tasks writes the same files.
    let split = dir.path().join("split");
    for index in ["0", "1", "2"] {
        run_ok(&[
            "run",
            config,
            "-q",
            "-o",
            split.to_str().unwrap(),
            "--task-index",
            index,
            "--task-count",
            "3",
        ]);
    }
    assert_eq!(tree(&split), reference);

    // The funnel adds up: 5 files x 3 copies x 30 reviews in, drops by reason.
    let s = stats(&one);
    assert_eq!(s["shards"], 5);
    assert_eq!(s["input"]["docs"], 450);
    let length = &s["stages"][0];
    assert_eq!(length["kind"], "length");
    assert_eq!(length["docs_in"], 450);
    let drops = length["drops"]["too_short"].as_u64().unwrap()
        + length["drops"]["too_long"].as_u64().unwrap();
    assert!(drops > 0 && length["docs_out"].as_u64().unwrap() > 0);
    assert_eq!(length["docs_out"].as_u64().unwrap() + drops, 450);
    assert_eq!(s["docs_out"], length["docs_out"]);
    assert_eq!(stats(&split)["docs_out"], s["docs_out"]);
}

#[test]
fn dropped_documents_carry_stage_and_reason_and_parquet_output_works() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 1, 1, "");
    run_ok(&["run", config.to_str().unwrap(), "-q"]);
    let out = dir.path().join("out");
    let text = gunzip(&out.join("dropped/part-00000.jsonl.gz"));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["drop"]["stage"], "length");
    assert!(["too_short", "too_long"].contains(&first["drop"]["reason"].as_str().unwrap()));
    let kept = gunzip(&out.join("docs/part-00000.jsonl.gz"));
    for line in kept.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let n = v["text"].as_str().unwrap().chars().count();
        assert!((3000..=6000).contains(&n), "{n}");
        assert!(v.get("drop").is_none());
    }

    let pq = dir.path().join("pq");
    run_ok(&[
        "run",
        config.to_str().unwrap(),
        "-q",
        "-o",
        pq.to_str().unwrap(),
        "--set",
        "output.format=parquet",
    ]);
    assert!(pq.join("docs/part-00000.parquet").exists());
    assert!(pq.join("dropped/part-00000.parquet").exists());
    assert_eq!(stats(&pq)["docs_out"], stats(&out)["docs_out"]);
}

#[test]
fn a_killed_run_resumes_to_the_same_output() {
    killed_run_resumes(PLAIN);
}

#[test]
fn a_killed_run_with_exact_dedup_resumes_to_the_same_output() {
    // Every shard repeats the reviews of shard 0: the dedup state of completed shards
    // must be restored for the resumed run to drop them.
    killed_run_resumes(EXACT_DEDUP);
}

const PLAIN: &str = "";
const EXACT_DEDUP: &str = "[[stages]]\nkind = \"exact_dedup\"\n";

fn killed_run_resumes(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    // Enough work that the kill lands mid-run: 12 shards of 30 x 40 reviews.
    let config = setup(dir.path(), 12, 40, extra);
    let config = config.to_str().unwrap();
    let reference = dir.path().join("reference");
    run_ok(&["run", config, "-q", "-o", reference.to_str().unwrap()]);
    let expected = tree(&reference);

    let target = dir.path().join("killed");
    let mut killed_mid_run = false;
    for attempt in 0..5 {
        let _ = std::fs::remove_dir_all(&target);
        let mut child = corpus()
            .args([
                "run",
                config,
                "-q",
                "--threads",
                "1",
                "-o",
                target.to_str().unwrap(),
            ])
            .spawn()
            .unwrap();
        // Wait for the first completed shard, then kill without warning.
        let marker = target.join("done/part-00000.json");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !marker.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2 + attempt));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let done = std::fs::read_dir(target.join("done")).unwrap().count();
        if done < 12 {
            killed_mid_run = true;
            break;
        }
    }
    assert!(killed_mid_run, "every attempt finished before the kill");
    // A killed run leaves nothing partial under a final name: every docs file present
    // has its marker.
    for e in std::fs::read_dir(target.join("docs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            let part = name.trim_end_matches(".jsonl.gz");
            assert!(
                target.join(format!("done/{part}.json")).exists(),
                "{name} without marker"
            );
        }
    }
    // Rerunning without --resume refuses; with --resume finishes the job.
    let refused = corpus()
        .args(["run", config, "-q", "-o", target.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    let out = run_ok(&["run", config, "-o", target.to_str().unwrap(), "--resume"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("skipped as complete"), "{log}");
    assert_eq!(tree(&target), expected);
    // No temporary file is left behind.
    for sub in ["docs", "dropped", "stats", "done"] {
        for e in std::fs::read_dir(target.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with('.'), "{sub}/{name} left behind");
        }
    }
    assert_eq!(stats(&target)["docs_out"], stats(&reference)["docs_out"]);
}

#[test]
fn a_different_config_does_not_mix_into_an_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 2, 1, "");
    let config = config.to_str().unwrap();
    run_ok(&["run", config, "-q"]);
    let other = corpus()
        .args([
            "run",
            config,
            "-q",
            "--resume",
            "--set",
            "length.min_chars=10",
        ])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&other.stderr).contains("different config"));
    run_ok(&[
        "run",
        config,
        "-q",
        "--overwrite",
        "--set",
        "length.min_chars=10",
    ]);
    let s = stats(&dir.path().join("out"));
    assert_eq!(s["stages"][0]["drops"].get("too_short"), None);
}

/// Replaces input shard `f` (JSONL) of `setup` by its gzip, of which `cut` keeps a part;
/// returns the lines the cut part decodes to, the last one cut short.
fn gzip_shard(dir: &Path, f: usize, cut: impl FnOnce(&[u8]) -> &[u8]) -> String {
    let plain = dir.join(format!("in/reviews-{f:02}.jsonl"));
    let text = std::fs::read(&plain).unwrap();
    std::fs::remove_file(&plain).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &text).unwrap();
    let gz = enc.finish().unwrap();
    let part = cut(&gz);
    write_file(&dir.join("in"), format!("reviews-{f:02}.jsonl.gz"), part);
    let mut decoded = String::new();
    let _ = std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(part), &mut decoded);
    decoded
}

#[test]
fn a_failing_shard_leaves_no_output_and_the_others_complete() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 3, 1, "");
    // Shard 1 is a gzip file cut inside its first line: nothing can be read from it.
    let decoded = gzip_shard(dir.path(), 1, |gz| &gz[..60]);
    assert!(!decoded.contains('\n'));

    let out = corpus()
        .args(["run", config.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_mentions(
        &err,
        &[
            "reviews-01.jsonl.gz",
            "nothing could be read",
            "1 shard(s) failed",
        ],
    );
    let o = dir.path().join("out");
    assert!(o.join("docs/part-00000.jsonl.gz").exists());
    assert!(!o.join("docs/part-00001.jsonl.gz").exists());
    assert!(!o.join("done/part-00001.json").exists());
    assert!(o.join("done/part-00002.json").exists());
    assert_eq!(stats(&o)["shards"], 2);
}

#[test]
fn a_cut_gzip_shard_keeps_the_lines_before_the_cut_and_resume_leaves_it_done() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 3, 1, "");
    let decoded = gzip_shard(dir.path(), 1, |gz| &gz[..gz.len() / 2]);
    let complete = decoded.matches('\n').count();
    assert!(complete > 0);

    let config_str = config.to_str().unwrap();
    let out = run_ok(&["run", config_str]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_mentions(
        &err,
        &["warning:", "reviews-01.jsonl.gz", "damaged compressed data"],
    );
    let o = dir.path().join("out");
    assert!(o.join("done/part-00001.json").exists());
    // Every complete line is a document, kept or dropped by the length stage.
    let written: usize = ["docs", "dropped"]
        .iter()
        .map(|d| {
            gunzip(&o.join(format!("{d}/part-00001.jsonl.gz")))
                .lines()
                .count()
        })
        .sum();
    assert_eq!(written, complete);
    let s = stats(&o);
    assert_eq!(s["shards"], 3);
    assert_eq!(s["input"]["corrupt"]["truncated"], 1, "{s}");
    // Complete: a resumed run has nothing left to do.
    let resumed = run_ok(&["run", config_str, "--resume"]);
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains("3 skipped as complete"), "{log}");
}

#[test]
fn usage_and_config_errors_exit_2_and_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 1, 1, "");
    let config = config.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["run", config, "--set", "length.min_char=3"],
            "min_char",
        ),
        (
            vec!["run", config, "--set", "stages.0.kind=\"lenght\""],
            "lenght",
        ),
        (vec!["run", "/nonexistent/x.toml"], "/nonexistent/x.toml"),
        (
            vec!["run", config, "--set", "input.paths=[\"missing.jsonl\"]"],
            "missing.jsonl",
        ),
        (
            vec!["run", config, "--task-index", "3", "--task-count", "2"],
            "task index 3",
        ),
        (vec!["run", config, "--bogus"], "--bogus"),
    ];
    for (args, needle) in cases {
        let out = corpus().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn an_unwritable_output_directory_is_a_clear_runtime_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 1, 1, "");
    // A regular file where a directory should be (permission bits do not stop root).
    let blocker = write_file(dir.path(), "blocker", b"");
    let target = blocker.join("out");
    let out = corpus()
        .args([
            "run",
            config.to_str().unwrap(),
            "-q",
            "-o",
            target.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("blocker/out"), "{err}");
    // The cause is said once, not once by the error and again by its chain.
    assert_eq!(err.matches("Not a directory").count(), 1, "{err}");
}

/// A run started while another run of the same task writes to the output directory is
/// refused (exit 1, naming the directory), not run twice; a thread count no machine has
/// is a usage error, not an allocation failure.
#[test]
fn a_second_run_of_a_task_is_refused_and_absurd_thread_counts_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 2, 1, "");
    let config = config.to_str().unwrap();
    let out = dir.path().join("out");
    run_ok(&["run", config, "-q", "-o", out.to_str().unwrap()]);
    // Another run of task 0 holds its lock (as `corpus` does while it runs).
    let lock = std::fs::File::options()
        .write(true)
        .open(out.join("state/task-00000.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let args = ["run", config, "-q", "--resume", "-o", out.to_str().unwrap()];
    let second = corpus().args(args).output().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another run of task 0"), "{err}");
    // Task 1 of the same job has a lock of its own.
    run_ok(&[&args[..], &["--task-index", "1", "--task-count", "2"]].concat());
    drop(lock);
    run_ok(&args);
    let many = corpus()
        .args(["run", config, "-q", "--threads", "100000000", "-o"])
        .arg(dir.path().join("many"))
        .output()
        .unwrap();
    assert_eq!(many.status.code(), Some(2));
    let err = String::from_utf8_lossy(&many.stderr);
    assert!(err.contains("at most 4096"), "{err}");
}

#[test]
fn stages_lists_kinds_with_defaults() {
    let out = run_ok(&["stages"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_mentions(&text, &["length:", "min_chars = 1"]);
    let json = run_ok(&["stages", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["kind"], "length");
}

#[test]
fn exact_dedup_keeps_first_occurrences_across_shards_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    // 4 shards, each the same 30 reviews twice (distinct ids, same text).
    let config = setup(dir.path(), 4, 2, EXACT_DEDUP);
    let config = config.to_str().unwrap();
    let (one, many) = run_with_1_and_4_threads(dir.path(), config);
    assert_eq!(tree(&many), tree(&one));

    let s = stats(&one);
    let length = &s["stages"][0];
    let dedup = &s["stages"][1];
    assert_eq!(dedup["kind"], "exact_dedup");
    assert_eq!(dedup["docs_in"], length["docs_out"]);
    // One survivor per distinct review, all from the first copy in shard 0.
    let unique = length["docs_out"].as_u64().unwrap() / 8;
    assert_eq!(dedup["docs_out"].as_u64().unwrap(), unique);
    assert_eq!(dedup["drops"]["duplicate"].as_u64().unwrap(), 7 * unique);
    let kept = gunzip(&one.join("docs/part-00000.jsonl.gz"));
    for line in kept.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["id"].as_str().unwrap().ends_with("-0-0"), "{}", v["id"]);
        assert_eq!(v["meta"]["content_hash"].as_str().unwrap().len(), 32);
    }
    assert_eq!(kept.lines().count() as u64, unique);
    for part in 1..4 {
        assert_eq!(
            gunzip(&one.join(format!("docs/part-0000{part}.jsonl.gz"))),
            ""
        );
    }
    let dropped = gunzip(&one.join("dropped/part-00001.jsonl.gz"));
    assert!(dropped.contains(r#""reason":"duplicate""#));
}

#[test]
fn with_exact_dedup_a_resume_redoes_every_shard_after_a_failed_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), 4, 1, EXACT_DEDUP);
    let config_str = config.to_str().unwrap();
    let reference = dir.path().join("reference");
    run_ok(&["run", config_str, "-q", "-o", reference.to_str().unwrap()]);
    // Shard 1 unreadable: shards 0, 2, 3 complete, shard 1 fails.
    let input = dir.path().join("in/reviews-01.jsonl");
    let text = std::fs::read(&input).unwrap();
    std::fs::write(&input, b"\x1f\x8b\x08garbage").unwrap();
    let out = dir.path().join("out");
    let failed = corpus().args(["run", config_str, "-q"]).output().unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert!(out.join("done/part-00002.json").exists());
    // Repaired and resumed: shard 0 is skipped, shards 1-3 redone in order, so the
    // first occurrences are the same as in an uninterrupted run.
    std::fs::write(&input, text).unwrap();
    let resumed = run_ok(&["run", config_str, "--resume"]);
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(log.contains("1 skipped as complete"), "{log}");
    assert_eq!(tree(&out), tree(&reference));
}

#[test]
fn dedup_command_runs_exact_dedup_alone() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 2, 2, "");
    let out = dir.path().join("dedup");
    let input = dir.path().join("in");
    let result = run_ok(&[
        "dedup",
        "--exact",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--dropped",
    ]);
    let log = String::from_utf8_lossy(&result.stderr);
    // 2 files x 2 copies of 30 reviews: 30 survive.
    assert_mentions(&log, &["exact_dedup", "duplicate=90"]);
    assert_eq!(stats(&out)["docs_out"], 30);
    let bloom = dir.path().join("bloom");
    run_ok(&[
        "dedup",
        "--exact",
        "--bloom",
        "--expected-docs",
        "1000",
        input.to_str().unwrap(),
        "-o",
        bloom.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(stats(&bloom)["docs_out"], 30);
    let missing = corpus()
        .args(["dedup", input.to_str().unwrap(), "-o", "x"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn decontam_command_drops_documents_holding_a_benchmark_question() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    let gsm8k = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/benchmarks/gsm8k-test-head20.jsonl"
    );
    let question: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(gsm8k)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let leaked = format!(
        "Homework forum. {} Thanks!",
        question["question"].as_str().unwrap().to_uppercase()
    );
    let lines = [
        serde_json::json!({"id": "clean", "text": "The council approved the budget for the new library on Tuesday evening after a long debate."}),
        serde_json::json!({"id": "leaked", "text": leaked}),
    ];
    std::fs::write(
        &input,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = dir.path().join("out");
    let benchmark = format!("gsm8k={gsm8k}");
    run_ok(&[
        "decontam",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--benchmark",
        &benchmark,
        "--dropped",
        "-q",
    ]);
    let kept = gunzip(&out.join("docs/part-00000.jsonl.gz"));
    assert!(
        kept.contains("\"clean\"") && !kept.contains("\"leaked\""),
        "{kept}"
    );
    let dropped = gunzip(&out.join("dropped/part-00000.jsonl.gz"));
    assert_mentions(&dropped, &["\"contaminated\"", "\"benchmark\":\"gsm8k\""]);
    let bad = corpus()
        .args([
            "decontam",
            input.to_str().unwrap(),
            "-o",
            "x",
            "--benchmark",
            "nameonly",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn upsample_repeats_and_thins_sources_the_same_way_for_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    // The sample's records name their source `nltk-movie_reviews`; weight 2.5 on it.
    let config = setup(
        dir.path(),
        2,
        1,
        "[[stages]]\nkind = \"upsample\"\nweights = { \"nltk-movie_reviews\" = 2.5 }\n",
    );
    let config = config.to_str().unwrap();
    let (one, many) = run_with_1_and_4_threads(dir.path(), config);
    assert_eq!(tree(&many), tree(&one));
    let s = stats(&one);
    let up = &s["stages"][1];
    assert_eq!(up["kind"], "upsample");
    let kept = up["docs_in"].as_u64().unwrap();
    let out = s["docs_out"].as_u64().unwrap();
    assert_eq!(
        up["counters"]["docs_in:nltk-movie_reviews"]
            .as_u64()
            .unwrap(),
        kept
    );
    assert_eq!(
        up["counters"]["docs_out:nltk-movie_reviews"]
            .as_u64()
            .unwrap(),
        out
    );
    // 2 or 3 copies each.
    assert!(
        out >= 2 * kept && out <= 3 * kept && out > 2 * kept,
        "{kept} -> {out}"
    );
    let text = gunzip(&one.join("docs/part-00000.jsonl.gz"));
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids[1] == format!("{}#1", ids[0]), "{:?}", &ids[..3]);
}

/// `--resume` trusts a shard only while its input is the file it read: an input that
/// changed (size or modification time) is redone. An output directory moved elsewhere
/// resumes where it was (nothing redone), even with MinHash's passes inside it.
#[test]
fn resume_redoes_changed_inputs_and_a_moved_output_directory_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(
        dir.path(),
        3,
        2,
        "[[stages]]\nkind = \"minhash_dedup\"\nverify = \"off\"\n",
    );
    let config = config.to_str().unwrap();
    let out = dir.path().join("out");
    run_ok(&["run", config, "-q"]);
    let reference = tree(&out);

    let resumed = |out: &Path| {
        let o = run_ok(&["run", config, "--resume", "-o", out.to_str().unwrap()]);
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let log = resumed(&out);
    assert!(log.contains("0 done, 3 skipped"), "{log}");

    // Moved: every pass resumes as complete, and the output stays.
    let moved = dir.path().join("moved");
    std::fs::rename(&out, &moved).unwrap();
    let log = resumed(&moved);
    assert!(log.contains("0 done, 3 skipped"), "{log}");
    assert_eq!(tree(&moved), reference);

    // One input changed: its shard of the first pass is redone, the others are not;
    // the documents it passes on are the same (the new line is too short to be kept),
    // so the second pass keeps its shards.
    let marker = |i: usize| {
        std::fs::read_to_string(moved.join(format!("minhash/pre/done/part-{i:05}.json"))).unwrap()
    };
    let before: Vec<String> = (0..3).map(marker).collect();
    let input = dir.path().join("in/reviews-01.jsonl");
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("{\"id\": \"new\", \"text\": \"a short new line\"}\n");
    std::fs::write(&input, text).unwrap();
    let log = resumed(&moved);
    assert!(log.contains("61 records"), "shard 1 read again: {log}");
    let after: Vec<String> = (0..3).map(marker).collect();
    assert_eq!((&after[0], &after[2]), (&before[0], &before[2]));
    assert_ne!(after[1], before[1], "shard 1 redone");
    // The new line is dropped before MinHash (too short), with the drops of that pass;
    // everything else is as it was.
    let dropped = gunzip(&moved.join("dropped/part-00001.before-minhash_dedup.jsonl.gz"));
    assert!(dropped.contains("\"id\":\"new\""));
    let unchanged = |t: Vec<(String, Vec<u8>)>| -> Vec<(String, Vec<u8>)> {
        t.into_iter()
            .filter(|(name, _)| name != "dropped/part-00001.before-minhash_dedup.jsonl.gz")
            .collect()
    };
    assert!(unchanged(tree(&moved)) == unchanged(reference));
}

/// In a multi-task job `exact_dedup` is cut into passes of its own (`corpus plan`) and
/// drops a duplicate whichever task saw its first occurrence, with any key: here the
/// URL, whose copies sit in shards of different tasks. The passes give the documents of
/// one process (the ordered stage) byte for byte; documents without a URL pass.
#[test]
fn exact_dedup_by_url_across_tasks_matches_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in 0..4 {
        let mut lines = String::new();
        for i in 0..20 {
            // Shards 2 and 3 repeat the URLs of shards 0 and 1 (other tasks of 2).
            let url = format!("https://example.org/{}/{i}", f % 2);
            let doc = if i % 7 == 3 {
                serde_json::json!({"id": format!("{f}-{i}"), "text": format!("no url {f} {i}")})
            } else {
                serde_json::json!({"id": format!("{f}-{i}"), "text": format!("page {f} {i}"), "url": url})
            };
            lines.push_str(&format!("{doc}\n"));
        }
        std::fs::write(input.join(format!("part-{f}.jsonl")), lines).unwrap();
    }
    let config = write_file(
        dir.path(),
        "url.toml",
        "[input]\npaths = [\"in\"]\n[output]\ndir = \"out\"\ndropped = true\n\
         [[stages]]\nkind = \"exact_dedup\"\nkey = \"url\"\n",
    );
    let config = config.to_str().unwrap();
    let one = dir.path().join("one");
    run_ok(&["run", config, "-q", "-o", one.to_str().unwrap()]);

    let plan = run_ok(&["plan", config, "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let names: Vec<&str> = plan["passes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "exact_dedup.signatures",
            "exact_dedup.buckets",
            "exact_dedup.cluster",
            "exact_dedup.filter"
        ]
    );
    // Without --pass, two tasks are refused: the dedup spans them.
    let out = corpus()
        .args(["run", config, "-q", "--task-count", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exact_dedup.signatures"));

    let jobs = dir.path().join("jobs");
    for pass in &names {
        for task in ["0", "1"] {
            run_ok(&[
                "run",
                config,
                "-q",
                "-o",
                jobs.to_str().unwrap(),
                "--pass",
                pass,
                "--task-index",
                task,
                "--task-count",
                "2",
            ]);
        }
    }
    let docs = |d: &Path| -> Vec<(String, Vec<u8>)> {
        tree(d)
            .into_iter()
            .filter(|(name, _)| name.starts_with("docs/"))
            .collect()
    };
    assert_eq!(docs(&jobs), docs(&one));
    let kept: usize = (0..4)
        .map(|f| {
            gunzip(&one.join(format!("docs/part-{f:05}.jsonl.gz")))
                .lines()
                .count()
        })
        .sum();
    // 34 distinct URLs (17 in each of shards 0 and 1, repeated by 2 and 3), and the 12
    // documents without one.
    assert_eq!(kept, 34 + 12);
    let s = stats(&jobs);
    let dedup = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["kind"] == "exact_dedup" && st["drops"]["duplicate"].is_u64())
        .expect("exact_dedup drops in the funnel");
    assert_eq!(dedup["drops"]["duplicate"], 34);
}

/// A barrier's signatures are computed while the pass before it writes the documents
/// (`minhash/pre/`), not by reading them back; a signature file that is missing for a
/// complete shard (a run killed between the two) is made again from the documents, the
/// same bytes.
#[test]
fn signatures_are_made_while_the_pass_before_writes_and_made_again_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(
        dir.path(),
        3,
        2,
        "[[stages]]\nkind = \"minhash_dedup\"\nbands = 4\nrows = 2\nwork_dir = \"work\"\n",
    );
    let config = config.to_str().unwrap();
    let args = [
        "run",
        config,
        "--pass",
        "minhash_dedup.signatures",
        "--resume",
    ];
    let first = run_ok(&args);
    let note = String::from_utf8_lossy(&first.stderr).into_owned();
    assert!(
        note.contains("minhash_dedup.signatures (while the pass before wrote them)")
            && note.contains("3 file(s) done"),
        "{note}"
    );
    let sig = dir.path().join("work/signatures/f000001.sig");
    let bytes = std::fs::read(&sig).unwrap();
    std::fs::remove_file(&sig).unwrap();
    let again = run_ok(&args);
    let note = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(
        note.contains("1 file(s) done, 2 already complete"),
        "{note}"
    );
    assert_eq!(std::fs::read(&sig).unwrap(), bytes);
}
