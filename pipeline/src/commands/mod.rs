//! The logic of subcommands that are not a pipeline run, kept out of the binary so that
//! tests and benchmarks call it directly.

pub mod export;
pub mod langid;
pub mod pack;
pub mod reference;
pub mod tokens;
pub mod vocab;
