//! The integration tests, one module per area, linked into one test binary: each binary
//! links every dependency, so fifteen of them cost CI minutes of linking and compiling
//! for nothing (`cargo test --test integration slurm::` runs one area).

mod common;

mod classifier;
mod decontam;
mod e2e;
mod extract;
mod fuzzy;
mod io_formats;
mod langid;
mod object_store;
mod pipeline;
mod reflm;
mod slurm;
mod tokens;
mod unicode;
mod vocab;
mod warc_bad_input;
