//! File plumbing every crate of the workspace shares (this is the lowest of them):
//! compression told by a file's first bytes, gzip-or-plain readers, and files that
//! appear under their final name only when complete. The pipeline's `corpus::io`
//! re-exports these and adds zstd and remote inputs.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Compression of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    None,
    /// gzip, one or several members.
    Gzip,
    /// Zstandard, one or several frames.
    Zstd,
}

impl Compression {
    /// Tells the compression from the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// `reader` decompressed (all members) when its first bytes say gzip, else as it is:
/// for small inputs (lists, benchmarks) that may be stored either way.
pub fn gunzip_if_gzip<'a, R: BufRead + Send + 'a>(
    mut reader: R,
) -> io::Result<Box<dyn BufRead + Send + 'a>> {
    Ok(match Compression::sniff(reader.fill_buf()?) {
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        _ => Box::new(reader),
    })
}

/// A file written under a temporary name in the target directory and renamed to its
/// final name by [`AtomicFile::commit`]. Dropped without commit, it removes the
/// temporary file, so a failed run leaves nothing under the final name (a killed run
/// leaves a `.tmp` file, which the next run removes).
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    committed: bool,
}

/// Marker in the names of temporary files, used to find leftovers of killed runs.
pub const TMP_MARKER: &str = ".tmp-";

impl AtomicFile {
    /// Reserves `target`; the caller writes to [`AtomicFile::tmp_path`].
    pub fn new(target: &Path) -> AtomicFile {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Process id, a per-process counter and the clock's nanoseconds: unique among
        // this process's files, and unlikely to meet a task on another machine writing
        // a shared file (stats.json) into the same directory at the same time.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = target.with_file_name(format!(
            ".{name}{TMP_MARKER}{}-{n}-{nanos}",
            std::process::id()
        ));
        AtomicFile {
            tmp,
            target: target.to_path_buf(),
            committed: false,
        }
    }

    /// Where to write.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// The final name.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the written file to its final name (fsync'd first, so a crash after the
    /// rename cannot leave a short file under the final name).
    pub fn commit(mut self) -> io::Result<()> {
        File::open(&self.tmp)?.sync_all()?;
        std::fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        Ok(())
    }

    /// Writes `bytes` to `target` atomically.
    pub fn write_all(target: &Path, bytes: &[u8]) -> io::Result<()> {
        let file = AtomicFile::new(target);
        let mut f = File::create(file.tmp_path())?;
        f.write_all(bytes)?;
        drop(f);
        file.commit()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_or_plain_reads_alike() {
        let text = b"one\ntwo\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        let gz = gz.finish().unwrap();
        for bytes in [&text[..], &gz[..]] {
            let mut out = Vec::new();
            gunzip_if_gzip(bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, text);
        }
    }
}
