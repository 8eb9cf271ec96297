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

/// A stage kind described from its module's `Config` defaults, `ABOUT` and `FIELDS`.
pub(crate) fn describe<C: Default + Serialize>(
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

/// Every stage kind this build knows, from the registry in [`crate::config`].
pub fn catalog() -> Vec<StageInfo> {
    StageConfig::all_defaults()
        .iter()
        .map(StageConfig::describe)
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
