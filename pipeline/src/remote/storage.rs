//! The output directory of a run, on local disk or in object storage.
//!
//! Paths are the executor's [`Layout`](crate::shard::Layout) paths; for a remote root
//! (`s3://bucket/prefix`) they are that URL joined with the relative name, and map to
//! keys of the bucket. Local files are written under temporary names and renamed; remote
//! objects are written with single PUTs (small files) or multipart uploads completed on
//! commit, which S3 makes visible atomically, so both give the same guarantee: a file is
//! complete under its final name, or absent.

use super::{RemoteError, Upload, is_url_path};
use crate::io::{AtomicFile, remove_stale_tmp};
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// An output root: a local directory or a URL prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// A directory on local (or shared, mounted) disk.
    Local,
    /// Object storage: paths are URLs.
    Remote,
}

fn url_of(path: &Path) -> io::Result<&str> {
    path.to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL is not UTF-8"))
}

fn io_err(e: RemoteError) -> io::Error {
    e.into()
}

impl Storage {
    /// The storage of an output root.
    pub fn of(root: &Path) -> Storage {
        if is_url_path(root) {
            Storage::Remote
        } else {
            Storage::Local
        }
    }

    /// True for object storage.
    pub fn is_remote(&self) -> bool {
        *self == Storage::Remote
    }

    /// Creates the directories (object storage has none).
    pub fn create_dirs(&self, dirs: &[PathBuf]) -> io::Result<()> {
        if let Storage::Local = self {
            for d in dirs {
                std::fs::create_dir_all(d)?;
            }
        }
        Ok(())
    }

    /// Checks now, not after hours of work, that `dir` can be written to.
    pub fn probe(&self, dir: &Path) -> io::Result<()> {
        match self {
            Storage::Local => {
                let probe = AtomicFile::new(&dir.join("probe"));
                std::fs::write(probe.tmp_path(), b"")
            }
            Storage::Remote => {
                let url = format!("{}/.probe", url_of(dir)?.trim_end_matches('/'));
                super::put_bytes(&url, b"").map_err(io_err)?;
                super::delete(&url).map_err(io_err)
            }
        }
    }

    /// Whether a file exists.
    pub fn exists(&self, path: &Path) -> io::Result<bool> {
        match self {
            Storage::Local => Ok(path.exists()),
            Storage::Remote => super::exists(url_of(path)?).map_err(io_err),
        }
    }

    /// A whole file, or `None` when there is none.
    pub fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        let result = match self {
            Storage::Local => std::fs::read(path),
            Storage::Remote => super::get_bytes(url_of(path)?).map_err(io_err),
        };
        match result {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a small file atomically.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        match self {
            Storage::Local => AtomicFile::write_all(path, bytes),
            Storage::Remote => super::put_bytes(url_of(path)?, bytes).map_err(io_err),
        }
    }

    /// Writes a value as pretty-printed JSON, atomically (statistics, markers).
    pub fn write_json(&self, path: &Path, value: &impl serde::Serialize) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.write(path, text.as_bytes())
    }

    /// Names of the files directly in `dir` (none when it does not exist). Object
    /// storage answers this with one listing request per 1,000 names instead of one
    /// request per file.
    pub fn list(&self, dir: &Path) -> io::Result<BTreeSet<String>> {
        match self {
            Storage::Local => match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
                    .collect(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeSet::new()),
                Err(e) => Err(e),
            },
            Storage::Remote => super::list(url_of(dir)?).map_err(io_err),
        }
    }

    /// Removes a file; a missing one is fine.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        match self {
            Storage::Local => match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            Storage::Remote => super::delete(url_of(path)?).map_err(io_err),
        }
    }

    /// Removes temporary files of killed runs (see [`remove_stale_tmp`]). Object
    /// storage has none: an unfinished upload is not an object.
    pub fn remove_stale_tmp(&self, dir: &Path, prefix: &str) -> io::Result<usize> {
        match self {
            Storage::Local => remove_stale_tmp(dir, prefix),
            Storage::Remote => Ok(0),
        }
    }

    /// Starts a file that is streamed out as it is written: returns the handle to
    /// commit it and the writer to give a sink.
    pub fn create(&self, path: &Path) -> io::Result<(OutputFile, Box<dyn Write + Send>)> {
        match self {
            Storage::Local => {
                let file = AtomicFile::new(path);
                let f = std::fs::File::create(file.tmp_path())?;
                Ok((OutputFile::Local(file), Box::new(f)))
            }
            Storage::Remote => {
                let upload = Upload::create(url_of(path)?).map_err(io_err)?;
                let writer = upload.writer();
                Ok((OutputFile::Remote(upload), writer))
            }
        }
    }
}

/// A file being written, made visible under its final name by [`OutputFile::commit`].
/// Dropped without commit, it leaves nothing under that name.
#[derive(Debug)]
pub enum OutputFile {
    /// A local file under a temporary name.
    Local(AtomicFile),
    /// An upload.
    Remote(Upload),
}

impl OutputFile {
    /// Makes the file visible under its final name. Call after the writer was flushed
    /// and dropped (a sink's `finish`).
    pub fn commit(self) -> io::Result<()> {
        match self {
            OutputFile::Local(f) => f.commit(),
            OutputFile::Remote(u) => u.commit().map_err(io_err),
        }
    }
}
