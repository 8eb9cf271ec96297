//! Sources: turn input files into a stream of documents, with constant memory.
//!
//! One input file is one shard of work. [`expand_inputs`] turns the configured paths
//! (files, directories, globs, list files) into a sorted list of [`InputFile`]s; [`open`]
//! opens one as a [`Source`], which yields documents one at a time.
//!
//! Damage: a damaged record is skipped and counted in [`SourceStats::corrupt`] (a
//! recoverable [`SourceError::Corrupt`]) and the file reads on. A file from which
//! *nothing* could be read is an error instead: when a source opened with [`open`] reaches
//! the end having met damage but read no record intact (no document made and no record
//! skipped on purpose), it ends with [`SourceError::Unreadable`], which names the file and
//! fails its shard (`corpus run` then exits 1; the other shards complete). Such a file is
//! all damage, or not the format its name says (a file named `.warc.gz` that is not gzip
//! reads as plain bytes with no WARC record in them). A file that is legitimately empty
//! meets no damage and is not an error: 0 bytes, a compressed stream of nothing, a WARC of
//! only `warcinfo`, `request` or `metadata` records (read intact and skipped on purpose),
//! a JSONL file of blank lines. One intact record is enough for the file to count as read:
//! a partly damaged file keeps what it holds and counts the rest.

pub mod html;
pub mod jsonl;
pub mod parquet;
pub mod warc;

use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Input format of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Decide from the file name: `.warc`, `.warc.gz`, `.wet.gz`, `.arc.gz`... are WARC;
    /// `.jsonl`/`.json`/`.ndjson` (optionally `.gz`/`.zst`) are JSONL; `.parquet` is
    /// Parquet; `.html`/`.htm`/`.xhtml` (optionally `.gz`/`.zst`) are HTML.
    Auto,
    /// WARC 1.0/1.1 (also WET) and 0.17/0.18 (ClueWeb09), plain or gzip.
    Warc,
    /// JSON lines, plain, gzip or zstd.
    Jsonl,
    /// Parquet with a text column.
    Parquet,
    /// One web page per file ([`html`]), for the `extract` stage.
    Html,
}

impl Format {
    /// The format a file name implies, if any.
    pub fn detect(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let base = name
            .strip_suffix(".gz")
            .or_else(|| name.strip_suffix(".zst"))
            .unwrap_or(&name);
        if base.ends_with(".warc") || base.ends_with(".wet") || base.ends_with(".arc") {
            Some(Format::Warc)
        } else if base.ends_with(".jsonl") || base.ends_with(".json") || base.ends_with(".ndjson") {
            Some(Format::Jsonl)
        } else if name.ends_with(".parquet") {
            Some(Format::Parquet)
        } else if html::page_id(path).is_some() {
            Some(Format::Html)
        } else {
            None
        }
    }
}

/// The `[input]` table of a pipeline config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputConfig {
    /// Files, directories (read recursively) or glob patterns. Relative paths are taken
    /// from the directory of the config file.
    pub paths: Vec<String>,
    /// A file listing one input path per line (blank lines and `#` comments ignored),
    /// relative paths taken from the list file's directory (or from `list_base`). May be
    /// gzip-compressed and may be a URL: Common Crawl's `warc.paths.gz` is such a list.
    pub list: Option<String>,
    /// Where the relative entries of `list` are taken from: a directory or a URL prefix
    /// (`https://data.commoncrawl.org/`, `s3://commoncrawl/`). Empty: the list's own
    /// directory.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub list_base: String,
    /// Input format; `auto` decides per file from its name.
    pub format: Format,
    /// Source name given to documents that do not carry one (JSONL/Parquet may carry
    /// their own in a field). Empty: `web` for WARC, the file stem's first word otherwise.
    pub source: String,
    /// WARC options.
    pub warc: warc::WarcOptions,
    /// JSONL options.
    pub jsonl: jsonl::JsonlOptions,
    /// Parquet options.
    pub parquet: parquet::ParquetOptions,
}

impl Default for InputConfig {
    fn default() -> Self {
        InputConfig {
            paths: Vec::new(),
            list: None,
            list_base: String::new(),
            format: Format::Auto,
            source: String::new(),
            warc: Default::default(),
            jsonl: Default::default(),
            parquet: Default::default(),
        }
    }
}

/// One input file, a shard of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Position in the sorted list of all inputs (the shard number, stable across tasks).
    pub index: usize,
    /// The file.
    pub path: PathBuf,
    /// Its format (never `Auto`).
    pub format: Format,
}

impl InputFile {
    /// True when the file holds web pages (WARC, HTML) for `extract` rather than
    /// documents.
    pub fn is_pages(&self) -> bool {
        matches!(self.format, Format::Warc | Format::Html)
    }
}

/// Counters kept by a source while reading one file. Merged with `+=`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SourceStats {
    /// Records seen (WARC records, JSON lines, Parquet rows), including skipped ones.
    pub records: u64,
    /// Documents produced.
    pub docs: u64,
    /// Bytes of input consumed (compressed, as stored).
    pub bytes: u64,
    /// Records skipped on purpose, by reason (`request`, `non_html`, `status_404`...).
    pub skipped: BTreeMap<String, u64>,
    /// Corrupt records skipped, by kind of damage.
    pub corrupt: BTreeMap<String, u64>,
    /// Records read after repairing them, by kind of repair (`lone_surrogate`: lone
    /// UTF-16 surrogate escapes in JSON replaced by U+FFFD).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub repaired: BTreeMap<String, u64>,
}

impl SourceStats {
    /// Counts a record skipped on purpose.
    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
    }

    /// Counts a corrupt record.
    pub fn corrupt(&mut self, kind: &str) {
        *self.corrupt.entry(kind.to_string()).or_default() += 1;
    }

    /// Counts a repaired record.
    pub fn repair(&mut self, kind: &str) {
        *self.repaired.entry(kind.to_string()).or_default() += 1;
    }
}

impl std::ops::AddAssign<&SourceStats> for SourceStats {
    fn add_assign(&mut self, o: &SourceStats) {
        self.records += o.records;
        self.docs += o.docs;
        self.bytes += o.bytes;
        for (k, v) in &o.skipped {
            *self.skipped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.corrupt {
            *self.corrupt.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.repaired {
            *self.repaired.entry(k.clone()).or_default() += v;
        }
    }
}

/// Errors of sources. `Corrupt` is recoverable: the bad record was skipped and reading
/// goes on; the others end the file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Reading failed in a way that ends the file (I/O error, unrecoverable stream damage).
    #[error("{path}: at byte {offset}: {message}")]
    Fatal {
        /// The file.
        path: PathBuf,
        /// Byte offset in the file as stored (compressed) where it happened, best known.
        offset: u64,
        /// What went wrong.
        message: String,
    },
    /// One record is damaged; it was skipped and the source can go on.
    #[error("{path}: record {record} at byte {offset}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Record number in the file (0-based, counting all records).
        record: u64,
        /// Byte offset of the record: in the file as stored for WARC (the offset of its
        /// gzip member, which a reader can seek to); in the decompressed stream for
        /// line formats (JSONL), where compressed offsets of lines do not exist.
        offset: u64,
        /// What is wrong with it.
        message: String,
    },
    /// Input paths or options are wrong (no such file, unknown format, bad glob).
    #[error("{0}")]
    Config(String),
    /// Nothing could be read from the file: it met damage and no record came through
    /// intact (see the module documentation). Ends the file.
    #[error(
        "{path}: nothing could be read: {corrupt} corrupt record(s) and no intact one \
         (damaged, or not the format its name says)"
    )]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Corrupt records counted in it.
        corrupt: u64,
    },
}

impl SourceError {
    /// True when the source can go on after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, SourceError::Corrupt { .. })
    }
}

/// A stream of documents from one input file.
pub trait Source: Send {
    /// The next document. `Ok(None)` at the end. A recoverable error
    /// ([`SourceError::is_recoverable`]) means one record was skipped (and counted in
    /// [`Source::stats`]); calling again goes on with the next record. After any other
    /// error the source is finished.
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError>;

    /// Counters so far.
    fn stats(&self) -> &SourceStats;

    /// The next intact document: each damaged record on the way is handed to `skipped`
    /// (to warn of it or count it) and reading goes on, as `corpus run` does, so that a
    /// damaged record costs only itself in every command. `Ok(None)` at the end; any
    /// other error ends the file.
    fn next_intact(
        &mut self,
        skipped: &mut dyn FnMut(SourceError),
    ) -> Result<Option<Document>, SourceError> {
        loop {
            match self.next_doc() {
                Err(e) if e.is_recoverable() => skipped(e),
                other => return other,
            }
        }
    }
}

/// Prints a damaged record a command skipped, as a warning on stderr.
pub fn warn_skipped(e: SourceError) {
    eprintln!("warning: skipped: {e}");
}

/// Reads a source to its end: the documents, and the errors met on the way (the
/// recoverable ones, then the one that ended the file, if any).
pub fn read_all(src: &mut dyn Source) -> (Vec<Document>, Vec<SourceError>) {
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    loop {
        match src.next_doc() {
            Ok(Some(d)) => docs.push(d),
            Ok(None) => break,
            Err(e) => {
                let fatal = !e.is_recoverable();
                errors.push(e);
                if fatal {
                    break;
                }
            }
        }
    }
    (docs, errors)
}

/// Opens one input file as a source. Every document it yields carries its
/// [`Origin`](corpus_stages::Origin): the file's number and the document's number in it.
/// A file from which nothing could be read ends with [`SourceError::Unreadable`].
pub fn open(file: &InputFile, config: &InputConfig) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(Numbered {
        inner: open_format(file, config)?,
        path: file.path.clone(),
        finished: false,
        file: u32::try_from(file.index).map_err(|_| {
            SourceError::Config(format!(
                "{}: more than 2^32 input files",
                file.path.display()
            ))
        })?,
        next: 0,
    }))
}

/// Stamps each document with its position in the input, and tells a file from which
/// nothing could be read at its end.
struct Numbered {
    inner: Box<dyn Source>,
    path: PathBuf,
    /// The end was reached (and told).
    finished: bool,
    file: u32,
    next: u32,
}

impl Source for Numbered {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let mut doc = self.inner.next_doc()?;
        if doc.is_none() {
            self.finished = true;
            let s = self.inner.stats();
            let corrupt: u64 = s.corrupt.values().sum();
            let intact = s.docs + s.skipped.values().sum::<u64>();
            if corrupt > 0 && intact == 0 {
                return Err(SourceError::Unreadable {
                    path: self.path.clone(),
                    corrupt,
                });
            }
        }
        if let Some(d) = doc.as_mut() {
            d.origin = Some(corpus_stages::Origin {
                file: self.file,
                record: self.next,
            });
            self.next = self.next.saturating_add(1);
        }
        Ok(doc)
    }

    fn stats(&self) -> &SourceStats {
        self.inner.stats()
    }
}

fn open_format(file: &InputFile, config: &InputConfig) -> Result<Box<dyn Source>, SourceError> {
    let source_name = |default: &str| {
        if !config.source.is_empty() {
            config.source.clone()
        } else {
            default.to_string()
        }
    };
    Ok(match file.format {
        Format::Warc => Box::new(warc::WarcSource::open(
            &file.path,
            &config.warc,
            &source_name("web"),
        )?),
        Format::Jsonl => Box::new(jsonl::JsonlSource::open(
            &file.path,
            &config.jsonl,
            &source_name(&default_source_name(&file.path)),
        )?),
        Format::Parquet if crate::remote::is_url_path(&file.path) => {
            return Err(SourceError::Open {
                path: file.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "Parquet input from object storage is not supported yet (WARC and JSONL are)",
                ),
            });
        }
        Format::Parquet => Box::new(parquet::ParquetSource::open(
            &file.path,
            &config.parquet,
            &source_name(&default_source_name(&file.path)),
        )?),
        Format::Html => Box::new(html::HtmlSource::open(&file.path, &source_name("html"))?),
        Format::Auto => {
            return Err(SourceError::Config(format!(
                "{}: format not resolved",
                file.path.display()
            )));
        }
    })
}

/// The file name without its compression and format extensions
/// (`a/wiki-01.jsonl.gz` -> `wiki-01`, `x.warc.wet.gz` -> `x`).
pub fn file_stem(path: &Path) -> String {
    let name = crate::io::file_name(path);
    let mut base = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(&name);
    for ext in [
        ".jsonl", ".ndjson", ".json", ".parquet", ".wet", ".wat", ".warc", ".arc",
    ] {
        if let Some(b) = base.strip_suffix(ext) {
            base = b;
        }
    }
    base.to_string()
}

/// The default source name of a JSONL/Parquet file: its stem up to the first `-`, `_`
/// or `.` (`wiki-00001.jsonl.gz` -> `wiki`).
pub fn default_source_name(path: &Path) -> String {
    let name = crate::io::file_name(path);
    name.split(['-', '_', '.'])
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string()
}

/// A config path: a URL as it is, a local path from `base`.
pub fn locate(base: &Path, spec: &str) -> PathBuf {
    if crate::remote::is_url(spec) {
        PathBuf::from(spec)
    } else {
        crate::io::clean_path(&base.join(spec))
    }
}

/// The text of a list file, local or remote, plain or compressed.
fn read_list(path: &Path) -> Result<String, SourceError> {
    let open_err = |e| SourceError::Open {
        path: path.to_path_buf(),
        source: e,
    };
    let (mut reader, _) = crate::io::open_decompressed(path).map_err(open_err)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut reader, &mut text).map_err(open_err)?;
    Ok(text)
}

/// The inputs of a command (`corpus dedup`, `tokens`, `vocab`, `export`): `paths`
/// (files, directories, globs, URLs) taken from the current directory, expanded by
/// [`expand_inputs`]; with the input config they were read with.
pub fn expand_paths(paths: &[String]) -> Result<(InputConfig, Vec<InputFile>), SourceError> {
    let config = InputConfig {
        paths: paths.to_vec(),
        ..Default::default()
    };
    let files = expand_inputs(&config, Path::new(""))?;
    Ok((config, files))
}

/// [`expand_paths`] for commands that read documents: a WARC or HTML input (pages, not
/// documents) is refused with `advice` (e.g. "is not supported here; extract the text
/// first").
pub fn expand_documents(paths: &[String], advice: &str) -> Result<Vec<InputFile>, SourceError> {
    let (_, files) = expand_paths(paths)?;
    if let Some(f) = files.iter().find(|f| f.is_pages()) {
        let kind = if f.format == Format::Warc {
            "WARC"
        } else {
            "HTML"
        };
        return Err(SourceError::Config(format!(
            "{}: {kind} input {advice}",
            f.path.display()
        )));
    }
    Ok(files)
}

/// Expands the configured inputs into a sorted, de-duplicated list of files with their
/// formats. `base` is the directory relative paths are taken from.
pub fn expand_inputs(config: &InputConfig, base: &Path) -> Result<Vec<InputFile>, SourceError> {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut specs: Vec<(String, PathBuf)> = config
        .paths
        .iter()
        .map(|p| (p.clone(), base.to_path_buf()))
        .collect();
    let mut urls: Vec<PathBuf> = Vec::new();
    if let Some(list) = &config.list {
        let list_path = locate(base, list);
        let text = read_list(&list_path)?;
        let list_base = if !config.list_base.is_empty() {
            locate(base, &config.list_base)
        } else if crate::remote::is_url(list) {
            PathBuf::from(crate::remote::parent(list))
        } else {
            list_path.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        for line in text.lines() {
            let line = line.trim();
            if !line.is_empty() && !line.starts_with('#') {
                specs.push((line.to_string(), list_base.clone()));
            }
        }
    }
    if specs.is_empty() {
        return Err(SourceError::Config(
            "no input: set input.paths or input.list".into(),
        ));
    }
    for (spec, base) in specs {
        // URLs are taken as they are: checking each of a dump's 90,000 objects would
        // cost a request apiece, and one that fails is counted when its shard is read.
        if crate::remote::is_url(&spec) || crate::remote::is_url_path(&base) {
            let joined = match base.to_str() {
                Some(b) if crate::remote::is_url(b) => crate::remote::join(b, &spec),
                _ => spec.clone(),
            };
            urls.push(PathBuf::from(joined));
            continue;
        }
        let full = crate::io::clean_path(&base.join(&spec));
        let full_str = full.to_string_lossy().into_owned();
        if spec.contains(['*', '?', '[']) {
            let mut matched = 0;
            let entries = glob::glob(&full_str)
                .map_err(|e| SourceError::Config(format!("bad glob pattern `{spec}`: {e}")))?;
            for entry in entries {
                let p = entry.map_err(|e| SourceError::Open {
                    path: e.path().to_path_buf(),
                    source: std::io::Error::other(e.to_string()),
                })?;
                if p.is_file() {
                    paths.push(p);
                    matched += 1;
                }
            }
            if matched == 0 {
                return Err(SourceError::Config(format!(
                    "input pattern `{full_str}` matches no file"
                )));
            }
        } else if full.is_dir() {
            let before = paths.len();
            walk_dir(&full, config.format, &mut paths)?;
            if paths.len() == before {
                return Err(SourceError::Config(format!(
                    "input directory {} holds no file of a known format",
                    full.display()
                )));
            }
        } else if full.is_file() {
            paths.push(full);
        } else {
            return Err(SourceError::Open {
                path: full,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
    }
    paths.sort();
    paths.dedup();
    // URLs sort by their text (a listing's order), after local paths.
    urls.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
    urls.dedup();
    paths
        .into_iter()
        .chain(urls)
        .enumerate()
        .map(|(index, path)| {
            let format = match config.format {
                Format::Auto => Format::detect(&path).ok_or_else(|| {
                    SourceError::Config(format!(
                        "{}: cannot tell the format from the name; set input.format",
                        path.display()
                    ))
                })?,
                f => f,
            };
            Ok(InputFile {
                index,
                path,
                format,
            })
        })
        .collect()
}

/// The kept documents (`docs/`) of `dir` when `dir` is the output directory of a pipeline
/// run (`corpus run`, `dedup`, `decontam`: it has `docs/` and `done/`). Such a directory
/// given as input stands for its kept documents only, not its dropped documents, stats,
/// markers or token shards.
pub fn run_output_docs(dir: &Path) -> Option<PathBuf> {
    let docs = dir.join("docs");
    (docs.is_dir() && dir.join("done").is_dir()).then_some(docs)
}

fn walk_dir(dir: &Path, format: Format, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    if let Some(docs) = run_output_docs(dir) {
        return walk_dir(&docs, format, out);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| SourceError::Open {
        path: dir.to_path_buf(),
        source: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::Open {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk_dir(&path, format, out)?;
        } else if format != Format::Auto || Format::detect(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_formats_from_names() {
        let d = |s: &str| Format::detect(Path::new(s));
        assert_eq!(d("a/CC-MAIN-x.warc.gz"), Some(Format::Warc));
        assert_eq!(d("x.warc.wet.gz"), Some(Format::Warc));
        assert_eq!(d("x.WARC"), Some(Format::Warc));
        assert_eq!(d("x.jsonl.zst"), Some(Format::Jsonl));
        assert_eq!(d("x.json.gz"), Some(Format::Jsonl));
        assert_eq!(d("x.parquet"), Some(Format::Parquet));
        assert_eq!(d("a/Page.HTML.gz"), Some(Format::Html));
        assert_eq!(d("x.htm"), Some(Format::Html));
        assert_eq!(d("x.txt"), None);
        assert_eq!(
            html::page_id(Path::new("a/Page.HTML.gz")).as_deref(),
            Some("Page")
        );
        assert_eq!(html::page_id(Path::new("x.warc.gz")), None);
    }

    #[test]
    fn a_run_output_directory_stands_for_its_kept_documents() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        for d in ["docs", "dropped", "stats", "done", "state", "tokens"] {
            std::fs::create_dir_all(out.join(d)).unwrap();
        }
        for f in [
            "docs/part-00000.jsonl.gz",
            "dropped/part-00000.jsonl.gz",
            "stats/part-00000.json",
            "done/part-00000.json",
            "stats.json",
            "tokens/train-00000.parquet",
        ] {
            std::fs::write(out.join(f), b"").unwrap();
        }
        let config = InputConfig {
            paths: vec![out.display().to_string(), dir.path().display().to_string()],
            ..Default::default()
        };
        let files = expand_inputs(&config, Path::new("")).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(names, vec![out.join("docs/part-00000.jsonl.gz")]);
    }

    #[test]
    fn expands_files_dirs_globs_and_lists_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("d/sub")).unwrap();
        for f in [
            "b.jsonl",
            "a.jsonl.gz",
            "d/c.parquet",
            "d/sub/e.warc.gz",
            "d/skip.txt",
        ] {
            std::fs::write(root.join(f), b"").unwrap();
        }
        std::fs::write(root.join("list.txt"), "# comment\n\nb.jsonl\n").unwrap();
        let config = InputConfig {
            paths: vec!["*.jsonl*".into(), "d".into()],
            list: Some("list.txt".into()),
            ..Default::default()
        };
        let files = expand_inputs(&config, root).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            ["a.jsonl.gz", "b.jsonl", "d/c.parquet", "d/sub/e.warc.gz"]
        );
        assert_eq!(files[3].format, Format::Warc);
        assert_eq!(files[3].index, 3);

        let missing = InputConfig {
            paths: vec!["nope.jsonl".into()],
            ..Default::default()
        };
        let err = expand_inputs(&missing, root).unwrap_err().to_string();
        assert!(err.contains("nope.jsonl"), "{err}");
        let empty_glob = InputConfig {
            paths: vec!["*.zzz".into()],
            ..Default::default()
        };
        assert!(expand_inputs(&empty_glob, root).is_err());
    }

    #[test]
    fn default_source_names() {
        assert_eq!(
            default_source_name(Path::new("x/wiki-0001.jsonl.gz")),
            "wiki"
        );
        assert_eq!(default_source_name(Path::new("books.parquet")), "books");
    }
}
