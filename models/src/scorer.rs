//! The ONNX scorer runtime: runs a text classifier on [`crate::features`] vectors, in
//! batches, with `ort` over one of two backends.
//!
//! - [`Backend::Tract`] (the default): `ort-tract`, pure Rust; nothing to install.
//! - [`Backend::OnnxRuntime`]: ONNX Runtime itself, loaded at run time from a
//!   `libonnxruntime` the user points to (the PyPI `onnxruntime` wheel ships one as
//!   `onnxruntime/capi/libonnxruntime.so.<version>`). `ort` is built with `api-24`, so the
//!   library must be ONNX Runtime **1.24 or newer** (older ones return no API of that
//!   version, which is reported as an error).
//!
//! `ort` holds its backend in a process-wide slot: the first scorer loaded picks the
//! backend for the whole process, and asking for another one later is an error
//! ([`ScorerError::BackendConflict`]).
//!
//! Model contract: inputs `indices` (int64, `[batch, k]`) and `values` (float,
//! `[batch, k]`): each row is a document's sparse feature vector padded with index 0 and
//! value 0; output `score` (float, `[batch]`), the probability of the positive class.
//! The shipped models compute `sigmoid(sum_j W[indices_j] * values_j + b)`.

use crate::features::{self, Features};
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The ONNX Runtime API version `ort` is built for (its `api-24` feature).
pub const ORT_API_VERSION: u32 = ort::sys::ORT_API_VERSION;
/// The oldest ONNX Runtime release that provides [`ORT_API_VERSION`].
pub const MIN_ONNXRUNTIME: &str = "1.24";

/// Which engine runs the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `ort-tract`: pure Rust, always available.
    Tract,
    /// ONNX Runtime, loaded from this shared library (`libonnxruntime.so.*`).
    OnnxRuntime {
        /// Path of the shared library.
        library: PathBuf,
    },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Tract => f.write_str("tract"),
            Backend::OnnxRuntime { library } => {
                write!(f, "onnxruntime ({})", library.display())
            }
        }
    }
}

/// What can go wrong loading or running a scorer.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    /// The ONNX Runtime library could not be opened or is not ONNX Runtime.
    #[error("cannot load ONNX Runtime library {path}: {message}")]
    Library {
        /// The library path given.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The library is ONNX Runtime, but too old for the API `ort` needs.
    #[error(
        "ONNX Runtime library {path} is version {version}, which does not provide API version {api}; ONNX Runtime {min} or newer is needed"
    )]
    Version {
        /// The library path given.
        path: PathBuf,
        /// The version it reports.
        version: String,
        /// The API version asked for.
        api: u32,
        /// The minimum release.
        min: &'static str,
    },
    /// A backend other than the one this process already uses was asked for.
    #[error("this process already runs models on {current}; it cannot switch to {wanted}")]
    BackendConflict {
        /// The backend in use.
        current: String,
        /// The backend asked for.
        wanted: String,
    },
    /// The model file could not be read or is not a usable model.
    #[error("model {path}: {message}")]
    Model {
        /// The model path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Inference failed.
    #[error("model {path}: inference failed: {message}")]
    Run {
        /// The model path.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The backend this process uses, with the `ort` environment built on it.
struct Active {
    backend: Backend,
    env: ort::environment::Environment,
}

static ACTIVE: OnceLock<Active> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());
/// Opened ONNX Runtime libraries stay loaded for the life of the process.
static LIBRARY: OnceLock<libloading::Library> = OnceLock::new();

/// Opens ONNX Runtime at `path` and returns its API table, checking the version.
fn load_onnxruntime(path: &Path) -> Result<ort::sys::OrtApi, ScorerError> {
    let lib_err = |message: String| ScorerError::Library {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(lib_err("no such file".into()));
    }
    // SAFETY: loading a shared library runs its initializers; the user chose to trust
    // this library by naming it as ONNX Runtime.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| lib_err(e.to_string()))?;
    let api = {
        // SAFETY: `OrtGetApiBase` has this signature in every ONNX Runtime release.
        let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> =
            unsafe { lib.get(b"OrtGetApiBase\0") }.map_err(|e| {
                lib_err(format!(
                    "no `OrtGetApiBase` symbol, not ONNX Runtime? ({e})"
                ))
            })?;
        // SAFETY: the function takes no arguments and returns a static table or null.
        let base = unsafe { get_base() };
        if base.is_null() {
            return Err(lib_err("OrtGetApiBase returned null".into()));
        }
        // SAFETY: `base` is a valid, static OrtApiBase.
        let version = unsafe {
            let v = ((*base).GetVersionString)();
            if v.is_null() {
                "unknown".to_string()
            } else {
                std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
            }
        };
        // SAFETY: GetApi returns null for an API version the library lacks.
        let api = unsafe { ((*base).GetApi)(ORT_API_VERSION) };
        if api.is_null() {
            return Err(ScorerError::Version {
                path: path.to_path_buf(),
                version,
                api: ORT_API_VERSION,
                min: MIN_ONNXRUNTIME,
            });
        }
        // SAFETY: a non-null table of that API version, valid while the library is loaded
        // (it stays loaded: it goes into LIBRARY below).
        unsafe { (*api).clone() }
    };
    let _ = LIBRARY.set(lib);
    Ok(api)
}

/// Makes `backend` the backend of this process (once) and returns the environment.
fn activate(backend: &Backend) -> Result<&'static Active, ScorerError> {
    let _guard = INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(active) = ACTIVE.get() {
        if &active.backend != backend {
            return Err(ScorerError::BackendConflict {
                current: active.backend.to_string(),
                wanted: backend.to_string(),
            });
        }
        return Ok(active);
    }
    let api = match backend {
        Backend::Tract => ort_tract::api(),
        Backend::OnnxRuntime { library } => load_onnxruntime(library)?,
    };
    if !ort::set_api(api) {
        return Err(ScorerError::BackendConflict {
            current: "a backend set outside corpus-models".into(),
            wanted: backend.to_string(),
        });
    }
    let env = ort::init()
        .with_name("corpus")
        .with_telemetry(false)
        .build()
        .map_err(|e| ScorerError::Library {
            path: match backend {
                Backend::Tract => PathBuf::from("tract"),
                Backend::OnnxRuntime { library } => library.clone(),
            },
            message: format!("creating the environment: {e}"),
        })?;
    Ok(ACTIVE.get_or_init(|| Active {
        backend: backend.clone(),
        env,
    }))
}

/// A loaded classifier: a few sessions of one model, so worker threads can run batches
/// at the same time.
pub struct Scorer {
    path: PathBuf,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("path", &self.path)
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

impl Scorer {
    /// Loads the model at `path` on `backend`, with `sessions` sessions (at least one;
    /// use the number of worker threads). Each session runs single-threaded.
    pub fn load(path: &Path, backend: &Backend, sessions: usize) -> Result<Scorer, ScorerError> {
        let model_err = |message: String| ScorerError::Model {
            path: path.to_path_buf(),
            message,
        };
        // The shipped models are compiled in, so an installed binary needs no assets.
        let bytes: std::borrow::Cow<'_, [u8]> = match shipped_bytes(path) {
            Some(b) => b.into(),
            None => std::fs::read(path)
                .map_err(|e| model_err(e.to_string()))?
                .into(),
        };
        let active = activate(backend)?;
        let mut built = Vec::new();
        for _ in 0..sessions.max(1) {
            let mut builder =
                Session::builder(&active.env).map_err(|e| model_err(e.to_string()))?;
            if matches!(backend, Backend::OnnxRuntime { .. }) {
                builder = builder
                    .with_intra_threads(1)
                    .map_err(|e| model_err(e.to_string()))?
                    .with_inter_threads(1)
                    .map_err(|e| model_err(e.to_string()))?;
            }
            let session = builder
                .commit_from_memory(&bytes)
                .map_err(|e| model_err(format!("not a loadable ONNX model: {e}")))?;
            let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
            if names != ["indices", "values"] {
                return Err(model_err(format!(
                    "expected inputs [\"indices\", \"values\"], found {names:?}"
                )));
            }
            let outs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
            if outs.first() != Some(&"score") {
                return Err(model_err(format!(
                    "expected an output named \"score\", found {outs:?}"
                )));
            }
            built.push(Mutex::new(session));
        }
        Ok(Scorer {
            path: path.to_path_buf(),
            sessions: built,
            next: AtomicUsize::new(0),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scores feature vectors, one score per vector, in order.
    pub fn score<F: std::borrow::Borrow<Features>>(
        &self,
        batch: &[F],
    ) -> Result<Vec<f32>, ScorerError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let run_err = |message: String| ScorerError::Run {
            path: self.path.clone(),
            message,
        };
        let n = batch.len();
        let k = batch
            .iter()
            .map(|f| f.borrow().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut indices = vec![0i64; n * k];
        let mut values = vec![0f32; n * k];
        for (row, f) in batch.iter().enumerate() {
            let f = f.borrow();
            let base = row * k;
            for (j, (&i, &v)) in f.indices.iter().zip(&f.values).enumerate() {
                indices[base + j] = i as i64;
                values[base + j] = v;
            }
        }
        let shape = [n as i64, k as i64];
        let indices = Tensor::from_array((shape, indices)).map_err(|e| run_err(e.to_string()))?;
        let values = Tensor::from_array((shape, values)).map_err(|e| run_err(e.to_string()))?;

        // Take a free session if there is one, else wait for one (round robin).
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.sessions.len();
        let mut guard = (0..count)
            .find_map(|o| self.sessions[(start + o) % count].try_lock().ok())
            .map_or_else(|| self.sessions[start % count].lock().map_err(|_| ()), Ok)
            .map_err(|_| run_err("a scorer session panicked earlier".into()))?;
        let outputs = guard
            .run(ort::inputs!["indices" => indices, "values" => values])
            .map_err(|e| run_err(e.to_string()))?;
        let (_, scores) = outputs["score"]
            .try_extract_tensor::<f32>()
            .map_err(|e| run_err(e.to_string()))?;
        if scores.len() != n {
            return Err(run_err(format!(
                "{} scores for a batch of {n}",
                scores.len()
            )));
        }
        Ok(scores.to_vec())
    }

    /// Extracts features from texts and scores them.
    pub fn score_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<f32>, ScorerError> {
        let feats: Vec<Features> = texts
            .iter()
            .map(|t| features::extract(t.as_ref()))
            .collect();
        self.score(&feats)
    }
}

/// Path of a model shipped in `models/assets/` of the source tree (`quality.onnx`,
/// `safety.onnx`). Loading this path uses the copy compiled into the binary, so it
/// works where the source tree is absent.
pub fn shipped_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

/// The bytes of a shipped model when `path` is its path in `models/assets/`; the
/// files are compiled into the binary.
fn shipped_bytes(path: &Path) -> Option<&'static [u8]> {
    if path == shipped_model("quality.onnx") {
        Some(include_bytes!("../assets/quality.onnx"))
    } else if path == shipped_model("safety.onnx") {
        Some(include_bytes!("../assets/safety.onnx"))
    } else {
        None
    }
}

/// A model given by name: `quality` and `safety` are the shipped models, anything else
/// is a path.
pub fn model_path(spec: &str) -> PathBuf {
    match spec {
        "quality" => shipped_model("quality.onnx"),
        "safety" => shipped_model("safety.onnx"),
        other => PathBuf::from(other),
    }
}
