//! Stage configuration: one tagged enum over every stage kind.

use crate::stage::{AnyStage, StageError};
use serde::{Deserialize, Serialize};

/// The configuration of one stage, as a TOML table with a `kind` key:
///
/// ```toml
/// [[stages]]
/// kind = "length"
/// min_chars = 200
/// ```
///
/// The module name, the `kind` and the name in the statistics are the same word.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StageConfig {
    /// Drop documents by text length.
    Length(crate::length::Config),
    /// Extract the main text from raw HTML.
    Extract(crate::extract::Config),
    /// Identify the language and filter by it.
    Langid(crate::langid::Config),
    /// Unicode normalization and whitespace cleanup.
    Normalize(crate::normalize::Config),
    /// Drop documents whose text (or URL) was seen earlier in the input.
    ExactDedup(crate::exact_dedup::Config),
    /// MinHash/LSH near-duplicate dedup (in a run), or applying the decisions of
    /// `corpus dedup --fuzzy` passes.
    MinhashDedup(crate::minhash::Config),
    /// Rule-based quality filters (Gopher, repetition, C4, FineWeb).
    Quality(crate::quality::Config),
    /// URL/domain and word blocklists.
    Safety(crate::safety::Config),
    /// ONNX text classifier (quality or safety score).
    Classifier(crate::classifier::Config),
    /// Drop documents sharing n-grams with benchmark test sets.
    Decontam(crate::decontam::Config),
    /// Repeat or thin documents by per-source weights.
    Upsample(crate::upsample::Config),
    /// Tokenize and pack the kept documents into training shards (the last stage; a
    /// pass of its own once the run is complete).
    Tokenize(crate::tokenize::Config),
}

impl StageConfig {
    /// Every stage kind with its default configuration, in the order of [`KINDS`].
    pub fn all_defaults() -> Vec<StageConfig> {
        vec![
            StageConfig::Length(Default::default()),
            StageConfig::Extract(Default::default()),
            StageConfig::Langid(Default::default()),
            StageConfig::Normalize(Default::default()),
            StageConfig::ExactDedup(Default::default()),
            StageConfig::MinhashDedup(Default::default()),
            StageConfig::Quality(Default::default()),
            StageConfig::Safety(Default::default()),
            StageConfig::Classifier(Default::default()),
            StageConfig::Upsample(Default::default()),
            StageConfig::Decontam(Default::default()),
            StageConfig::Tokenize(Default::default()),
        ]
    }

    /// Makes the relative file paths of the configuration (blocklists, benchmark sets)
    /// relative to `base`, the folder of the config file, as input paths are.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        let fix = |p: &mut std::path::PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match self {
            StageConfig::Safety(c) => {
                for p in [
                    &mut c.domains,
                    &mut c.urls,
                    &mut c.banned_words,
                    &mut c.soft_banned_words,
                    &mut c.banned_subwords,
                ]
                .into_iter()
                .flatten()
                {
                    fix(p);
                }
                c.text_word_lists.iter_mut().for_each(fix);
            }
            StageConfig::Decontam(c) => {
                c.benchmarks.iter_mut().for_each(|b| fix(&mut b.path));
                if let Some(p) = &mut c.index {
                    fix(p);
                }
            }
            StageConfig::Classifier(c) => {
                if !c.model.as_os_str().is_empty() {
                    fix(&mut c.model);
                }
                if let Some(l) = &mut c.library {
                    fix(l);
                }
            }
            StageConfig::MinhashDedup(c) if !c.work_dir.as_os_str().is_empty() => {
                fix(&mut c.work_dir)
            }
            StageConfig::Tokenize(c) if !c.vocab.starts_with("cl100k") => {
                let mut p = std::path::PathBuf::from(&c.vocab);
                fix(&mut p);
                c.vocab = p.to_string_lossy().into_owned();
            }
            StageConfig::Upsample(c) => {
                if let Some(v) = c.vocab.as_mut().filter(|v| !v.starts_with("cl100k")) {
                    let mut p = std::path::PathBuf::from(&*v);
                    fix(&mut p);
                    *v = p.to_string_lossy().into_owned();
                }
            }
            _ => {}
        }
    }

    /// The stage kind of this configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            StageConfig::Length(_) => crate::length::KIND,
            StageConfig::Extract(_) => crate::extract::KIND,
            StageConfig::Langid(_) => crate::langid::KIND,
            StageConfig::Normalize(_) => crate::normalize::KIND,
            StageConfig::ExactDedup(_) => crate::exact_dedup::KIND,
            StageConfig::MinhashDedup(_) => crate::minhash::KIND,
            StageConfig::Quality(_) => crate::quality::KIND,
            StageConfig::Safety(_) => crate::safety::KIND,
            StageConfig::Classifier(_) => crate::classifier::KIND,
            StageConfig::Decontam(_) => crate::decontam::KIND,
            StageConfig::Upsample(_) => crate::upsample::KIND,
            StageConfig::Tokenize(_) => crate::tokenize::KIND,
        }
    }
}

/// Every stage kind, in the order `corpus stages` lists them.
pub const KINDS: &[&str] = &[
    crate::length::KIND,
    crate::extract::KIND,
    crate::langid::KIND,
    crate::normalize::KIND,
    crate::exact_dedup::KIND,
    crate::minhash::KIND,
    crate::quality::KIND,
    crate::safety::KIND,
    crate::classifier::KIND,
    crate::upsample::KIND,
    crate::decontam::KIND,
    crate::tokenize::KIND,
];

// Deserialized by hand rather than with serde's internally tagged enums: those buffer
// the table and lose the field name in type errors ("expected u64" without saying
// where); going through a toml table keeps it.
impl<'de> Deserialize<'de> for StageConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => k,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "`kind` must be a string, not {other}"
                )));
            }
            None => {
                return Err(D::Error::custom(format!(
                    "a stage needs a `kind`, one of {KINDS:?}"
                )));
            }
        };
        let fields = toml::Value::Table(table);
        fn typed<T: serde::de::DeserializeOwned, E: Error>(
            kind: &str,
            v: toml::Value,
        ) -> Result<T, E> {
            // Re-parsing the table as text makes toml's error show the offending line,
            // so a type error names its field.
            let text = toml::to_string(&v).map_err(E::custom)?;
            toml::from_str(&text).map_err(|e: toml::de::Error| {
                E::custom(format!("stage `{kind}`: {}", e.to_string().trim_end()))
            })
        }
        match kind.as_str() {
            crate::length::KIND => Ok(StageConfig::Length(typed(&kind, fields)?)),
            crate::extract::KIND => Ok(StageConfig::Extract(typed(&kind, fields)?)),
            crate::langid::KIND => Ok(StageConfig::Langid(typed(&kind, fields)?)),
            crate::normalize::KIND => Ok(StageConfig::Normalize(typed(&kind, fields)?)),
            crate::exact_dedup::KIND => Ok(StageConfig::ExactDedup(typed(&kind, fields)?)),
            crate::minhash::KIND => Ok(StageConfig::MinhashDedup(typed(&kind, fields)?)),
            crate::quality::KIND => Ok(StageConfig::Quality(typed(&kind, fields)?)),
            crate::safety::KIND => Ok(StageConfig::Safety(typed(&kind, fields)?)),
            crate::classifier::KIND => Ok(StageConfig::Classifier(typed(&kind, fields)?)),
            crate::decontam::KIND => Ok(StageConfig::Decontam(typed(&kind, fields)?)),
            crate::upsample::KIND => Ok(StageConfig::Upsample(typed(&kind, fields)?)),
            crate::tokenize::KIND => Ok(StageConfig::Tokenize(typed(&kind, fields)?)),
            other => Err(D::Error::custom(format!(
                "unknown stage kind `{other}`, expected one of {KINDS:?}"
            ))),
        }
    }
}

/// Builds the stage a configuration describes, checking values serde cannot check.
pub fn build_stage(config: &StageConfig) -> Result<AnyStage, StageError> {
    Ok(match config {
        StageConfig::Length(c) => AnyStage::Doc(Box::new(crate::length::build(c)?)),
        StageConfig::Extract(c) => AnyStage::Doc(Box::new(crate::extract::build(c)?)),
        StageConfig::Langid(c) => AnyStage::Doc(Box::new(crate::langid::build(c)?)),
        StageConfig::Normalize(c) => AnyStage::Doc(Box::new(crate::normalize::build(c)?)),
        StageConfig::ExactDedup(c) => AnyStage::Ordered(crate::exact_dedup::build(c)?),
        StageConfig::MinhashDedup(c) => AnyStage::Doc(Box::new(crate::minhash::filter::build(c)?)),
        StageConfig::Quality(c) => AnyStage::Doc(Box::new(crate::quality::build(c)?)),
        StageConfig::Safety(c) => AnyStage::Doc(Box::new(crate::safety::build(c)?)),
        StageConfig::Classifier(c) => AnyStage::Batch(Box::new(crate::classifier::build(c)?)),
        StageConfig::Decontam(c) => AnyStage::Doc(Box::new(crate::decontam::build(c)?)),
        StageConfig::Upsample(c) => AnyStage::Doc(Box::new(crate::upsample::build(c)?)),
        StageConfig::Tokenize(_) => {
            return Err(StageError::Config {
                kind: crate::tokenize::KIND,
                message: "tokenize is a pass of its own after the per-document stages; \
                          the pipeline's plan runs it"
                    .into(),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kind_and_unknown_field_are_named() {
        let err = toml::from_str::<StageConfig>("kind = \"lenght\"").unwrap_err();
        assert!(err.to_string().contains("lenght"), "{err}");
        let err = toml::from_str::<StageConfig>("kind = \"length\"\nmin_char = 3").unwrap_err();
        assert!(err.to_string().contains("min_char"), "{err}");
    }

    #[test]
    fn kinds_list_every_variant_in_order() {
        let kinds: Vec<&str> = StageConfig::all_defaults()
            .iter()
            .map(|c| c.kind())
            .collect();
        assert_eq!(kinds, KINDS);
    }

    #[test]
    fn every_kind_round_trips_under_its_own_name() {
        // A run writes its resolved config (config.toml); every stage kind must load
        // again under the name it is written with, which is also its `kind` word.
        for config in StageConfig::all_defaults() {
            let text = toml::to_string(&config).unwrap();
            assert!(
                text.contains(&format!("kind = \"{}\"", config.kind())),
                "{}: written as {text}",
                config.kind()
            );
            let again: StageConfig =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", config.kind()));
            assert_eq!(again, config);
        }
    }

    #[test]
    fn round_trip() {
        let c: StageConfig = toml::from_str("kind = \"length\"\nmin_chars = 7").unwrap();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<StageConfig>(&text).unwrap(), c);
        assert_eq!(c.kind(), "length");
    }
}
