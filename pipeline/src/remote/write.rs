//! Uploads that become visible only when committed.

use super::{Object, RemoteError, RemoteOptions, object, runtime};
use object_store::buffered::BufWriter;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

struct State {
    url: String,
    writer: Option<BufWriter>,
    written: u64,
}

impl State {
    fn abort(&mut self) {
        if let Some(mut w) = self.writer.take() {
            // Best effort: an upload left open expires by the bucket's lifecycle rules,
            // and it is never visible under the key either way.
            let _ = runtime().block_on(w.abort());
        }
    }
}

/// An object being uploaded: written to as a file is, committed at the end.
///
/// Bytes are buffered up to [`RemoteOptions::part_bytes`]; an object smaller than that is
/// sent in one PUT on [`Upload::commit`], a larger one as a multipart upload whose parts
/// go out while writing goes on (at most two in flight) and which is completed on commit.
/// Either way nothing appears under the key until the commit succeeds. Dropping every
/// handle without committing aborts the upload.
///
/// `Upload` is a handle: [`Upload::writer`] gives a [`Write`] for a sink to own while the
/// caller keeps the handle to commit, as with [`AtomicFile`](crate::io::AtomicFile).
#[derive(Clone)]
pub struct Upload {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload").field("url", &self.url()).finish()
    }
}

impl Upload {
    /// Starts an upload to `url` (no request is made until a part is full or commit).
    pub fn create(url: &str) -> Result<Upload, RemoteError> {
        Ok(Self::to_object(object(url)?))
    }

    /// Starts an upload to an object of a store built by the caller.
    pub fn to_object(o: Object) -> Upload {
        let options = RemoteOptions::global();
        let writer = BufWriter::with_capacity(o.store, o.path, options.part_bytes.max(5 << 20))
            .with_max_concurrency(2);
        Upload {
            state: Arc::new(Mutex::new(State {
                url: o.url,
                writer: Some(writer),
                written: 0,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The URL.
    pub fn url(&self) -> String {
        self.lock().url.clone()
    }

    /// A writer into this upload, for a sink to own.
    pub fn writer(&self) -> Box<dyn Write + Send> {
        Box::new(self.clone())
    }

    /// Completes the upload: the object appears under its key, whole.
    pub fn commit(self) -> Result<(), RemoteError> {
        let mut state = self.lock();
        let url = state.url.clone();
        let written = state.written;
        let Some(mut w) = state.writer.take() else {
            return Err(RemoteError::Read {
                url,
                offset: written,
                message: "upload already finished".into(),
            });
        };
        runtime()
            .block_on(w.shutdown())
            .map_err(|e| RemoteError::Read {
                url,
                offset: written,
                message: format!("completing the upload: {e}"),
            })
    }
}

impl Write for Upload {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let offset = state.written;
        let url = state.url.clone();
        let w = state
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other(format!("{url}: upload already finished")))?;
        runtime()
            .block_on(w.write_all(buf))
            .map_err(|e| io::Error::other(format!("{url}: uploading at byte {offset}: {e}")))?;
        state.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Parts go out as they fill; the rest goes on commit.
        Ok(())
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.abort();
    }
}
