//! `corpus sample RUN_DIR`: a stratified random sample of what a run kept and dropped,
//! for people to read, as Qwen's team reviewed samples of every source by hand.
//!
//! The kept documents (`docs/`) are sampled per source and language, the dropped ones
//! (`dropped/`, every pass) per stage and reason, or all of them by one field (`--by`),
//! after `--where` filters. Only completed shards are read (those with a completion
//! marker of the run's config, so a run still going can be sampled), one file at a time
//! in name order, local or in object storage (JSONL; Parquet locally).
//!
//! Sampling is a reservoir per stratum of the `n` documents with the smallest random
//! keys, where a document's key comes from the seed and its place in the run (file and
//! line) through SplitMix64: one streaming pass, memory bounded by the sample, and the
//! same sample for a seed however the files are read (and the same documents stay in it
//! as more shards complete, unless newer ones draw smaller keys).
//!
//! The page ([`html`]) is self-contained (inline CSS, no script, nothing fetched): per
//! document its id, URL as text, source, language and confidence, length, scores and
//! rule flags, for a dropped one its stage, reason and what the rule measured against
//! its threshold (`drop.detail`), for a near-duplicate its cluster, and the first
//! characters of the text with the rest behind an expander, all HTML-escaped.
//! [`jsonl`] writes the same sample as JSON lines for scripts.

use crate::html::escape as esc;
use crate::remote::Storage;
use crate::report::ReportError;
use crate::report::num;
use crate::sink::DropInfo;
use crate::source::{Format, InputConfig, InputFile, SourceError};
use corpus_stages::Document;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The page written next to `report.html`; the report links to it when it is there.
pub const PAGE: &str = "review.html";

/// Most strata kept: beyond it (say, `--by cluster` over a crawl) the strata with the
/// smallest random keys stay, so memory stays bounded by `MAX_STRATA * n` documents.
pub const MAX_STRATA: usize = 500;

/// Most characters of a text kept for the expander of the page (the JSONL output keeps
/// every character).
pub const MAX_PAGE_CHARS: usize = 20_000;

/// Errors of `corpus sample`.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// Bad options (an unknown `--where` field, `--n 0`).
    #[error("{0}")]
    Usage(String),
    /// The directory is not a run, or one of its files could not be read.
    #[error(transparent)]
    Run(#[from] ReportError),
    /// A document file could not be opened or read on (names the file and offset).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The output could not be written.
    #[error(transparent)]
    Output(#[from] crate::commands::tokens::TokensError),
    /// A listing of the run's directories failed.
    #[error("{path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl SampleError {
    /// True for errors of the command line or of the directory given (exit code 2).
    pub fn is_usage(&self) -> bool {
        match self {
            SampleError::Usage(_) => true,
            SampleError::Run(e) => e.is_invalid(),
            _ => false,
        }
    }
}

/// The field documents are grouped by (`--by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Source name.
    Source,
    /// Language.
    Lang,
    /// The stage that dropped it (`kept` for kept documents).
    Stage,
    /// Stage and reason of the drop (`kept` for kept documents).
    Reason,
    /// Near-duplicate cluster (documents without one are left out).
    Cluster,
}

impl std::str::FromStr for By {
    type Err = SampleError;

    fn from_str(s: &str) -> Result<By, SampleError> {
        Ok(match s {
            "source" => By::Source,
            "lang" => By::Lang,
            "stage" => By::Stage,
            "reason" => By::Reason,
            "cluster" => By::Cluster,
            _ => {
                return Err(SampleError::Usage(format!(
                    "--by {s}: expected source, lang, stage, reason or cluster"
                )));
            }
        })
    }
}

/// The fields `--where FIELD=VALUE` may test.
pub const FIELDS: &[&str] = &[
    "status", "source", "lang", "stage", "reason", "flag", "cluster", "id", "url",
];

/// One `--where FIELD=VALUE`: documents whose field has the value. Filters on the same
/// field are alternatives, filters on different fields must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// One of [`FIELDS`].
    pub field: String,
    /// The value, compared exactly.
    pub value: String,
}

impl std::str::FromStr for Filter {
    type Err = SampleError;

    fn from_str(s: &str) -> Result<Filter, SampleError> {
        let Some((field, value)) = s.split_once('=') else {
            return Err(SampleError::Usage(format!(
                "--where {s}: expected FIELD=VALUE"
            )));
        };
        if !FIELDS.contains(&field) {
            return Err(SampleError::Usage(format!(
                "--where {s}: unknown field `{field}` (fields: {})",
                FIELDS.join(", ")
            )));
        }
        Ok(Filter {
            field: field.to_string(),
            value: value.to_string(),
        })
    }
}

/// What to sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleOptions {
    /// Documents per stratum.
    pub n: usize,
    /// The seed of the random keys.
    pub seed: u64,
    /// Group by one field instead of source and language (kept) and stage and reason
    /// (dropped).
    pub by: Option<By>,
    /// `--where` filters.
    pub filters: Vec<Filter>,
    /// Characters of a text shown before its expander on the page.
    pub chars: usize,
    /// URLs as live links (`rel="noreferrer nofollow"`) instead of text.
    pub links: bool,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            n: 5,
            seed: 0,
            by: None,
            filters: Vec::new(),
            chars: 600,
            links: false,
        }
    }
}

/// One sampled document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampled {
    /// Its stratum.
    pub stratum: String,
    /// The run's file it was read from, relative to the run directory.
    pub file: String,
    /// Its place among the documents of that file, from 0.
    pub record: u64,
    /// The document as written.
    #[serde(flatten)]
    pub doc: Document,
    /// Why it was dropped; `None` for a kept document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropInfo>,
    /// For a near-duplicate that did not survive: the id of its cluster's survivor,
    /// where the dedup's files tell it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survivor: Option<String>,
}

/// One stratum of the sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Stratum {
    /// Its name (`kept / web / en`, `dropped / quality / gopher_short_doc`).
    pub name: String,
    /// Documents of the run in it (after the filters).
    pub seen: u64,
    /// The sampled documents, in the run's file order.
    pub docs: Vec<Sampled>,
}

/// A sample of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The run directory.
    pub dir: PathBuf,
    /// The options it was drawn with.
    pub options: SampleOptions,
    /// Completed shards read.
    pub shards: usize,
    /// Files read.
    pub files: usize,
    /// Kept documents read.
    pub kept: u64,
    /// Dropped documents read.
    pub dropped: u64,
    /// Documents that passed the filters.
    pub matched: u64,
    /// Damaged lines or rows skipped.
    pub corrupt: u64,
    /// Matching documents of the strata beyond [`MAX_STRATA`], left out.
    pub left_out: u64,
    /// The strata: kept ones first, each group in name order.
    pub strata: Vec<Stratum>,
}

/// A document of the run, where it was read and why it was dropped.
struct Candidate {
    key: u64,
    sampled: Sampled,
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Candidate) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Candidate) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    fn cmp(&self, o: &Candidate) -> std::cmp::Ordering {
        (self.key, &self.sampled.file, self.sampled.record).cmp(&(
            o.key,
            &o.sampled.file,
            o.sampled.record,
        ))
    }
}

/// The reservoir of one stratum: the `n` smallest keys seen.
#[derive(Default)]
struct Reservoir {
    seen: u64,
    heap: BinaryHeap<Candidate>,
}

/// A random key from the seed and a name, through SplitMix64.
fn key(seed: u64, name: &str, record: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), seed);
    h ^= record.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    corpus_models::rng::SplitMix64::new(h).next_u64()
}

/// The strata being filled, capped at [`MAX_STRATA`]: the strata with the smallest
/// keys of their names stay. Once the cap is reached the largest key kept only falls,
/// so a stratum left out (or put out) never comes back, and the strata kept hold every
/// document of theirs.
struct Strata {
    n: usize,
    seed: u64,
    by_name: BTreeMap<String, Reservoir>,
    /// (key of the stratum name, name) of the strata kept.
    order: BTreeSet<(u64, String)>,
    /// Documents of strata left out.
    left_out: u64,
}

impl Strata {
    fn offer(&mut self, stratum: String, candidate: impl FnOnce() -> Candidate) {
        if !self.by_name.contains_key(&stratum) {
            let k = key(self.seed, &stratum, u64::MAX);
            if self.order.len() >= MAX_STRATA {
                let last = self.order.last().cloned().expect("full");
                if k > last.0 {
                    self.left_out += 1;
                    return;
                }
                self.order.remove(&last);
                let gone = self.by_name.remove(&last.1).expect("kept");
                self.left_out += gone.seen;
            }
            self.order.insert((k, stratum.clone()));
            self.by_name.insert(stratum.clone(), Reservoir::default());
        }
        let r = self.by_name.get_mut(&stratum).expect("inserted");
        r.seen += 1;
        let c = candidate();
        if r.heap.len() < self.n {
            r.heap.push(c);
        } else if r.heap.peek().is_some_and(|top| c < *top) {
            r.heap.pop();
            r.heap.push(c);
        }
    }
}

/// The values of a `--where` field for a document (none when it has none, every flag
/// for `flag`).
fn field_values(field: &str, doc: &Document, drop: Option<&DropInfo>) -> Vec<String> {
    let one = |v: Option<&str>| v.map(str::to_string).into_iter().collect();
    match field {
        "status" => vec![if drop.is_some() { "dropped" } else { "kept" }.to_string()],
        "source" => vec![doc.source.clone()],
        "lang" => one(doc.meta.lang.as_deref()),
        "stage" => one(drop.map(|d| d.stage.as_str())),
        "reason" => one(drop.map(|d| d.reason.as_str())),
        "flag" => doc.scores.flags.clone(),
        "cluster" => one(cluster(doc).as_deref()),
        "id" => vec![doc.id.clone()],
        "url" => one(doc.meta.url.as_deref()),
        _ => Vec::new(),
    }
}

/// The near-duplicate cluster of a document (`meta.extra.minhash.cluster`).
fn cluster(doc: &Document) -> Option<String> {
    let c = doc.meta.extra.get("minhash")?.get("cluster")?;
    Some(c.as_str().map_or_else(|| c.to_string(), str::to_string))
}

/// The stratum of a document, `None` to leave it out.
fn stratum(by: Option<By>, doc: &Document, drop: Option<&DropInfo>) -> Option<String> {
    let lang = doc.meta.lang.as_deref().unwrap_or("und");
    let status = if drop.is_some() { "dropped" } else { "kept" };
    Some(match (by, drop) {
        (None, None) => format!("kept / {} / {lang}", doc.source),
        (None, Some(d)) => format!("dropped / {} / {}", d.stage, d.reason),
        (Some(By::Source), _) => format!("{status} / {}", doc.source),
        (Some(By::Lang), _) => format!("{status} / {lang}"),
        (Some(By::Stage | By::Reason), None) => "kept".to_string(),
        (Some(By::Stage), Some(d)) => format!("dropped / {}", d.stage),
        (Some(By::Reason), Some(d)) => format!("dropped / {} / {}", d.stage, d.reason),
        (Some(By::Cluster), _) => format!("cluster {}", cluster(doc)?),
    })
}

/// A document file of the run to read: its path, its name in the sample (relative to
/// the run, with a pre-barrier file named as it is once moved to `dropped/`) and
/// whether it holds dropped documents.
struct RunFile {
    path: PathBuf,
    name: String,
    dropped: bool,
}

impl RunFile {
    /// What the random keys of its documents come from: its name without the format's
    /// extension, so that a JSONL and a Parquet run give the same sample.
    fn key_name(&self) -> String {
        let (dir, file) = self.name.rsplit_once('/').unwrap_or(("", &self.name));
        format!("{dir}/{}", crate::source::file_stem(Path::new(file)))
    }
}

/// The document files of the completed shards of the run in `root`: `docs/` and
/// `dropped/` of the shards with a completion marker, the pre-barrier drops moved to
/// `dropped/`, and those of completed shards of a pass before a barrier still in its
/// `pre/` directory. In name order.
fn run_files(root: &Path) -> Result<(Vec<RunFile>, usize), SampleError> {
    let storage = Storage::of(root);
    let list = |dir: &Path| {
        storage.list(dir).map_err(|source| SampleError::List {
            path: dir.to_path_buf(),
            source,
        })
    };
    let part = |name: &str| name.split('.').next().unwrap_or("").to_string();
    let is_doc_file =
        |name: &str| name.starts_with("part-") && Format::detect(Path::new(name)).is_some();
    let completed: BTreeSet<String> = crate::report::completed_shards(root)?
        .iter()
        .map(|n| part(n))
        .collect();
    let mut files = BTreeMap::new();
    for (dir, dropped) in [("docs", false), ("dropped", true)] {
        for name in list(&root.join(dir))? {
            if is_doc_file(&name) && (name.contains(".before-") || completed.contains(&part(&name)))
            {
                let path = root.join(dir).join(&name);
                files.insert(
                    format!("{dir}/{name}"),
                    RunFile {
                        path,
                        name: format!("{dir}/{name}"),
                        dropped,
                    },
                );
            }
        }
    }
    let config = crate::report::run_config(root)?;
    let kinds: Vec<&str> = crate::report::stage_tables(&config)
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    for (barrier, pre) in crate::report::pre_roots(root, &kinds) {
        let done: BTreeSet<String> = crate::report::completed_shards(&pre)?
            .iter()
            .map(|n| part(n))
            .collect();
        for name in list(&pre.join("dropped"))? {
            if !is_doc_file(&name) || !done.contains(&part(&name)) {
                continue;
            }
            let ext = &name[part(&name).len() + 1..];
            let moved = format!("dropped/{}.before-{barrier}.{ext}", part(&name));
            files.entry(moved.clone()).or_insert(RunFile {
                path: pre.join("dropped").join(&name),
                name: moved,
                dropped: true,
            });
        }
    }
    Ok((files.into_values().collect(), completed.len()))
}

/// Draws the sample of the run in `root`.
pub fn sample(root: &Path, options: &SampleOptions) -> Result<Sample, SampleError> {
    if options.n == 0 {
        return Err(SampleError::Usage("--n must be at least 1".into()));
    }
    let (files, shards) = run_files(root)?;
    if shards == 0 {
        return Err(
            ReportError::from(corpus_stages::minhash::files::FileError::Invalid {
                path: root.to_path_buf(),
                message: "no completed shard (done/part-*.json): give the output directory of \
                      `corpus run`"
                    .into(),
            })
            .into(),
        );
    }
    let mut by_field: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &options.filters {
        by_field.entry(&f.field).or_default().push(&f.value);
    }
    let mut strata = Strata {
        n: options.n,
        seed: options.seed,
        by_name: BTreeMap::new(),
        order: BTreeSet::new(),
        left_out: 0,
    };
    let mut s = Sample {
        dir: root.to_path_buf(),
        options: options.clone(),
        shards,
        files: files.len(),
        kept: 0,
        dropped: 0,
        matched: 0,
        corrupt: 0,
        left_out: 0,
        strata: Vec::new(),
    };
    for (index, file) in files.iter().enumerate() {
        let key_name = file.key_name();
        let input = InputFile {
            index,
            path: file.path.clone(),
            format: Format::detect(&file.path).expect("listed by format"),
        };
        let mut source = crate::source::open(&input, &InputConfig::default())?;
        let mut corrupt = 0;
        let mut record = 0u64;
        while let Some(mut doc) = source.next_intact(&mut |e| {
            corrupt += 1;
            crate::source::warn_skipped(e);
        })? {
            let at = record;
            record += 1;
            let drop = DropInfo::take_from(&mut doc.meta.extra);
            if file.dropped {
                s.dropped += 1;
            } else {
                s.kept += 1;
            }
            let pass = by_field.iter().all(|(field, values)| {
                field_values(field, &doc, drop.as_ref())
                    .iter()
                    .any(|v| values.contains(&v.as_str()))
            });
            if !pass {
                continue;
            }
            let Some(name) = stratum(options.by, &doc, drop.as_ref()) else {
                continue;
            };
            s.matched += 1;
            let k = key(options.seed, &key_name, at);
            strata.offer(name.clone(), || Candidate {
                key: k,
                sampled: Sampled {
                    stratum: name,
                    file: file.name.clone(),
                    record: at,
                    doc,
                    drop,
                    survivor: None,
                },
            });
        }
        s.corrupt += corrupt;
    }
    s.left_out = strata.left_out;
    let mut out: Vec<Stratum> = strata
        .by_name
        .into_iter()
        .map(|(name, r)| {
            let mut docs: Vec<Sampled> = r.heap.into_iter().map(|c| c.sampled).collect();
            docs.sort_by(|a, b| (&a.file, a.record).cmp(&(&b.file, b.record)));
            Stratum {
                name,
                seen: r.seen,
                docs,
            }
        })
        .collect();
    // Near-duplicates name the survivor of their cluster.
    let survived = |d: &Sampled| d.doc.meta.extra.get("minhash")?.get("survivor")?.as_bool();
    let wanted: BTreeSet<String> = out
        .iter()
        .flat_map(|st| &st.docs)
        .filter(|d| survived(d) == Some(false))
        .filter_map(|d| cluster(&d.doc))
        .collect();
    let found = survivors(root, &wanted);
    for d in out.iter_mut().flat_map(|st| &mut st.docs) {
        if survived(d) == Some(false) {
            d.survivor = cluster(&d.doc).and_then(|c| found.get(&c).cloned());
        }
    }
    // Kept strata first, then dropped ones, each in name order.
    out.sort_by_key(|st| (st.name.starts_with("dropped"), st.name.clone()));
    s.strata = out;
    Ok(s)
}

/// `corpus sample`: draws the sample of the run in `root` and writes it to `output`
/// (`-`: standard output; default [`PAGE`], or standard output with `jsonl`) as the
/// page or, with `jsonl`, as JSON lines; says what it wrote on standard error unless
/// `quiet`.
pub fn command(
    root: &Path,
    options: &SampleOptions,
    output: Option<&Path>,
    jsonl: bool,
    quiet: bool,
) -> Result<(), SampleError> {
    let s = sample(root, options)?;
    let default = if jsonl { "-" } else { PAGE };
    let output = output.unwrap_or(Path::new(default));
    let bytes = if jsonl { self::jsonl(&s) } else { html(&s) };
    crate::commands::tokens::write_output(output, bytes.as_bytes())?;
    if quiet {
        return Ok(());
    }
    let sampled: usize = s.strata.iter().map(|st| st.docs.len()).sum();
    eprintln!(
        "corpus sample: {sampled} documents in {} strata from {} completed shards ({} kept, {} \
         dropped read) -> {}",
        s.strata.len(),
        s.shards,
        s.kept,
        s.dropped,
        output.display()
    );
    Ok(())
}

/// The sample as JSON lines: one document per line as the run wrote it (`id`, `source`,
/// `text`, `meta`, `scores`, `drop`), with its `stratum`, `file` and `record`.
pub fn jsonl(s: &Sample) -> String {
    let mut out = String::new();
    for st in &s.strata {
        for d in &st.docs {
            out.push_str(&serde_json::to_string(d).expect("a document serializes"));
            out.push('\n');
        }
    }
    out
}

const STYLE: &str = "\
.doc{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:10px 14px;margin:0 0 10px}\
.doc.dropped{border-left:4px solid #e15759}.doc.kept{border-left:4px solid #59a14f}\
.doc table{width:auto}.doc td{white-space:normal;text-align:left;vertical-align:top}\
.doc td:first-child{color:#666;font-size:12px;white-space:nowrap}\
.why{color:#b22;font-weight:600}\
.text{white-space:pre-wrap;word-break:break-word;font:13px/1.5 ui-monospace,Menlo,Consolas,monospace;\
background:#f8f9fa;border-radius:6px;padding:8px 10px;margin:6px 0 0}\
details>summary{cursor:pointer;color:#4e79a7;font-size:12px;margin-top:4px}\
code{word-break:break-all}.toc a{margin-right:12px;white-space:nowrap}";

/// The sample as one self-contained HTML page.
pub fn html(s: &Sample) -> String {
    let o = &s.options;
    let mut h = String::with_capacity(64 << 10);
    let dir = esc(&s.dir.display().to_string());
    let _ = writeln!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>corpus samples: {dir}</title><style>{}{STYLE}</style></head><body><main>",
        crate::report::STYLE
    );
    let filters: Vec<String> = o
        .filters
        .iter()
        .map(|f| format!("{}={}", f.field, f.value))
        .collect();
    let by = match o.by {
        None => "source and language (kept), stage and reason (dropped)",
        Some(By::Source) => "source",
        Some(By::Lang) => "language",
        Some(By::Stage) => "stage",
        Some(By::Reason) => "stage and reason",
        Some(By::Cluster) => "near-duplicate cluster",
    };
    let _ = writeln!(
        h,
        "<h1>corpus samples</h1><div class=\"sub\">{dir} &middot; {} completed shard(s), {} \
         file(s) &middot; up to {} per stratum by {by} &middot; seed {}{}</div>",
        s.shards,
        s.files,
        o.n,
        o.seed,
        if filters.is_empty() {
            String::new()
        } else {
            format!(" &middot; where {}", esc(&filters.join(" and ")))
        }
    );
    let sampled: u64 = s.strata.iter().map(|st| st.docs.len() as u64).sum();
    crate::report::kpi_row(
        &mut h,
        &[
            (num(s.kept), "kept documents read".into()),
            (num(s.dropped), "dropped documents read".into()),
            (num(s.matched), "matching".into()),
            (num(s.strata.len() as u64), "strata".into()),
            (num(sampled), "sampled".into()),
        ],
    );
    if s.corrupt > 0 || s.left_out > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} damaged line(s) skipped; {} matching document(s) in strata \
             left out (at most {MAX_STRATA} strata are kept, chosen at random).</p>",
            s.corrupt, s.left_out
        );
    }
    if s.strata.is_empty() {
        h.push_str("<div class=\"card\"><p class=\"note\">No document matched.</p></div>\n");
    } else {
        h.push_str("<div class=\"card toc\">");
        for (i, st) in s.strata.iter().enumerate() {
            let _ = write!(
                h,
                "<a href=\"#s{i}\">{}</a> ",
                esc(&format!("{} ({})", st.name, st.seen))
            );
        }
        h.push_str("</div>\n");
    }
    for (i, st) in s.strata.iter().enumerate() {
        let _ = writeln!(
            h,
            "<h2 id=\"s{i}\">{} <span class=\"note\">{} of {} document(s)</span></h2>",
            esc(&st.name),
            st.docs.len(),
            num(st.seen)
        );
        for d in &st.docs {
            document(&mut h, d, o);
        }
    }
    h.push_str(
        "<p class=\"note\">Built by <code>corpus sample</code> from the document files of the \
         run's completed shards (docs/, dropped/); texts are shown as written, escaped.</p>\n",
    );
    h.push_str("</main></body></html>\n");
    h
}

/// One document's card.
fn document(h: &mut String, d: &Sampled, o: &SampleOptions) {
    let doc = &d.doc;
    let m = &doc.meta;
    let class = if d.drop.is_some() { "dropped" } else { "kept" };
    let _ = write!(h, "<div class=\"doc {class}\"><table>");
    let mut row = |label: &str, value: String| {
        let _ = write!(h, "<tr><td>{label}</td><td>{value}</td></tr>");
    };
    if let Some(drop) = &d.drop {
        let detail = drop
            .detail
            .as_deref()
            .map(|x| format!(": {}", esc(x)))
            .unwrap_or_default();
        row(
            "dropped",
            format!(
                "<span class=\"why\">{} / {}{detail}</span>",
                esc(&drop.stage),
                esc(&drop.reason)
            ),
        );
    }
    row("id", format!("<code>{}</code>", esc(&doc.id)));
    if let Some(url) = &m.url {
        let live = o.links && (url.starts_with("http://") || url.starts_with("https://"));
        row(
            "url",
            if live {
                format!(
                    "<a href=\"{0}\" rel=\"noreferrer noopener nofollow\"><code>{0}</code></a>",
                    esc(url)
                )
            } else {
                format!("<code>{}</code>", esc(url))
            },
        );
    }
    if let Some(title) = &m.title {
        row("title", esc(title));
    }
    let lang = match (&m.lang, m.lang_score) {
        (Some(l), Some(c)) => format!(" &middot; {} ({c:.2})", esc(l)),
        (Some(l), None) => format!(" &middot; {}", esc(l)),
        _ => String::new(),
    };
    row(
        "source",
        format!(
            "{}{lang} &middot; {} characters, {} bytes",
            esc(&doc.source),
            num(doc.text.chars().count() as u64),
            num(doc.text.len() as u64)
        ),
    );
    let mut scores = Vec::new();
    if let Some(q) = doc.scores.quality {
        scores.push(format!("quality {q:.3}"));
    }
    if let Some(x) = doc.scores.safety {
        scores.push(format!("safety {x:.3}"));
    }
    scores.extend(doc.scores.flags.iter().map(|f| esc(f)));
    if !scores.is_empty() {
        row("scores", scores.join(" &middot; "));
    }
    if let Some(c) = m.extra.get("minhash") {
        let survivor = match (&d.survivor, c.get("survivor").and_then(|s| s.as_bool())) {
            (_, Some(true)) => " &middot; this document survives".to_string(),
            (Some(id), _) => format!(" &middot; survivor <code>{}</code>", esc(id)),
            (None, _) => String::new(),
        };
        row(
            "cluster",
            format!(
                "<code>{}</code> of {} documents{survivor}",
                esc(&cluster(doc).unwrap_or_default()),
                c.get("size").map(|s| s.to_string()).unwrap_or_default()
            ),
        );
    }
    if let Some(x) = m.extra.get("decontam") {
        row("decontam", format!("<code>{}</code>", esc(&x.to_string())));
    }
    row(
        "from",
        format!("<code>{}</code> document {}", esc(&d.file), d.record),
    );
    h.push_str("</table>");
    // The first characters, then the rest (up to MAX_PAGE_CHARS) behind an expander.
    let cut = |n: usize| {
        doc.text
            .char_indices()
            .nth(n)
            .map_or(doc.text.len(), |(i, _)| i)
    };
    let (head, tail) = doc.text.split_at(cut(o.chars));
    let _ = write!(h, "<div class=\"text\">{}</div>", esc(head));
    if !tail.is_empty() {
        let shown = cut(MAX_PAGE_CHARS.max(o.chars));
        let rest = &doc.text[head.len()..shown];
        let more = doc.text.len() - shown;
        let _ = write!(
            h,
            "<details><summary>the rest ({} characters{})</summary><div class=\"text\">{}</div></details>",
            num(tail.chars().count() as u64),
            if more > 0 {
                format!(", the last {} bytes left out", num(more as u64))
            } else {
                String::new()
            },
            esc(rest)
        );
    }
    h.push_str("</div>\n");
}

/// The survivors of the near-duplicate clusters (`meta.extra.minhash.cluster`, named
/// `file:document`) in `wanted`, by cluster: the survivor's id, found from the dedup's
/// decisions (`clusters/fNNNNNN.dec` in its work directory) and the documents its filter
/// read (the `pre/` documents of a run, or the inputs its markers name). Best effort: a
/// cluster whose files are gone or foreign is left out.
fn survivors(root: &Path, wanted: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(config) = crate::report::run_config(root) else {
        return found;
    };
    let tables = crate::report::stage_tables(&config);
    let kinds: Vec<&str> = tables.iter().map(|(_, k)| *k).collect();
    let Some((table, _)) = tables
        .iter()
        .find(|(_, k)| *k == corpus_stages::minhash::KIND)
    else {
        return found;
    };
    let Ok(corpus_stages::StageConfig::MinhashDedup(dedup)) =
        toml::Value::Table((*table).clone()).try_into::<corpus_stages::StageConfig>()
    else {
        return found;
    };
    let work = if dedup.work_dir.as_os_str().is_empty() {
        root.join("minhash")
    } else {
        dedup.work_dir.clone()
    };
    let storage = Storage::of(&work);
    // The survivor of each wanted cluster, by its position in the filter's input.
    let mut positions: BTreeMap<corpus_stages::Origin, String> = BTreeMap::new();
    let clusters = work.join("clusters");
    for name in storage.list(&clusters).unwrap_or_default() {
        let path = clusters.join(&name);
        let Some(bytes) = storage.read(&path).ok().flatten() else {
            continue;
        };
        let Ok((_, decisions)) =
            corpus_stages::minhash::files::decode_decisions(&dedup, &bytes, &path)
        else {
            continue;
        };
        for d in decisions {
            let cluster = d.cluster.to_string();
            if d.survivor && wanted.contains(&cluster) {
                positions.insert(d.key, cluster);
            }
        }
    }
    // The documents the filter read: the `pre/` documents of the run, else (`corpus
    // dedup --fuzzy`) the inputs its markers name.
    let pre = crate::report::pre_roots(root, &kinds)
        .into_iter()
        .find(|(name, _)| name.starts_with(corpus_stages::minhash::KIND))
        .map(|(_, pre)| pre);
    let mut by_file: BTreeMap<u32, BTreeMap<u32, String>> = BTreeMap::new();
    for (key, cluster) in positions {
        by_file
            .entry(key.file)
            .or_default()
            .insert(key.record, cluster);
    }
    for (file, mut records) in by_file {
        let part = crate::shard::Layout::part(file as usize);
        let input = pre
            .as_ref()
            .and_then(|pre| {
                let docs = pre.join("docs");
                let names = Storage::of(&docs).list(&docs).ok()?;
                let name = names
                    .into_iter()
                    .find(|n| n.starts_with(&format!("{part}.")))?;
                Some(docs.join(name))
            })
            .or_else(|| {
                let marker =
                    crate::shard::Marker::read(&root.join("done").join(format!("{part}.json")))?;
                Some(if marker.input.is_relative() {
                    root.join(marker.input)
                } else {
                    marker.input
                })
            });
        let Some(path) = input else { continue };
        let Some(format) = Format::detect(&path) else {
            continue;
        };
        let input = InputFile {
            index: file as usize,
            path,
            format,
        };
        let Ok(mut source) = crate::source::open(&input, &InputConfig::default()) else {
            continue;
        };
        let mut record = 0u32;
        while !records.is_empty() {
            let Ok(Some(doc)) = source.next_intact(&mut |_| {}) else {
                break;
            };
            if let Some(cluster) = records.remove(&record) {
                found.insert(cluster, doc.id);
            }
            record += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::OutputFormat;

    /// A run of the `length` stage (at least 40 characters) over documents with
    /// hostile text, written in `format`; returns its directory.
    fn run(dir: &Path, format: OutputFormat) -> PathBuf {
        let input = dir.join("web-00000.jsonl");
        let mut lines = String::new();
        for i in 0..12 {
            let text = if i % 3 == 0 {
                "short</textarea>".to_string()
            } else {
                format!("document {i}: </textarea><script>alert({i})</script> & more text")
            };
            let doc = serde_json::json!({
                "id": format!("<b>{i}</b>"),
                "text": text,
                "url": "javascript:alert(\"x\")",
                "source": if i % 2 == 0 { "web" } else { "wiki\"><script>" },
            });
            lines.push_str(&format!("{doc}\n"));
        }
        lines.push_str("{not json\n");
        std::fs::write(&input, lines).unwrap();
        let out = dir.join(format!("out-{}", format.extension()));
        let stage = toml::from_str("kind = \"length\"\nmin_chars = 40").unwrap();
        let config = crate::commands::run::command_config(
            vec![input.display().to_string()],
            &out,
            stage,
            true,
            Some(format),
        )
        .unwrap();
        crate::plan::run(&config, &crate::executor::RunOptions::default()).unwrap();
        out
    }

    #[test]
    fn hostile_text_is_escaped_and_nothing_is_fetched_or_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), OutputFormat::Jsonl);
        let options = SampleOptions {
            n: 20,
            links: true,
            chars: 10,
            ..Default::default()
        };
        let s = sample(&out, &options).unwrap();
        assert_eq!((s.kept, s.dropped, s.shards), (8, 4, 1));
        let page = html(&s);
        for banned in [
            "<script",
            "</textarea",
            "<code><b>",
            "wiki\">",
            "href=\"javascript",
            "http",
        ] {
            assert!(!page.contains(banned), "{banned} in the page");
        }
        for escaped in [
            "&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
            "&lt;b&gt;1&lt;/b&gt;",
            "wiki&quot;&gt;&lt;script&gt;",
            "javascript:alert(&quot;x&quot;)",
            "length / too_short: characters 16 &lt; 40",
            "<details><summary>the rest",
        ] {
            assert!(page.contains(escaped), "{escaped} not in the page");
        }
        // A damaged line is counted, skipped and named on stderr; the rest reads on.
        let docs = out.join("docs/part-00000.jsonl.gz");
        let mut bytes = std::fs::read(&docs).unwrap();
        bytes.extend(crate::sink::jsonl::compress_member(b"{not json\n", 6));
        std::fs::write(&docs, bytes).unwrap();
        let damaged = sample(&out, &options).unwrap();
        assert_eq!((damaged.corrupt, damaged.kept), (1, 8));
        assert!(html(&damaged).contains("1 damaged line(s) skipped"));
        // Kept strata by source and language, then dropped ones by stage and reason.
        let names: Vec<&str> = s.strata.iter().map(|st| st.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kept / web / und",
                "kept / wiki\"><script> / und",
                "dropped / length / too_short"
            ]
        );
    }

    #[test]
    fn a_seed_gives_the_same_bytes_and_parquet_runs_read_as_jsonl_ones() {
        let dir = tempfile::tempdir().unwrap();
        let options = SampleOptions {
            n: 2,
            seed: 11,
            ..Default::default()
        };
        let jsonl_run = run(dir.path(), OutputFormat::Jsonl);
        let parquet_run = run(dir.path(), OutputFormat::Parquet);
        let a = jsonl(&sample(&jsonl_run, &options).unwrap());
        assert_eq!(a, jsonl(&sample(&jsonl_run, &options).unwrap()));
        assert_eq!(a.lines().count(), 6);
        let other = SampleOptions {
            seed: 12,
            ..options.clone()
        };
        assert_ne!(a, jsonl(&sample(&jsonl_run, &other).unwrap()));
        // The same documents, drop details included, whichever format the run wrote.
        let strip = |text: String| -> Vec<serde_json::Value> {
            text.lines()
                .map(|l| {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("file");
                    v
                })
                .collect()
        };
        let p = jsonl(&sample(&parquet_run, &options).unwrap());
        assert_eq!(strip(p), strip(a.clone()));
        assert!(a.contains("\"detail\":\"characters 16 < 40\""), "{a}");
    }

    #[test]
    fn past_the_cap_the_same_strata_stay_whatever_the_order() {
        let fill = |names: &[String]| {
            let mut strata = Strata {
                n: 2,
                seed: 9,
                by_name: BTreeMap::new(),
                order: BTreeSet::new(),
                left_out: 0,
            };
            for (i, name) in names.iter().enumerate() {
                for record in 0..3 {
                    strata.offer(name.clone(), || Candidate {
                        key: key(9, name, record),
                        sampled: Sampled {
                            stratum: name.clone(),
                            file: format!("docs/part-{i:05}"),
                            record,
                            doc: Document::new(format!("{i}/{record}"), "web", "t"),
                            drop: None,
                            survivor: None,
                        },
                    });
                }
            }
            let kept: Vec<(String, u64, Vec<u64>)> = strata
                .by_name
                .into_iter()
                .map(|(name, r)| {
                    let mut records: Vec<u64> =
                        r.heap.into_iter().map(|c| c.sampled.record).collect();
                    records.sort();
                    (name, r.seen, records)
                })
                .collect();
            (kept, strata.left_out)
        };
        let mut names: Vec<String> = (0..MAX_STRATA + 100)
            .map(|i| format!("cluster {i}"))
            .collect();
        let (kept, left_out) = fill(&names);
        assert_eq!((kept.len(), left_out), (MAX_STRATA, 300));
        assert!(
            kept.iter()
                .all(|(_, seen, records)| *seen == 3 && records.len() == 2)
        );
        names.reverse();
        assert_eq!(fill(&names), (kept, left_out));
    }

    #[test]
    fn filters_and_strata_follow_the_options() {
        let dir = tempfile::tempdir().unwrap();
        let out = run(dir.path(), OutputFormat::Jsonl);
        let filters = vec![
            "status=kept".parse().unwrap(),
            "source=web".parse().unwrap(),
        ];
        let options = SampleOptions {
            n: 100,
            filters,
            by: Some(By::Lang),
            ..Default::default()
        };
        let s = sample(&out, &options).unwrap();
        assert_eq!(s.matched, 4);
        assert_eq!(s.strata.len(), 1);
        assert_eq!(s.strata[0].name, "kept / und");
        assert!(
            s.strata[0]
                .docs
                .iter()
                .all(|d| d.drop.is_none() && d.doc.source == "web")
        );
        let by_stage = SampleOptions {
            by: Some(By::Stage),
            ..Default::default()
        };
        let names: Vec<String> = sample(&out, &by_stage)
            .unwrap()
            .strata
            .into_iter()
            .map(|st| st.name)
            .collect();
        assert_eq!(names, ["kept", "dropped / length"]);
        // No document has a cluster: nothing to show by cluster.
        let by_cluster = SampleOptions {
            by: Some(By::Cluster),
            ..Default::default()
        };
        assert!(sample(&out, &by_cluster).unwrap().strata.is_empty());
        for bad in ["colour=red", "source"] {
            let e = bad.parse::<Filter>().unwrap_err();
            assert!(e.is_usage() && e.to_string().contains(bad), "{e}");
        }
        assert!("size".parse::<By>().unwrap_err().is_usage());
        let none = SampleOptions {
            n: 0,
            ..Default::default()
        };
        assert!(sample(&out, &none).unwrap_err().is_usage());
        let e = sample(dir.path(), &SampleOptions::default()).unwrap_err();
        assert!(
            e.is_usage() && e.to_string().contains("no completed shard"),
            "{e}"
        );
    }
}
