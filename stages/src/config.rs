//! Stage configuration: one tagged enum over every stage kind.

use crate::stage::{AnyStage, StageError};
use serde::{Deserialize, Serialize};

/// How [`build_stage`] builds one stage kind: with the module's `build(&Config)`, its
/// stage boxed as the named [`AnyStage`] variant (`Doc`, `Batch`), or, for a stage built
/// some other way, with the module's own `stage(&Config)`.
macro_rules! build_one {
    ($config:ident, $module:ident) => {
        crate::$module::stage($config)
    };
    ($config:ident, $module:ident, $wrap:ident) => {
        Ok(AnyStage::$wrap(Box::new(crate::$module::build($config)?)))
    };
}

/// The registry of stage kinds: one line per stage module (variant => module, in the
/// order `corpus stages` lists them), with `: Doc` or `: Batch` where the module's
/// `build` gives a per-document or a batch stage. Each module has `KIND`, `ABOUT`,
/// `FIELDS`, a `Config` (serde, `Default`) and `build(&Config)` or else
/// `stage(&Config)`; from this list come the [`StageConfig`] enum, [`KINDS`], the
/// deserializer, [`build_stage`] and the catalog. Adding a stage is its module and one
/// line here.
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $module:ident $(: $wrap:ident)?,)*) => {
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
            $($(#[$doc])* $variant(crate::$module::Config),)*
        }

        /// Every stage kind, in the order `corpus stages` lists them.
        pub const KINDS: &[&str] = &[$(crate::$module::KIND,)*];

        impl StageConfig {
            /// Every stage kind with its default configuration, in the order of [`KINDS`].
            pub fn all_defaults() -> Vec<StageConfig> {
                vec![$(StageConfig::$variant(Default::default()),)*]
            }

            /// The stage kind of this configuration.
            pub fn kind(&self) -> &'static str {
                match self {
                    $(StageConfig::$variant(_) => crate::$module::KIND,)*
                }
            }

            /// The stage's word in statistics and `dropped/`: its kind, except that
            /// `minhash_dedup` run as exact dedup (`method` other than `minhash`, as
            /// the passes of a scheduled plan run `exact_dedup`) is `exact_dedup` there,
            /// as in one process.
            pub fn name(&self) -> &'static str {
                match self {
                    StageConfig::MinhashDedup(c) if c.method != crate::minhash::Method::Minhash => {
                        crate::exact_dedup::KIND
                    }
                    other => other.kind(),
                }
            }

            /// The configuration of stage `kind` from its fields (an error names the
            /// field, or the unknown kind).
            fn parse<E: serde::de::Error>(kind: &str, fields: toml::Value) -> Result<Self, E> {
                $(if kind == crate::$module::KIND {
                    return Ok(StageConfig::$variant(typed(kind, fields)?));
                })*
                Err(E::custom(format!(
                    "unknown stage kind `{kind}`, expected one of {KINDS:?}"
                )))
            }

            /// The stage's line and field documentation for the catalog.
            pub(crate) fn describe(&self) -> crate::catalog::StageInfo {
                match self {
                    $(StageConfig::$variant(_) => crate::catalog::describe::<crate::$module::Config>(
                        crate::$module::KIND,
                        crate::$module::ABOUT,
                        crate::$module::FIELDS,
                    ),)*
                }
            }
        }

        /// Builds the stage a configuration describes, checking values serde cannot check.
        pub fn build_stage(config: &StageConfig) -> Result<AnyStage, StageError> {
            match config {
                $(StageConfig::$variant(c) => build_one!(c, $module $(, $wrap)?),)*
            }
        }
    };
}

registry! {
    /// Drop documents by text length.
    Length => length: Doc,
    /// Extract the main text from raw HTML.
    Extract => extract: Doc,
    /// Identify the language and filter by it.
    Langid => langid: Doc,
    /// Unicode normalization and whitespace cleanup.
    Normalize => normalize: Doc,
    /// Drop documents whose text (or URL) was seen earlier in the input (a barrier).
    ExactDedup => exact_dedup,
    /// MinHash/LSH near-duplicate dedup (a barrier).
    MinhashDedup => minhash,
    /// Rule-based quality filters (Gopher, repetition, C4, FineWeb).
    Quality => quality: Doc,
    /// URL/domain and word blocklists.
    Safety => safety: Doc,
    /// ONNX text classifier (quality or safety score).
    Classifier => classifier: Batch,
    /// Repeat or thin documents by per-source weights.
    Upsample => upsample: Doc,
    /// Drop documents sharing n-grams with benchmark test sets.
    Decontam => decontam: Doc,
    /// Tokenize and pack the kept documents into training shards (the last stage; a
    /// pass of its own once the run is complete).
    Tokenize => tokenize,
}

/// A stage's fields as its typed configuration. Re-parsing the table as text makes
/// toml's error show the offending line, so a type error names its field.
fn typed<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    kind: &str,
    v: toml::Value,
) -> Result<T, E> {
    let text = toml::to_string(&v).map_err(E::custom)?;
    toml::from_str(&text).map_err(|e: toml::de::Error| {
        E::custom(format!("stage `{kind}`: {}", e.to_string().trim_end()))
    })
}

impl StageConfig {
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
}

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
        StageConfig::parse(&kind, toml::Value::Table(table))
    }
}

/// The one fingerprint of settings: a 64-bit hash of their canonical text (a run's
/// resolved config, a barrier's work-file settings, a decontamination index's n-gram
/// rules, a tokenizer's encoding). Whatever must be redone when settings change compares
/// these; the text, not the hash function, says what counts.
pub fn fingerprint(settings: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(settings.as_bytes())
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
