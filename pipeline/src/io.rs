//! File plumbing shared by sources, sinks and the executor: transparent decompression
//! with a count of bytes consumed, and files that appear under their final name only
//! when complete.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub use corpus_models::io::{AtomicFile, Compression, TMP_MARKER, gunzip_if_gzip};

/// A shared count of bytes read from the underlying file, for progress and statistics,
/// and whether reading it failed.
#[derive(Debug, Clone, Default)]
pub struct ByteCounter(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    bytes: AtomicU64,
    failed: AtomicBool,
}

impl ByteCounter {
    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// True when reading the stored bytes themselves failed (a disk or download error).
    /// A decompressor's error while this is false is damage in the data (cut short, bad
    /// data, junk after the end), which no retry mends; an error with it true may pass.
    pub fn input_failed(&self) -> bool {
        self.0.failed.load(Ordering::Relaxed)
    }
}

/// A reader that counts the bytes it hands out.
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    counter: ByteCounter,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`; returns the reader and a handle to its count.
    pub fn new(inner: R) -> (Self, ByteCounter) {
        let counter = ByteCounter::default();
        (
            CountingReader {
                inner,
                counter: counter.clone(),
            },
            counter,
        )
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.counter.0.failed.store(true, Ordering::Relaxed);
            }
        })?;
        self.counter.0.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a file for reading, decompressing gzip (all members) or zstd (all frames) as
/// told by its first bytes. Returns the buffered reader and a counter of bytes read
/// from the file as stored.
///
/// `path` may also be a URL (`s3://bucket/key`, `https://host/path`): the object is
/// then streamed as it downloads (see [`RemoteReader`](crate::remote::RemoteReader)).
pub fn open_decompressed(path: &Path) -> io::Result<(Box<dyn BufRead + Send>, ByteCounter)> {
    let (counting, counter) = CountingReader::new(open_seekable(path)?);
    let mut raw = BufReader::with_capacity(1 << 16, counting);
    let compression = Compression::sniff(raw.fill_buf()?);
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(raw),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 16,
            zstd::stream::read::Decoder::with_buffer(raw)?,
        )),
    };
    Ok((reader, counter))
}

/// An input that could not be opened, with its path in the message.
#[derive(Debug, thiserror::Error)]
#[error("opening {path}: {error}")]
pub struct OpenError {
    /// The input.
    pub path: PathBuf,
    /// The cause (its message is part of this one's).
    pub error: io::Error,
}

/// [`open_decompressed`] without the byte count, for commands that read one input:
/// errors name the file.
pub fn open_input(path: &Path) -> Result<Box<dyn BufRead + Send>, OpenError> {
    open_decompressed(path)
        .map(|(reader, _)| reader)
        .map_err(|error| OpenError {
            path: path.to_path_buf(),
            error,
        })
}

/// A byte source that can also seek: a file or a download.
pub trait ReadSeek: Read + Seek + Send {}

impl<T: Read + Seek + Send> ReadSeek for T {}

/// Opens a local file or, for a URL (see [`crate::remote::is_url`]), starts streaming
/// the object.
pub fn open_seekable(path: &Path) -> io::Result<Box<dyn ReadSeek>> {
    if let Some(url) = path.to_str().filter(|p| crate::remote::is_url(p)) {
        return Ok(Box::new(crate::remote::RemoteReader::open(url)?));
    }
    Ok(Box::new(File::open(path)?))
}

/// The last component of `path` as text (lossily), empty when it has none: how a
/// listing ([`Storage::list`](crate::remote::Storage::list)) names a file.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Resolves `.` and `..` components without touching the file system, so that paths
/// built from a config file's folder read well in messages (`configs/../data` becomes
/// `data`). A `..` that would climb above a relative path's start is kept.
pub fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// Removes temporary files left in `dir` by killed runs: names carrying [`TMP_MARKER`]
/// whose final name starts with `prefix` (so a task clears only its own shards' files,
/// never those another task of the same job is writing).
pub fn remove_stale_tmp(dir: &Path, prefix: &str) -> io::Result<usize> {
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(rest) = name.strip_prefix('.')
            && rest.starts_with(prefix)
            && name.contains(TMP_MARKER)
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Hands out its bytes, then fails as a dropped connection does.
    struct FailsAfter(&'static [u8]);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "gone"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn the_counter_tells_a_failed_input_from_damaged_data() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&b"some text to compress\n".repeat(100))
            .unwrap();
        let gz: &'static [u8] = enc.finish().unwrap().leak();
        // Cut short: the decoder fails, the input did not.
        let (counting, counter) = CountingReader::new(&gz[..gz.len() / 2]);
        let err = flate2::read::MultiGzDecoder::new(counting)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(!counter.input_failed(), "{err}");
        // The input fails: the decoder passes its error on, and the counter knows.
        let (counting, counter) = CountingReader::new(FailsAfter(&gz[..gz.len() / 2]));
        let err = flate2::read::MultiGzDecoder::new(counting)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(counter.input_failed(), "{err}");
    }

    #[test]
    fn reads_plain_gzip_multi_member_and_zstd_alike() {
        let dir = tempfile::tempdir().unwrap();
        let text = b"line one\nline two\n";
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, text).unwrap();

        let gz = dir.path().join("a.gz");
        let mut bytes = Vec::new();
        for half in [&text[..9], &text[9..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(half).unwrap();
            bytes.extend(enc.finish().unwrap());
        }
        std::fs::write(&gz, &bytes).unwrap();

        let zst = dir.path().join("a.zst");
        std::fs::write(&zst, zstd::encode_all(&text[..], 3).unwrap()).unwrap();

        for path in [&plain, &gz, &zst] {
            let (mut r, counter) = open_decompressed(path).unwrap();
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, text, "{}", path.display());
            assert_eq!(counter.get(), std::fs::metadata(path).unwrap().len());
        }
    }

    #[test]
    fn cleans_paths_lexically() {
        for (a, b) in [
            ("configs/../tests/data", "tests/data"),
            ("./a/./b/", "a/b"),
            ("../x", "../x"),
            ("a/../../x", "../x"),
            ("/a/../../b", "/b"),
            (".", "."),
        ] {
            assert_eq!(clean_path(Path::new(a)), Path::new(b), "{a}");
        }
    }

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        {
            let f = AtomicFile::new(&target);
            std::fs::write(f.tmp_path(), b"partial").unwrap();
            // Dropped without commit.
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        AtomicFile::write_all(&target, b"whole").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");

        std::fs::write(dir.path().join(".x.jsonl.gz.tmp-123"), b"stale").unwrap();
        std::fs::write(dir.path().join(".y.jsonl.gz.tmp-123"), b"other task").unwrap();
        assert_eq!(remove_stale_tmp(dir.path(), "x.").unwrap(), 1);
        assert_eq!(remove_stale_tmp(dir.path(), "y.").unwrap(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
