//! The whole default pipeline (configs/default.toml on the Common Crawl samples:
//! extract, langid, normalize, exact and MinHash dedup, quality rules, safety lists,
//! quality and safety classifiers, upsample, decontam, then tokenization): byte-identical outputs for 1 and 4 worker threads, and after being
//! killed (SIGKILL) at random points of every step and resumed. tests/pipeline.rs checks
//! the same properties stage by stage on JSONL; this checks them for the product.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn config() -> PathBuf {
    Path::new(ROOT).join("configs/default.toml")
}

fn corpus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
}

fn run_ok(out: &Path, extra: &[&str]) {
    let result = corpus()
        .arg("run")
        .arg(config())
        .args(["-q", "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "corpus run {extra:?} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Every output file of a run (relative path -> bytes), except statistics (they hold
/// timings), the config copy and the dedup work files (they name their inputs by full
/// path): kept and dropped documents and completion markers of both steps of the run,
/// the token shards and their manifest. The output directory's own path, which markers and the
/// manifest name, is replaced by `OUT`.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let prefix = root.to_string_lossy().into_owned();
    for sub in [
        "docs",
        "dropped",
        "done",
        "tokens",
        "minhash/pre/docs",
        "minhash/pre/dropped",
        "minhash/pre/done",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mut bytes = std::fs::read(e.path()).unwrap();
            if name.ends_with(".json") {
                bytes = String::from_utf8(bytes)
                    .unwrap()
                    .replace(&prefix, "OUT")
                    .into_bytes();
            }
            if sub == "done" {
                // The marker's config fingerprint covers the dedup stage's work_dir,
                // OUT/minhash, so it names the output directory too.
                let mut marker: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                marker["fingerprint"] = "-".into();
                bytes = marker.to_string().into_bytes();
            }
            out.push((format!("{sub}/{name}"), bytes));
        }
    }
    out.sort();
    out
}

fn check_complete(tree: &[(String, Vec<u8>)]) {
    let names: Vec<&str> = tree.iter().map(|(n, _)| n.as_str()).collect();
    for needed in [
        "docs/part-00000.jsonl.gz",
        "done/part-00003.json",
        "minhash/pre/done/part-00003.json",
        "tokens/manifest.json",
    ] {
        assert!(names.contains(&needed), "{needed} missing from {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("tokens/train-")),
        "{names:?}"
    );
}

#[test]
fn default_pipeline_is_identical_for_1_and_4_threads() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    let four = dir.path().join("four");
    run_ok(&one, &["--threads", "1"]);
    run_ok(&four, &["--threads", "4"]);
    let reference = tree(&one);
    check_complete(&reference);
    let other = tree(&four);
    assert_eq!(
        other.iter().map(|f| &f.0).collect::<Vec<_>>(),
        reference.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, a), (_, b)) in reference.iter().zip(&other) {
        assert!(a == b, "{name} differs between 1 and 4 threads");
    }
    // So is the sample of it, for a seed.
    let sample = |out: &Path| sample(out, &["--jsonl", "--seed", "3"]);
    assert_eq!(sample(&one), sample(&four));
}

/// `corpus sample RUN_DIR ARGS...`: its standard output.
fn sample(out: &Path, args: &[&str]) -> String {
    let result = common::ok(corpus().arg("sample").arg(out).args(args));
    String::from_utf8(result.stdout).unwrap()
}

/// The JSON lines of the gzip files in `dir`.
fn lines_of(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for line in common::gunzip(&f).lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// The (stage, reason) of a dropped document's JSON.
fn drop_of(v: &serde_json::Value) -> (String, String) {
    let text = |k: &str| v["drop"][k].as_str().unwrap_or_default().to_string();
    (text("stage"), text("reason"))
}

/// `corpus sample` on the default run: the same bytes for a seed (others for another),
/// every drop reason of the run with `--by reason`, each measured rule's value against
/// its threshold, `--where`, and the report's link to the page.
#[test]
fn samples_of_the_default_run_are_deterministic_and_show_every_drop_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    run_ok(&out, &[]);
    let page = |seed: &str, name: &str| {
        let path = tmp.path().join(name);
        common::ok(
            corpus()
                .arg("sample")
                .arg(&out)
                .args(["--seed", seed, "-o"])
                .arg(&path),
        );
        std::fs::read(path).unwrap()
    };
    let a = page("7", "a.html");
    assert!(a.starts_with(b"<!DOCTYPE html>"));
    assert_eq!(a, page("7", "b.html"), "the page differs for one seed");
    let one = sample(&out, &["--jsonl", "--n", "1", "--seed", "1"]);
    assert_eq!(one, sample(&out, &["--jsonl", "--n", "1", "--seed", "1"]));
    assert_ne!(one, sample(&out, &["--jsonl", "--n", "1", "--seed", "2"]));

    // Every reason the run dropped for, from every pass, is in the sample by reason.
    let dropped = lines_of(&out.join("dropped"));
    let reasons: std::collections::BTreeSet<(String, String)> =
        dropped.iter().map(drop_of).collect();
    assert!(reasons.len() >= 5, "{reasons:?}");
    let by_reason: Vec<serde_json::Value> =
        sample(&out, &["--by", "reason", "--n", "1", "--jsonl"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let sampled: std::collections::BTreeSet<(String, String)> = by_reason
        .iter()
        .filter(|v| v.get("drop").is_some())
        .map(drop_of)
        .collect();
    assert_eq!(sampled, reasons);
    assert!(by_reason.iter().any(|v| v["stratum"] == "kept"));
    // The rule-based stages say what they measured against which threshold.
    for v in &by_reason {
        let (stage, reason) = drop_of(v);
        if ["quality", "langid", "safety"].contains(&stage.as_str()) {
            let detail = v["drop"]["detail"].as_str().unwrap_or_default();
            assert!(
                [" < ", " > ", " >= "].iter().any(|op| detail.contains(op)),
                "{stage}/{reason}: {detail:?}"
            );
        }
    }

    // --where: one field's values are alternatives, fields all hold.
    let quality: Vec<serde_json::Value> = sample(
        &out,
        &[
            "--where",
            "stage=quality",
            "--where",
            "status=dropped",
            "--jsonl",
            "--n",
            "1000",
        ],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    let expected = dropped
        .iter()
        .filter(|v| v["drop"]["stage"] == "quality")
        .count();
    assert!(expected > 0);
    assert_eq!(quality.len(), expected);
    assert!(quality.iter().all(|v| v["drop"]["stage"] == "quality"));
    let langs = sample(
        &out,
        &[
            "--where",
            "lang=en",
            "--where",
            "lang=zh",
            "--where",
            "status=kept",
            "--jsonl",
            "--n",
            "1000",
        ],
    );
    let kept = lines_of(&out.join("docs"));
    let expected = kept
        .iter()
        .filter(|v| ["en", "zh"].contains(&v["meta"]["lang"].as_str().unwrap_or("")))
        .count();
    assert_eq!(langs.lines().count(), expected);
    let bad = corpus()
        .arg("sample")
        .arg(&out)
        .args(["--where", "colour=red"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("colour"));

    // A run still going: the drops of a pass before a barrier not yet moved to dropped/
    // are read from its pre/ directory as if moved; a shard without its completion
    // marker is left out.
    let all = sample(&out, &["--jsonl", "--n", "1000"]);
    std::fs::rename(
        out.join("dropped/part-00000.before-minhash_dedup.jsonl.gz"),
        out.join("minhash/pre/dropped/part-00000.jsonl.gz"),
    )
    .unwrap();
    assert_eq!(sample(&out, &["--jsonl", "--n", "1000"]), all);
    std::fs::remove_file(out.join("done/part-00003.json")).unwrap();
    let partial = sample(&out, &["--jsonl", "--n", "1000"]);
    let of_shard_3 = |l: &&str| {
        l.contains("\"file\":\"docs/part-00003.")
            || l.contains("\"file\":\"dropped/part-00003.jsonl")
    };
    let expected: Vec<&str> = all.lines().filter(|l| !of_shard_3(l)).collect();
    assert!(expected.len() < all.lines().count());
    assert_eq!(partial.lines().collect::<Vec<_>>(), expected);

    // The report beside the page links to it.
    page("0", "out/review.html");
    let report = out.join("report.html");
    common::ok(corpus().arg("report").arg(&out).arg("-o").arg(&report));
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("<a href=\"review.html\">see samples</a>"));
}

/// A small deterministic generator (xorshift), so a failure can be replayed from the
/// seed it prints.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn start(out: &Path) -> Child {
    corpus()
        .arg("run")
        .arg(config())
        .args(["-q", "--resume", "--threads", "2", "-o"])
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills `child` when `ready` says so or after `limit`; true when it was still running
/// (the kill landed mid-run), false when it had finished by itself.
fn kill_when(child: &mut Child, limit: Duration, ready: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "an interrupted run's resume failed");
            return false;
        }
        if ready() || started.elapsed() >= limit {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn default_pipeline_killed_at_random_points_resumes_to_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = dir.path().join("reference");
    let started = Instant::now();
    run_ok(&reference_dir, &["--threads", "2"]);
    // Kill delays are drawn from 0 to the length of a whole run on this machine.
    let full = started.elapsed().as_millis() as u64;
    let reference = tree(&reference_dir);
    check_complete(&reference);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill schedule seed: {seed}");
    let mut rng = Rng(seed);
    let target = dir.path().join("killed");
    // Kill points: as soon as a step has begun to leave files (the first shard before
    // dedup, the dedup decisions, the first shard after, the token shards), then at
    // random times; each time the run is restarted with --resume.
    let out = target.clone();
    let triggers: Vec<Box<dyn Fn() -> bool>> = vec![
        Box::new(move || out.join("minhash/pre/done/part-00000.json").exists()),
        Box::new({
            let out = target.clone();
            move || out.join("minhash/clusters/summary.json").exists()
        }),
        Box::new({
            let out = target.clone();
            move || out.join("done/part-00000.json").exists()
        }),
        Box::new({
            let out = target.clone();
            move || out.join("tokens").exists()
        }),
    ];
    let mut kills = 0;
    for trigger in &triggers {
        let mut child = start(&target);
        let limit = Duration::from_millis(rng.below(full) + full / 4);
        if kill_when(&mut child, limit, trigger) {
            kills += 1;
        }
    }
    for _ in 0..6 {
        let mut child = start(&target);
        let limit = Duration::from_millis(rng.below(full));
        if kill_when(&mut child, limit, || false) {
            kills += 1;
        }
    }
    assert!(
        kills > 0,
        "every run finished before its kill (seed {seed})"
    );
    // Resume until done.
    run_ok(&target, &["--resume"]);
    let resumed = tree(&target);
    assert_eq!(
        resumed.iter().map(|f| &f.0).collect::<Vec<_>>(),
        reference.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "seed {seed}"
    );
    for ((name, a), (_, b)) in reference.iter().zip(&resumed) {
        assert!(
            a == b,
            "{name} differs after kills and resume (seed {seed})"
        );
    }
    // Nothing temporary is left behind.
    for sub in [
        "docs",
        "dropped",
        "done",
        "stats",
        "minhash/pre/docs",
        "tokens",
    ] {
        for e in std::fs::read_dir(target.join(sub)).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp-"), "{sub}/{name} left behind");
        }
    }
}

/// A run records its whole config, resolved, in `OUT/config.toml`: that file loads from
/// anywhere, plans the same passes as the config it came from, and runs to the same
/// output.
#[test]
fn a_runs_written_config_loads_plans_and_runs_again() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    run_ok(&first, &[]);
    // Read from another folder: every path in it is resolved.
    let copy = tmp.path().join("elsewhere").join("config.toml");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(first.join("config.toml"), &copy).unwrap();
    let plan = |config: &Path| {
        let out = common::ok(corpus().arg("plan").arg(config).arg("--json"));
        String::from_utf8(out.stdout).unwrap()
    };
    let passes = plan(&config());
    assert!(passes.contains("\"tokenize\""), "{passes}");
    assert_eq!(plan(&copy), passes);
    let second = tmp.path().join("second");
    common::ok(
        corpus()
            .arg("run")
            .arg(&copy)
            .args(["-q", "-o"])
            .arg(&second),
    );
    let (a, b) = (tree(&first), tree(&second));
    assert!(a.iter().any(|(name, _)| name.starts_with("tokens/")));
    assert_eq!(
        a.iter().map(|f| &f.0).collect::<Vec<_>>(),
        b.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs");
    }
}
