//! The logic of subcommands that are not a pipeline run, kept out of the binary so that
//! tests and benchmarks call it directly.

pub mod decontam;
pub mod dedup;
pub mod export;
pub mod langid;
pub mod mix;
pub mod pack;
pub mod reference;
pub mod run;
pub mod sample;
pub mod scorer;
pub mod tokens;
pub mod vocab;

/// What `corpus stages` prints: each stage kind with its fields and defaults, as text
/// or (with `json`) as the JSON of [`corpus_stages::catalog`].
pub fn stages_text(json: bool) -> String {
    let catalog = corpus_stages::catalog();
    if json {
        return serde_json::to_string_pretty(&catalog).expect("the catalog serializes") + "\n";
    }
    let mut out = String::new();
    for info in catalog {
        out += &format!("{}: {}\n", info.kind, info.about);
        for (name, default, doc) in info.fields {
            out += &format!("    {name} = {default}\n        {doc}\n");
        }
    }
    out
}
