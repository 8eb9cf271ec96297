//! The ONNX classifiers: Rust features + the shipped models give the scores Python's
//! onnxruntime gives (tests/data/classifier/sample.jsonl, written by
//! models/recipes/train_classifiers.py), on tract and on ONNX Runtime, and bad model or
//! library paths are clear errors.
//!
//! The ONNX Runtime path needs a libonnxruntime (ONNX Runtime >= 1.24) named by
//! `CORPUS_ONNXRUNTIME_LIB`; `.ci/run` installs the PyPI wheel and sets it. Without it
//! the test skips with a notice, except under `CI=true`, where it fails.

use crate::common;
use common::{testing::assert_mentions, write_file};

use corpus_models::scorer::{Backend, Scorer, ScorerError, model_path};
use corpus_stages::{Document, StageConfig, StageCx, Verdict, build_stage};
use std::path::{Path, PathBuf};
use std::process::Command;

const TOLERANCE: f32 = 1e-5;

struct Sample {
    model: String,
    text: String,
    score: f32,
}

fn sample() -> Vec<Sample> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/classifier/sample.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sample {
                model: v["model"].as_str().unwrap().to_string(),
                text: v["text"].as_str().unwrap().to_string(),
                score: v["score"].as_f64().unwrap() as f32,
            }
        })
        .collect()
}

fn texts_of(sample: &[Sample], model: &str) -> (Vec<String>, Vec<f32>) {
    sample
        .iter()
        .filter(|s| s.model == model)
        .map(|s| (s.text.clone(), s.score))
        .unzip()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOLERANCE,
            "{what}: document {i}: {g} vs {w}"
        );
    }
}

#[test]
fn tract_matches_python_onnxruntime_on_rust_features() {
    let sample = sample();
    for model in ["quality", "safety"] {
        let (texts, want) = texts_of(&sample, model);
        assert!(texts.len() >= 20, "sample too small for {model}");
        let scorer = Scorer::load(&model_path(model), &Backend::Tract, 2).unwrap();
        // Whole sample as one batch, then odd-sized batches: padding must not matter.
        assert_close(&scorer.score_texts(&texts).unwrap(), &want, model);
        let mut got = Vec::new();
        for chunk in texts.chunks(7) {
            got.extend(scorer.score_texts(chunk).unwrap());
        }
        assert_close(&got, &want, model);
        // The scores are informative: not all on one side of 0.5.
        assert!(want.iter().any(|&s| s > 0.5) && want.iter().any(|&s| s < 0.5));
    }
}

fn corpus_score(input: &Path, model: &str, backend: &[&str]) -> Result<Vec<f32>, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["scorer", "score", "--model", model, "--batch-size", "5"])
        .args(backend)
        .arg(input)
        .env_remove("CORPUS_ONNXRUNTIME_LIB")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect())
}

fn write_texts(dir: &Path, texts: &[String]) -> PathBuf {
    let path = dir.join("texts.jsonl");
    let lines: Vec<String> = texts
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn onnxruntime_and_tract_give_the_same_scores() {
    let lib = match std::env::var_os("CORPUS_ONNXRUNTIME_LIB") {
        Some(lib) if !lib.is_empty() => PathBuf::from(lib),
        _ => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "CI=true but CORPUS_ONNXRUNTIME_LIB is not set: the ONNX Runtime path is untested"
                );
            }
            eprintln!(
                "NOTICE: skipping the ONNX Runtime comparison: set CORPUS_ONNXRUNTIME_LIB to a libonnxruntime.so (pip install onnxruntime)"
            );
            return;
        }
    };
    let sample = sample();
    let dir = tempfile::tempdir().unwrap();
    for model in ["quality", "safety"] {
        let (texts, want) = texts_of(&sample, model);
        let input = write_texts(dir.path(), &texts);
        // Each backend in its own process: ort's backend is process-wide.
        let tract = corpus_score(&input, model, &["--backend", "tract"]).unwrap();
        let ort = corpus_score(
            &input,
            model,
            &[
                "--backend",
                "onnxruntime",
                "--library",
                lib.to_str().unwrap(),
            ],
        )
        .unwrap();
        assert_close(&ort, &tract, &format!("{model}: onnxruntime vs tract"));
        assert_close(&ort, &want, &format!("{model}: onnxruntime vs python"));
    }
}

#[test]
fn bad_model_and_library_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model.onnx");
    let err = Scorer::load(&missing, &Backend::Tract, 1).unwrap_err();
    assert!(matches!(err, ScorerError::Model { .. }), "{err}");
    assert!(err.to_string().contains("no-such-model.onnx"), "{err}");

    let garbage = write_file(dir.path(), "garbage.onnx", b"this is not a protobuf model");
    let err = Scorer::load(&garbage, &Backend::Tract, 1).unwrap_err();
    assert!(err.to_string().contains("garbage.onnx"), "{err}");

    // In this process another test may already have made tract the backend, so the
    // error is either about the library or about the switch; both name the library.
    let lib = dir.path().join("libonnxruntime.so.1.99.0");
    let err = Scorer::load(
        &model_path("quality"),
        &Backend::OnnxRuntime {
            library: lib.clone(),
        },
        1,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ScorerError::Library { .. } | ScorerError::BackendConflict { .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("libonnxruntime.so.1.99.0"),
        "{err}"
    );

    // Through the command line (a fresh process): exit code 2 and a message naming the
    // file, for a missing library and for a file that is not a library.
    let input = write_texts(dir.path(), &["hello".to_string()]);
    let refused = || {
        let err = corpus_score(
            &input,
            "quality",
            &[
                "--backend",
                "onnxruntime",
                "--library",
                lib.to_str().unwrap(),
            ],
        )
        .unwrap_err();
        assert_mentions(
            &err,
            &[
                "cannot load ONNX Runtime library",
                "libonnxruntime.so.1.99.0",
            ],
        );
    };
    refused();
    std::fs::write(&lib, b"not an ELF file").unwrap();
    refused();
    let err = corpus_score(&input, missing.to_str().unwrap(), &[]).unwrap_err();
    assert!(err.contains("no-such-model.onnx"), "{err}");
}

#[test]
fn stage_scores_in_batches_and_drops_or_annotates() {
    let sample = sample();
    let config: StageConfig =
        toml::from_str("kind = \"classifier\"\nscore = \"safety\"\nbatch_size = 3").unwrap();
    let stage = build_stage(&config).unwrap();
    let (texts, want) = texts_of(&sample, "safety");
    let mut docs: Vec<Document> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("d{i}"), "test", t.as_str()))
        .collect();
    let mut verdicts = vec![Verdict::Keep; docs.len()];
    let mut cx = StageCx::default();
    stage.run(&mut docs, &mut verdicts, &mut cx).unwrap();
    for ((doc, v), w) in docs.iter().zip(&verdicts).zip(&want) {
        let s = doc.scores.safety.unwrap();
        assert!((s - w).abs() <= TOLERANCE);
        let unsafe_ = *v == Verdict::Drop(corpus_stages::classifier::UNSAFE);
        assert_eq!(unsafe_, s >= 0.5, "{s} {v:?}");
    }
    assert_eq!(cx.take_counters()["scored"], docs.len() as u64);

    let config: StageConfig = toml::from_str(
        "kind = \"classifier\"\nscore = \"quality\"\nmode = \"annotate\"\nthreshold = 0.99",
    )
    .unwrap();
    let stage = build_stage(&config).unwrap();
    let mut docs = vec![Document::new("a", "t", "click here buy now!!! best price")];
    let mut verdicts = vec![Verdict::Keep];
    stage
        .run(&mut docs, &mut verdicts, &mut StageCx::default())
        .unwrap();
    assert_eq!(verdicts[0], Verdict::Keep);
    assert!(docs[0].scores.quality.unwrap() < 0.99);
    assert_eq!(docs[0].scores.flags, ["classifier/quality_model_low"]);
}
