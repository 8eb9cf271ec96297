//! The list of stage kinds with their fields, defaults and documentation, for
//! `corpus stages`.

use crate::config::StageConfig;
use serde::Serialize;

/// Documentation of one configuration field.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    /// Field name as written in TOML.
    pub name: &'static str,
    /// What the field does, with its unit.
    pub doc: &'static str,
}

/// One stage kind, described.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    /// The `kind` value.
    pub kind: &'static str,
    /// One line on what the stage does.
    pub about: &'static str,
    /// Fields: name, default value (as TOML), documentation.
    pub fields: Vec<(&'static str, String, &'static str)>,
}

fn describe<C: Default + Serialize>(
    kind: &'static str,
    about: &'static str,
    fields: &'static [FieldDoc],
) -> StageInfo {
    let defaults = toml::Table::try_from(C::default()).unwrap_or_default();
    StageInfo {
        kind,
        about,
        fields: fields
            .iter()
            .map(|f| {
                let default = defaults
                    .get(f.name)
                    .map_or_else(|| "none".to_string(), |v| v.to_string());
                (f.name, default, f.doc)
            })
            .collect(),
    }
}

/// Every stage kind this build knows.
pub fn catalog() -> Vec<StageInfo> {
    // Matching on StageConfig keeps this in step with the enum: a new variant fails to
    // compile here until it is described.
    StageConfig::all_defaults()
        .iter()
        .map(|k| match k {
            StageConfig::Length(_) => describe::<crate::length::Config>(
                crate::length::KIND,
                "drop documents whose text is empty, too short or too long (in characters)",
                crate::length::FIELDS,
            ),
            StageConfig::Extract(_) => describe::<crate::extract::Config>(
                crate::extract::KIND,
                "extract the main text, title and metadata from raw HTML (charset detection, boilerplate removal)",
                crate::extract::FIELDS,
            ),
            StageConfig::Langid(_) => describe::<crate::langid::Config>(
                crate::langid::KIND,
                "identify the document language (whatlang + script rules) and keep wanted languages",
                crate::langid::FIELDS,
            ),
            StageConfig::Normalize(_) => describe::<crate::normalize::Config>(
                crate::normalize::KIND,
                "Unicode NFC/NFKC, line and space cleanup, invisible characters removed",
                crate::normalize::FIELDS,
            ),
            StageConfig::ExactDedup(_) => describe::<crate::exact_dedup::Config>(
                crate::exact_dedup::KIND,
                "drop documents whose text (or URL) was seen earlier; the first occurrence wins",
                crate::exact_dedup::FIELDS,
            ),
            StageConfig::MinhashDedup(_) => describe::<crate::minhash::Config>(
                crate::minhash::KIND,
                "MinHash/LSH near-duplicate dedup: in memory at this point of a run, or applying a multi-pass `corpus dedup --fuzzy` job's decisions (drop or annotate non-survivors)",
                crate::minhash::FIELDS,
            ),
            StageConfig::Quality(_) => describe::<crate::quality::Config>(
                crate::quality::KIND,
                "rule-based quality filters: Gopher quality and repetition, C4, FineWeb (drop, annotate or off per group)",
                crate::quality::FIELDS,
            ),
            StageConfig::Safety(_) => describe::<crate::safety::Config>(
                crate::safety::KIND,
                "URL/domain blocklists with FineWeb's hard/soft-ban logic and word blocklists over the text",
                crate::safety::FIELDS,
            ),
            StageConfig::Classifier(_) => describe::<crate::classifier::Config>(
                crate::classifier::KIND,
                "ONNX text classifier (shipped quality or safety model) run in batches with ort on tract or ONNX Runtime",
                crate::classifier::FIELDS,
            ),
            StageConfig::Upsample(_) => describe::<crate::upsample::Config>(
                crate::upsample::KIND,
                "repeat or thin documents by per-source weights, deterministically by document id",
                crate::upsample::FIELDS,
            ),
            StageConfig::Decontam(_) => describe::<crate::decontam::Config>(
                crate::decontam::KIND,
                "drop documents sharing 13-grams with benchmark test sets (GSM8K, MMLU, HumanEval, CMMLU...)",
                crate::decontam::FIELDS,
            ),
            StageConfig::Tokenize(_) => describe::<crate::tokenize::Config>(
                crate::tokenize::KIND,
                "tokenize and pack the kept documents into shuffled training sequences (last stage; a pass of its own after the run)",
                crate::tokenize::FIELDS,
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_serialized_field_is_documented_and_every_documented_field_exists() {
        let kinds = StageConfig::all_defaults();
        assert_eq!(catalog().len(), kinds.len());
        for (info, config) in catalog().iter().zip(kinds) {
            assert_eq!(info.kind, config.kind());
            let mut table = toml::Table::try_from(&config).unwrap();
            table.remove("kind");
            let documented: Vec<&str> = info.fields.iter().map(|f| f.0).collect();
            for key in table.keys() {
                assert!(
                    documented.contains(&key.as_str()),
                    "{}: {key} undocumented",
                    info.kind
                );
            }
            for name in documented {
                // A documented field must be accepted by the config parser.
                let mut probe = toml::Table::new();
                probe.insert("kind".into(), info.kind.into());
                if let Some(v) = table.get(name) {
                    probe.insert(name.into(), v.clone());
                    toml::Value::Table(probe)
                        .try_into::<StageConfig>()
                        .unwrap_or_else(|e| panic!("{}: {name}: {e}", info.kind));
                }
            }
        }
    }
}
