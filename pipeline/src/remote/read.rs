//! Streaming, resumable downloads behind a blocking `Read + Seek`.

use super::{Object, RemoteError, RemoteOptions, object, runtime};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{GetOptions, GetRange};
use std::io::{self, Read, Seek, SeekFrom};
use tokio::sync::mpsc;

/// What the download task sends to the reader.
enum Msg {
    /// First message of a download: the object's size.
    Start { size: u64, etag: Option<String> },
    /// The next bytes.
    Data(Bytes),
    /// The download failed for good.
    Failed(RemoteError),
}

/// Reads an object as it downloads.
///
/// A task on the I/O runtime issues the GET and pushes the body's chunks into a queue of
/// [`RemoteOptions::queue_chunks`] entries, so download and parsing overlap and memory
/// stays bounded. When the connection breaks, times out or the server answers with an
/// error mid-way, the task asks again for the rest of the object with a ranged GET from
/// the byte offset reached (`Range: bytes=N-`, with `If-Match` on the first answer's
/// ETag where the server gives one), after a backoff, up to [`RemoteOptions::retries`]
/// attempts in a row without progress. The reader sees one unbroken stream.
///
/// Seeking (needed only to resynchronize after damage in a WARC) restarts the download
/// at the new offset.
pub struct RemoteReader {
    object: Object,
    options: RemoteOptions,
    size: u64,
    etag: Option<String>,
    pos: u64,
    chunk: Bytes,
    rx: mpsc::Receiver<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RemoteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteReader")
            .field("url", &self.object.url)
            .field("pos", &self.pos)
            .field("size", &self.size)
            .finish()
    }
}

impl RemoteReader {
    /// Starts downloading `url` with the process's [`RemoteOptions`]. Fails when the
    /// object cannot be had (no such object, no access, or the server keeps failing).
    pub fn open(url: &str) -> Result<RemoteReader, RemoteError> {
        Self::open_with(url, RemoteOptions::global().clone())
    }

    /// Starts downloading `url` with the given options.
    pub fn open_with(url: &str, options: RemoteOptions) -> Result<RemoteReader, RemoteError> {
        Self::from_object(object(url)?, options)
    }

    /// Starts downloading an object of a store built by the caller.
    pub fn from_object(
        object: Object,
        options: RemoteOptions,
    ) -> Result<RemoteReader, RemoteError> {
        let (rx, task) = spawn(object.clone(), options.clone(), 0, None);
        let mut reader = RemoteReader {
            object,
            options,
            size: 0,
            etag: None,
            pos: 0,
            chunk: Bytes::new(),
            rx,
            task,
        };
        reader.start()?;
        Ok(reader)
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.object.url
    }

    /// Waits for the first message of a download.
    fn start(&mut self) -> Result<(), RemoteError> {
        match self.rx.blocking_recv() {
            Some(Msg::Start { size, etag }) => {
                self.size = size;
                if self.etag.is_none() {
                    self.etag = etag;
                }
                Ok(())
            }
            Some(Msg::Failed(e)) => Err(e),
            Some(Msg::Data(_)) | None => Err(RemoteError::Read {
                url: self.object.url.clone(),
                offset: self.pos,
                message: "download task ended unexpectedly".into(),
            }),
        }
    }

    fn restart_at(&mut self, pos: u64) -> io::Result<()> {
        self.task.abort();
        self.pos = pos;
        self.chunk = Bytes::new();
        if pos >= self.size {
            // Nothing left to fetch: an empty, closed queue reads as the end.
            let (_tx, rx) = mpsc::channel(1);
            self.rx = rx;
            return Ok(());
        }
        let (rx, task) = spawn(
            self.object.clone(),
            self.options.clone(),
            pos,
            self.etag.clone(),
        );
        self.rx = rx;
        self.task = task;
        Ok(self.start()?)
    }
}

impl Drop for RemoteReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Read for RemoteReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(Msg::Data(b)) => self.chunk = b,
                Some(Msg::Failed(e)) => return Err(e.into()),
                Some(Msg::Start { .. }) => {}
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RemoteReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        if target == self.pos {
            return Ok(target);
        }
        // A short hop forward inside what has arrived needs no new request.
        if target > self.pos && target - self.pos <= self.chunk.len() as u64 {
            let _ = self.chunk.split_to((target - self.pos) as usize);
            self.pos = target;
            return Ok(target);
        }
        self.restart_at(target)?;
        Ok(target)
    }
}

fn spawn(
    object: Object,
    options: RemoteOptions,
    start: u64,
    etag: Option<String>,
) -> (mpsc::Receiver<Msg>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(options.queue_chunks.max(1));
    let task = runtime().spawn(download(object, options, start, etag, tx));
    (rx, task)
}

/// Errors after which asking again cannot help.
fn is_permanent(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    matches!(
        e,
        E::NotFound { .. }
            | E::InvalidPath { .. }
            | E::NotSupported { .. }
            | E::Precondition { .. }
            | E::NotImplemented { .. }
            | E::PermissionDenied { .. }
            | E::Unauthenticated { .. }
            | E::UnknownConfigurationKey { .. }
    )
}

/// Runs the download loop and hands its error, if any, to the reader.
async fn download(
    object: Object,
    options: RemoteOptions,
    offset: u64,
    etag: Option<String>,
    tx: mpsc::Sender<Msg>,
) {
    if let Err(e) = transfer(object, options, offset, etag, &tx).await {
        // A reader that is gone does not need the error.
        let _ = tx.send(Msg::Failed(e)).await;
    }
}

/// The download loop: GET from `offset`, forward chunks, and on failure GET the rest.
/// `Ok` once the object is complete or the reader is gone.
async fn transfer(
    object: Object,
    options: RemoteOptions,
    mut offset: u64,
    mut etag: Option<String>,
    tx: &mpsc::Sender<Msg>,
) -> Result<(), RemoteError> {
    let url = object.url.clone();
    let read_error = |offset: u64, message: String| RemoteError::Read {
        url: url.clone(),
        offset,
        message,
    };
    let mut size: Option<u64> = None;
    // Failed attempts since the last byte received.
    let mut failures = 0usize;
    loop {
        let request = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            if_match: etag.clone(),
            ..Default::default()
        };
        let error = match object.store.get_opts(&object.path, request).await {
            Ok(result) => {
                if result.range.start != offset {
                    // A server that ignores Range would send the object from its start.
                    return Err(read_error(
                        offset,
                        format!(
                            "asked for bytes from {offset}, got {}..{}",
                            result.range.start, result.range.end
                        ),
                    ));
                }
                if size.is_none() {
                    size = Some(result.meta.size);
                    if etag.is_none() {
                        etag = result.meta.e_tag.clone();
                    }
                    let start = Msg::Start {
                        size: result.meta.size,
                        etag: etag.clone(),
                    };
                    if tx.send(start).await.is_err() {
                        return Ok(());
                    }
                }
                let total = size.unwrap_or(result.meta.size);
                let mut stream = result.into_stream();
                loop {
                    match stream.next().await {
                        Some(Ok(bytes)) => {
                            if bytes.is_empty() {
                                continue;
                            }
                            offset += bytes.len() as u64;
                            failures = 0;
                            if tx.send(Msg::Data(bytes)).await.is_err() {
                                return Ok(()); // The reader is gone.
                            }
                        }
                        Some(Err(e)) => break e.to_string(),
                        None if offset >= total => return Ok(()), // Complete: closing the queue is EOF.
                        None => break format!("connection closed at {offset} of {total} bytes"),
                    }
                }
            }
            Err(e) if is_permanent(&e) => {
                return Err(if offset == 0 {
                    super::RemoteError::store(&url, e)
                } else {
                    read_error(offset, e.to_string())
                });
            }
            Err(e) => e.to_string(),
        };
        failures += 1;
        if failures > options.retries {
            return Err(read_error(
                offset,
                format!("gave up after {failures} attempts without progress: {error}"),
            ));
        }
        tokio::time::sleep(options.backoff(failures)).await;
    }
}
