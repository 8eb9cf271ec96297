//! Helpers shared by the integration tests (each test binary uses some of them).
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The text of a gzip file (all members), as the JSONL sink writes them.
pub fn gunzip(path: &Path) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Runs a command that must succeed; a failure shows the command and its stderr.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes `contents` to file `name` in `dir` and returns its path.
pub fn write_file(dir: &Path, name: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// The pipeline's unit-test helpers (`assert_mentions`), shared rather than copied.
#[path = "../../pipeline/src/testing.rs"]
pub mod testing;
