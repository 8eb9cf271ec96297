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
}

impl StageConfig {
    /// The stage kind of this configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            StageConfig::Length(_) => crate::length::KIND,
            StageConfig::Extract(_) => crate::extract::KIND,
        }
    }
}

/// Every stage kind, in the order `corpus stages` lists them.
pub const KINDS: &[&str] = &[crate::length::KIND, crate::extract::KIND];

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
    fn round_trip() {
        let c: StageConfig = toml::from_str("kind = \"length\"\nmin_chars = 7").unwrap();
        let text = toml::to_string(&c).unwrap();
        assert_eq!(toml::from_str::<StageConfig>(&text).unwrap(), c);
        assert_eq!(c.kind(), "length");
    }
}
