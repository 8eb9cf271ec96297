//! Object storage: inputs and outputs addressed by URL.
//!
//! A location is a local path or a URL: `s3://bucket/key` (Amazon S3 or any
//! S3-compatible server) or `http(s)://host/path` (read only). Clients come from the
//! `object_store` crate; this module adds what a batch job over a crawl needs on top:
//!
//! - [`RemoteReader`]: a blocking, seekable reader that streams an object as it
//!   downloads (a bounded queue of chunks, so memory stays bounded whatever the size)
//!   and resumes a broken download from the byte offset reached with a ranged GET,
//!   retrying with backoff, instead of starting over;
//! - [`Upload`]: a blocking writer that uploads as it is written (multipart past a few
//!   MiB) and makes the object visible under its key only on [`Upload::commit`]; dropped
//!   without commit, it aborts, so no partial object is ever left under the final key;
//! - [`Storage`]: the output directory of a run, local or remote, with the few
//!   operations the executor needs (atomic small files, streamed files, existence).
//!
//! Credentials and endpoint for S3 come from the usual AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` /
//! `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`...) and the shared files
//! `~/.aws/credentials` and `~/.aws/config`; with no credentials anywhere, requests go
//! unsigned (anonymous access to public buckets). See [`RemoteOptions`] for retries.
//!
//! ```no_run
//! use std::io::Read;
//! let url = "https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/warc.paths.gz";
//! let mut reader = corpus::remote::RemoteReader::open(url).unwrap();
//! let mut head = [0u8; 2];
//! reader.read_exact(&mut head).unwrap();
//! ```

mod aws;
mod read;
mod storage;
mod write;

pub use read::RemoteReader;
pub use storage::{OutputFile, Storage};
pub use write::Upload;

use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Errors of object storage. Each names the URL, and the byte offset where it matters.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL is malformed or of an unsupported kind.
    #[error("{url}: {message}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// The object does not exist.
    #[error("{url}: no such object")]
    NotFound {
        /// The URL.
        url: String,
    },
    /// A request failed (after the retries it was allowed).
    #[error("{url}: {source}")]
    Store {
        /// The URL.
        url: String,
        /// The client's error.
        source: object_store::Error,
    },
    /// Reading the object failed for good at a byte offset.
    #[error("{url}: at byte {offset}: {message}")]
    Read {
        /// The URL.
        url: String,
        /// Bytes of the object received before the failure.
        offset: u64,
        /// What went wrong, with the number of attempts.
        message: String,
    },
}

impl RemoteError {
    fn store(url: &str, source: object_store::Error) -> RemoteError {
        match source {
            object_store::Error::NotFound { .. } => RemoteError::NotFound {
                url: url.to_string(),
            },
            source => RemoteError::Store {
                url: url.to_string(),
                source,
            },
        }
    }
}

impl From<RemoteError> for std::io::Error {
    fn from(e: RemoteError) -> Self {
        let kind = match e {
            RemoteError::NotFound { .. } => std::io::ErrorKind::NotFound,
            RemoteError::Url { .. } => std::io::ErrorKind::InvalidInput,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, e)
    }
}

/// True when `location` is a URL this module handles (`s3://`, `http://`, `https://`)
/// rather than a local path.
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("s3://") || lower.starts_with("http://") || lower.starts_with("https://")
}

/// True when `path` holds a URL (see [`is_url`]).
pub fn is_url_path(path: &std::path::Path) -> bool {
    path.to_str().is_some_and(is_url)
}

/// Retry and timeout settings, read once from the environment.
///
/// | variable | meaning | default |
/// | --- | --- | --- |
/// | `CORPUS_REMOTE_RETRIES` | attempts after a failure, per request and per stalled download | 10 |
/// | `CORPUS_REMOTE_BACKOFF_MS` | first backoff; doubles each retry, at most 15 s | 100 |
/// | `CORPUS_REMOTE_READ_TIMEOUT_S` | a read with no byte for this long fails (and is retried) | 60 |
/// | `CORPUS_REMOTE_PART_MIB` | multipart upload part size (S3 needs at least 5) | 8 |
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Retries after a failed request, and attempts to resume a download that makes
    /// no progress.
    pub retries: usize,
    /// First backoff.
    pub backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// A read that gets no byte for this long fails.
    pub read_timeout: Duration,
    /// Part size of multipart uploads (and the size under which an object is sent in
    /// one PUT). Unit: bytes.
    pub part_bytes: usize,
    /// Chunks of a download queued ahead of the reader (each as the server sent it,
    /// typically 8-64 KiB): bounds read-ahead memory.
    pub queue_chunks: usize,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            retries: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            part_bytes: 8 << 20,
            queue_chunks: 64,
        }
    }
}

impl RemoteOptions {
    /// The defaults, overridden by `CORPUS_REMOTE_*` environment variables.
    pub fn from_env() -> RemoteOptions {
        let num = |name: &str| -> Option<u64> { std::env::var(name).ok()?.trim().parse().ok() };
        let mut o = RemoteOptions::default();
        if let Some(n) = num("CORPUS_REMOTE_RETRIES") {
            o.retries = n as usize;
        }
        if let Some(n) = num("CORPUS_REMOTE_BACKOFF_MS") {
            o.backoff = Duration::from_millis(n);
        }
        if let Some(n) = num("CORPUS_REMOTE_READ_TIMEOUT_S") {
            o.read_timeout = Duration::from_secs(n.max(1));
        }
        if let Some(n) = num("CORPUS_REMOTE_PART_MIB") {
            o.part_bytes = (n.max(1) as usize) << 20;
        }
        o
    }

    /// The options of this process (from the environment, read once).
    pub fn global() -> &'static RemoteOptions {
        static OPTIONS: OnceLock<RemoteOptions> = OnceLock::new();
        OPTIONS.get_or_init(RemoteOptions::from_env)
    }

    /// The backoff before attempt `n` (1-based) after a failure.
    pub(crate) fn backoff(&self, n: usize) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: object_store::BackoffConfig {
                init_backoff: self.backoff,
                max_backoff: self.max_backoff,
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: Duration::from_secs(180),
        }
    }

    fn client_options(&self) -> ClientOptions {
        // No total request timeout: a multi-GB WARC streams for minutes. A stalled
        // connection is caught by the read timeout and resumed.
        ClientOptions::new()
            .with_timeout_disabled()
            .with_read_timeout(self.read_timeout)
            .with_connect_timeout(Duration::from_secs(10))
    }
}

/// The runtime that drives every request. Reader and writer handles are blocking and
/// may be used from any thread that is not itself running inside a runtime.
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("corpus-remote")
            .enable_all()
            .build()
            .expect("cannot start the I/O runtime")
    })
}

/// An object: its store and its path in the store.
#[derive(Debug, Clone)]
pub struct Object {
    /// The store (one per bucket or HTTP origin, shared).
    pub store: Arc<dyn ObjectStore>,
    /// The key.
    pub path: ObjectPath,
    /// The URL, for messages.
    pub url: String,
}

/// Resolves a URL to its store and key. Stores are cached per bucket / origin.
pub fn object(url: &str) -> Result<Object, RemoteError> {
    let bad = |message: &str| RemoteError::Url {
        url: url.to_string(),
        message: message.to_string(),
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let scheme = parsed.scheme().to_ascii_lowercase();
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no bucket or host"))?
        .to_string();
    let key = parsed.path().trim_start_matches('/');
    let path = ObjectPath::from_url_path(key).map_err(|e| bad(&e.to_string()))?;
    let origin = match parsed.port() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    static STORES: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let mut stores = STORES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let store = match stores.get(&origin) {
        Some(s) => s.clone(),
        None => {
            install_crypto();
            let options = RemoteOptions::global();
            let store: Arc<dyn ObjectStore> = match scheme.as_str() {
                "s3" => Arc::new(
                    aws::builder(&host, options)
                        .build()
                        .map_err(|e| bad(&e.to_string()))?,
                ),
                "http" | "https" => Arc::new(
                    object_store::http::HttpBuilder::new()
                        .with_url(&origin)
                        .with_retry(options.retry_config())
                        .with_client_options(
                            options.client_options().with_allow_http(scheme == "http"),
                        )
                        .build()
                        .map_err(|e| bad(&e.to_string()))?,
                ),
                _ => return Err(bad("unsupported scheme (s3, http and https are)")),
            };
            stores.insert(origin, store.clone());
            store
        }
    };
    Ok(Object {
        store,
        path,
        url: url.to_string(),
    })
}

/// Installs TLS through rustls on `ring` as the process default (once). Stores made by
/// this module do it themselves; call it before building an `object_store` client of
/// your own in the same process.
pub fn install_crypto() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Fails only when a provider is already installed, which is as good. rustls
        // marks ring's provider deprecated for lacking post-quantum key exchange; it is
        // chosen to keep aws-lc-sys (a large C build) out of the build.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Reads a whole (small) object: listings, markers, statistics.
pub fn get_bytes(url: &str) -> Result<Vec<u8>, RemoteError> {
    let o = object(url)?;
    runtime().block_on(async {
        let r = o
            .store
            .get(&o.path)
            .await
            .map_err(|e| RemoteError::store(url, e))?;
        let b = r.bytes().await.map_err(|e| RemoteError::store(url, e))?;
        Ok(b.to_vec())
    })
}

/// Writes a whole (small) object in one PUT: it appears complete or not at all.
pub fn put_bytes(url: &str, bytes: &[u8]) -> Result<(), RemoteError> {
    let o = object(url)?;
    let payload = object_store::PutPayload::from(bytes.to_vec());
    runtime()
        .block_on(o.store.put(&o.path, payload))
        .map(|_| ())
        .map_err(|e| RemoteError::store(url, e))
}

/// True when the object exists.
pub fn exists(url: &str) -> Result<bool, RemoteError> {
    let o = object(url)?;
    match runtime().block_on(o.store.head(&o.path)) {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(RemoteError::store(url, e)),
    }
}

/// Deletes an object; a missing one is not an error.
pub fn delete(url: &str) -> Result<(), RemoteError> {
    let o = object(url)?;
    match runtime().block_on(o.store.delete(&o.path)) {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(RemoteError::store(url, e)),
    }
}

/// Names of the objects directly under the prefix `url` (a "directory").
pub fn list(url: &str) -> Result<BTreeSet<String>, RemoteError> {
    let dir = format!("{}/", url.trim_end_matches('/'));
    let o = object(&dir)?;
    runtime().block_on(async {
        let listing = o
            .store
            .list_with_delimiter(Some(&o.path))
            .await
            .map_err(|e| RemoteError::store(url, e))?;
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect())
    })
}

/// Joins a relative key onto a base URL or directory (`https://host/` + `a/b.warc.gz`).
/// An entry that is itself a URL or an absolute path is kept as it is.
pub fn join(base: &str, entry: &str) -> String {
    if is_url(entry) || entry.starts_with('/') {
        return entry.to_string();
    }
    if base.is_empty() {
        return entry.to_string();
    }
    if base.ends_with('/') {
        format!("{base}{entry}")
    } else {
        format!("{base}/{entry}")
    }
}

/// The "directory" of a URL: everything up to and including its last `/`.
pub fn parent(url: &str) -> String {
    match url.rfind('/') {
        Some(i) if i + 1 > url.find("://").map_or(0, |s| s + 3) => url[..=i].to_string(),
        _ => format!("{url}/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_mentions;

    #[test]
    fn tells_urls_from_paths() {
        assert!(is_url("s3://commoncrawl/crawl-data/x.warc.gz"));
        assert!(is_url("HTTPS://data.commoncrawl.org/x"));
        assert!(is_url("http://127.0.0.1:9000/x"));
        assert!(!is_url("tests/data/warc"));
        assert!(!is_url("/abs/s3://x"));
        assert!(!is_url("s3:/x"));
    }

    #[test]
    fn joins_listing_entries() {
        assert_eq!(
            join("https://data.commoncrawl.org/", "crawl-data/a.warc.gz"),
            "https://data.commoncrawl.org/crawl-data/a.warc.gz"
        );
        assert_eq!(join("s3://b/p", "k"), "s3://b/p/k");
        assert_eq!(join("s3://b/p", "s3://c/k"), "s3://c/k");
        assert_eq!(parent("s3://b/dir/warc.paths.gz"), "s3://b/dir/");
        assert_eq!(parent("s3://b"), "s3://b/");
    }

    #[test]
    fn resolves_keys_and_rejects_bad_urls() {
        let o = object("s3://bucket/crawl-data/CC-MAIN-2024-10/a%20b.warc.gz").unwrap();
        assert_eq!(o.path.as_ref(), "crawl-data/CC-MAIN-2024-10/a b.warc.gz");
        let o = object("http://127.0.0.1:1/dir/x.warc.gz").unwrap();
        assert_eq!(o.path.as_ref(), "dir/x.warc.gz");
        let err = object("ftp://host/x").unwrap_err().to_string();
        assert_mentions(&err, &["ftp://host/x", "scheme"]);
        assert!(object("s3:///key").is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = RemoteOptions::default();
        assert_eq!(o.backoff(1), Duration::from_millis(100));
        assert_eq!(o.backoff(3), Duration::from_millis(400));
        assert_eq!(o.backoff(40), Duration::from_secs(15));
    }
}
