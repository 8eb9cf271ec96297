//! The logic of subcommands that are not a pipeline run, kept out of the binary so that
//! tests and benchmarks call it directly.

pub mod decontam;
pub mod export;
pub mod langid;
pub mod mix;
pub mod pack;
pub mod reference;
pub mod tokens;
pub mod vocab;
