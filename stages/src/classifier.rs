//! `classifier`: an ONNX text classifier (the shipped quality or safety model, or your
//! own with the same inputs) run in batches with `ort`; see `corpus_models::scorer`.
//!
//! The score goes into `scores.quality` or `scores.safety` (the `score` field). With
//! `mode = "drop"` a quality score below `threshold` drops the document with reason
//! `quality_model_low`, and a safety score at or above `threshold` with reason
//! `unsafe_model`; `mode = "annotate"` keeps it and adds `classifier/<reason>` to
//! `scores.flags`; `mode = "off"` does nothing. The score is written in both modes.
//!
//! Backends: `tract` (pure Rust, the default) or `onnxruntime` with `library` the path
//! of a `libonnxruntime.so` (ONNX Runtime 1.24 or newer). One process runs one backend.

use crate::document::Document;
use crate::quality::Mode;
use crate::stage::{BatchStage, Measure, Reason, StageCx, StageError, Verdict};
use corpus_models::scorer::{Backend, Scorer};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The stage kind.
pub const KIND: &str = "classifier";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "ONNX text classifier (shipped quality or safety model) run in batches with ort on tract or ONNX Runtime";

/// Drop reason of a quality score under the threshold.
pub const LOW_QUALITY: Reason = Reason::new("quality_model_low");
/// Drop reason of a safety score at or over the threshold.
pub const UNSAFE: Reason = Reason::new("unsafe_model");

/// Which score a classifier produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreKind {
    /// Probability of reference-like text (higher is better); written to `scores.quality`.
    Quality,
    /// Probability of unsafe text; written to `scores.safety`.
    Safety,
}

/// The inference backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// `ort-tract`, pure Rust.
    Tract,
    /// ONNX Runtime loaded from `library`.
    Onnxruntime,
}

/// Configuration of the `classifier` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which score the model gives and where it goes.
    pub score: ScoreKind,
    /// Model file; empty: the shipped model for `score` (models/assets/).
    pub model: PathBuf,
    /// Decision threshold on the score.
    pub threshold: f32,
    /// drop, annotate or off.
    pub mode: Mode,
    /// Documents per inference call.
    pub batch_size: usize,
    /// tract or onnxruntime.
    pub backend: BackendKind,
    /// Path of libonnxruntime for `backend = "onnxruntime"`.
    pub library: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            score: ScoreKind::Quality,
            model: PathBuf::new(),
            threshold: 0.5,
            mode: Mode::Drop,
            batch_size: 64,
            backend: BackendKind::Tract,
            library: None,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "score",
        doc: "quality (drop below threshold) or safety (drop at or above threshold); picks the shipped model and the scores field",
    },
    crate::FieldDoc {
        name: "model",
        doc: "ONNX model path (inputs indices/values, output score); empty: the shipped models/assets/<score>.onnx",
    },
    crate::FieldDoc {
        name: "threshold",
        doc: "decision threshold on the score, in 0..=1",
    },
    crate::FieldDoc {
        name: "mode",
        doc: "drop, annotate (flag classifier/<reason>, keep) or off; the score is written unless off",
    },
    crate::FieldDoc {
        name: "batch_size",
        doc: "documents per inference call",
    },
    crate::FieldDoc {
        name: "backend",
        doc: "tract (pure Rust) or onnxruntime (needs library, ONNX Runtime >= 1.24)",
    },
    crate::FieldDoc {
        name: "library",
        doc: "path of libonnxruntime.so.* for backend onnxruntime (the PyPI wheel ships onnxruntime/capi/libonnxruntime.so.*)",
    },
];

/// The built stage.
#[derive(Debug)]
pub struct Classifier {
    config: Config,
    scorer: Option<Scorer>,
}

impl Config {
    /// The model file this configuration runs.
    pub fn model_path(&self) -> PathBuf {
        if !self.model.as_os_str().is_empty() {
            return self.model.clone();
        }
        corpus_models::scorer::shipped_model(match self.score {
            ScoreKind::Quality => "quality.onnx",
            ScoreKind::Safety => "safety.onnx",
        })
    }
}

/// Builds the stage: loads the model (one session per core) on the backend.
pub fn build(config: &Config) -> Result<Classifier, StageError> {
    let bad = |message: String| StageError::Config {
        kind: KIND,
        message,
    };
    if !(0.0..=1.0).contains(&config.threshold) {
        return Err(bad(format!(
            "threshold {} is not in 0..=1",
            config.threshold
        )));
    }
    if config.batch_size == 0 {
        return Err(bad("batch_size must be at least 1".into()));
    }
    if config.mode == Mode::Off {
        return Ok(Classifier {
            config: config.clone(),
            scorer: None,
        });
    }
    let backend = match config.backend {
        BackendKind::Tract => Backend::Tract,
        BackendKind::Onnxruntime => Backend::OnnxRuntime {
            library: config.library.clone().ok_or_else(|| {
                bad("backend = \"onnxruntime\" needs `library`, the path of libonnxruntime".into())
            })?,
        },
    };
    let sessions = std::thread::available_parallelism().map_or(1, |n| n.get());
    let scorer =
        Scorer::load(&config.model_path(), &backend, sessions).map_err(|e| bad(e.to_string()))?;
    Ok(Classifier {
        config: config.clone(),
        scorer: Some(scorer),
    })
}

impl BatchStage for Classifier {
    fn uses_derived(&self) -> bool {
        self.scorer.is_some()
    }

    fn process_batch(
        &self,
        docs: &mut [Document],
        verdicts: &mut [Verdict],
        cx: &mut StageCx,
    ) -> Result<(), StageError> {
        let Some(scorer) = &self.scorer else {
            return Ok(());
        };
        let c = &self.config;
        for (docs, verdicts) in docs
            .chunks_mut(c.batch_size)
            .zip(verdicts.chunks_mut(c.batch_size))
        {
            // Computed once per document for every classifier of the run.
            let feats: Vec<_> = docs.iter_mut().map(|d| d.features()).collect();
            let scores = scorer
                .score(&feats)
                .map_err(|e| StageError::Fatal(e.to_string()))?;
            cx.count("scored", docs.len() as u64);
            for ((doc, verdict), score) in docs.iter_mut().zip(verdicts.iter_mut()).zip(scores) {
                let (value, threshold) = (f64::from(score), f64::from(c.threshold));
                let failed = match c.score {
                    ScoreKind::Quality => {
                        doc.scores.quality = Some(score);
                        Measure::below("quality score", value, threshold)
                            .map(|m| m.fails(LOW_QUALITY.code()))
                    }
                    ScoreKind::Safety => {
                        doc.scores.safety = Some(score);
                        Measure::reaches("safety score", value, threshold)
                            .map(|m| m.fails(UNSAFE.code()))
                    }
                };
                if let Some(failure) = failed {
                    match c.mode {
                        Mode::Drop => *verdict = failure.drop(doc),
                        Mode::Annotate => {
                            cx.count("annotated", 1);
                            doc.scores.flags.push(format!("{KIND}/{}", failure.reason));
                        }
                        Mode::Off => {}
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_typos() {
        let c: crate::StageConfig =
            toml::from_str("kind = \"classifier\"\nscore = \"safety\"\nmode = \"annotate\"")
                .unwrap();
        let crate::StageConfig::Classifier(c) = c else {
            panic!("not classifier")
        };
        assert_eq!(c.score, ScoreKind::Safety);
        assert_eq!(c.mode, Mode::Annotate);
        assert!(c.model_path().ends_with("models/assets/safety.onnx"));
        let err = toml::from_str::<crate::StageConfig>("kind = \"classifier\"\nthreshhold = 1")
            .unwrap_err();
        assert!(err.to_string().contains("threshhold"), "{err}");
    }

    #[test]
    fn bad_values_are_config_errors() {
        let err = build(&Config {
            threshold: 1.5,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("threshold"), "{err}");
        let err = build(&Config {
            backend: BackendKind::Onnxruntime,
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("library"), "{err}");
        let err = build(&Config {
            model: "/nonexistent/model.onnx".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
    }
}
