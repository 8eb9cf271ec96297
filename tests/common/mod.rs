//! Helpers shared by the integration tests.

use std::io::Read;
use std::path::Path;

/// The text of a gzip file (all members), as the JSONL sink writes them.
pub fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}
