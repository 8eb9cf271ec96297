//! `corpus tokens`: encode documents to token ids, pack them into training shards
//! ([`pack`](super::pack)), report token counts.
//!
//! Documents are read with the pipeline's own [sources](crate::source) (JSONL and Parquet,
//! as the pipeline writes them) and encoded on worker threads, each with its own clone of
//! the [`Tokenizer`]; results come back in input order, so every output is the same for
//! any thread count.

use crate::html::escape;
use crate::source::{self, InputConfig, InputFile, SourceError};
use corpus_models::tokenizer::{Pattern, Rank, Tokenizer, TokenizerError, VocabSource};
use corpus_stages::Document;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Which tokenizer to use: vocabulary, pattern, reserved extra tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerSpec {
    /// `cl100k` or the path of a tiktoken-format file.
    pub vocab: String,
    /// `cl100k`, `qwen` or a regex.
    pub pattern: String,
    /// Number of reserved `<|extra_N|>` tokens after the three named specials.
    pub extras: u32,
}

impl TokenizerSpec {
    /// Loads the tokenizer.
    pub fn load(&self) -> Result<Tokenizer, TokensError> {
        Ok(Tokenizer::load(
            &VocabSource::parse(&self.vocab),
            &Pattern::parse(&self.pattern),
            self.extras,
        )?)
    }
}

/// Errors of the token commands.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// Loading or using the tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// Encoding one document failed.
    #[error("{path}: document {id}: {source}")]
    Encode {
        /// The input file.
        path: PathBuf,
        /// The document id.
        id: String,
        /// The cause.
        source: TokenizerError,
    },
    /// An input could not be read (names the file, record and byte offset).
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Writing the output stream failed (a closed pipe included).
    #[error("writing output: {0}")]
    Write(#[source] std::io::Error),
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// The plan of `corpus tokens pack` failed.
    #[error(transparent)]
    Run(Box<crate::executor::RunError>),
}

impl TokensError {
    /// A file error with any displayable cause.
    pub fn file(path: &Path, e: impl std::fmt::Display) -> TokensError {
        TokensError::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    /// True for errors of the command line rather than of the data.
    pub fn is_usage(&self) -> bool {
        match self {
            TokensError::Run(e) => e.is_usage(),
            _ => matches!(
                self,
                TokensError::Usage(_)
                    | TokensError::Tokenizer(TokenizerError::Pattern(_))
                    | TokensError::Source(SourceError::Config(_))
            ),
        }
    }
}

/// One encoded document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocTokens {
    /// Index of its input file in the sorted input list.
    pub file: usize,
    /// Document id.
    pub id: String,
    /// Source name.
    pub source: String,
    /// Language, when the document carries one.
    pub lang: Option<String>,
    /// UTF-8 bytes of its text.
    pub bytes: u64,
    /// Token ids (no special tokens).
    pub ids: Vec<Rank>,
}

/// Expands input paths (files, directories, globs) to JSONL/Parquet files. The output
/// directory of a pipeline run (`corpus run`, `dedup`, `decontam`: it has `docs/` and
/// `done/`) stands for its kept documents, `docs/`
/// (`source::run_output_docs`, as for every input).
pub fn expand(inputs: &[String]) -> Result<Vec<InputFile>, TokensError> {
    Ok(source::expand_documents(
        inputs,
        "holds pages, not documents; extract or run the pipeline first",
    )?)
}

/// Worker threads for `threads` (0: one per core).
pub fn resolve_threads(threads: usize) -> usize {
    crate::parallel::threads(threads)
}

/// Documents per batch handed to a worker.
const BATCH_DOCS: usize = 256;
/// Text bytes per batch at most.
const BATCH_BYTES: usize = 4 << 20;

/// Reads every document of `files` in order, encodes them on `threads` workers and
/// calls `each` with the results in input order. The first unreadable record, encoding
/// failure or error of `each` stops the run and is returned.
pub fn encode_documents(
    files: &[InputFile],
    tokenizer: &Tokenizer,
    threads: usize,
    mut each: impl FnMut(DocTokens) -> Result<(), TokensError>,
) -> Result<(), TokensError> {
    let input = InputConfig::default();
    crate::parallel::stream(
        resolve_threads(threads),
        // A clone per worker: tokenizers should not share their regex.
        || tokenizer.clone(),
        |sink| {
            let mut batch: Vec<(usize, Document)> = Vec::new();
            let mut bytes = 0;
            for (k, file) in files.iter().enumerate() {
                let mut src = source::open(file, &input)?;
                while let Some(doc) = src.next_intact(&mut source::warn_skipped)? {
                    bytes += doc.text.len();
                    batch.push((k, doc));
                    if batch.len() >= BATCH_DOCS || bytes >= BATCH_BYTES {
                        if !sink(std::mem::take(&mut batch)) {
                            return Ok(());
                        }
                        bytes = 0;
                    }
                }
            }
            if !batch.is_empty() {
                sink(batch);
            }
            Ok(())
        },
        |tok, batch| {
            batch
                .into_iter()
                .map(|(file, doc)| encode_one(tok, &files[file], file, doc))
                .collect::<Result<Vec<_>, _>>()
        },
        |docs| docs?.into_iter().try_for_each(&mut each),
    )
}

fn encode_one(
    tok: &Tokenizer,
    file: &InputFile,
    index: usize,
    doc: Document,
) -> Result<DocTokens, TokensError> {
    let encoded = corpus_stages::tokenize::encode(tok, &doc);
    let ids = encoded.map_err(|source| TokensError::Encode {
        path: file.path.clone(),
        id: doc.id.clone(),
        source,
    })?;
    Ok(DocTokens {
        file: index,
        bytes: doc.text.len() as u64,
        lang: doc.meta.lang,
        id: doc.id,
        source: doc.source,
        ids,
    })
}

/// Counts of `corpus tokens encode`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Documents encoded.
    pub docs: u64,
    /// Tokens written.
    pub tokens: u64,
    /// UTF-8 bytes of text encoded.
    pub bytes: u64,
}

/// `corpus tokens encode`: one JSON line `{"id": ..., "ids": [...]}` per document, in
/// input order, to `out`.
pub fn encode_jsonl(
    files: &[InputFile],
    tokenizer: &Tokenizer,
    threads: usize,
    out: &mut dyn Write,
) -> Result<EncodeSummary, TokensError> {
    let mut summary = EncodeSummary::default();
    let mut line = Vec::with_capacity(1 << 16);
    encode_documents(files, tokenizer, threads, |d| {
        line.clear();
        line.extend_from_slice(b"{\"id\":");
        serde_json::to_writer(&mut line, &d.id).map_err(|e| TokensError::Usage(e.to_string()))?;
        line.extend_from_slice(b",\"ids\":[");
        for (i, id) in d.ids.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            line.extend_from_slice(id.to_string().as_bytes());
        }
        line.extend_from_slice(b"]}\n");
        out.write_all(&line).map_err(TokensError::Write)?;
        summary.docs += 1;
        summary.tokens += d.ids.len() as u64;
        summary.bytes += d.bytes;
        Ok(())
    })?;
    out.flush().map_err(TokensError::Write)?;
    Ok(summary)
}

/// `corpus tokens encode` into a file, written atomically (`-`: standard output).
pub fn encode_to_path(
    files: &[InputFile],
    tokenizer: &Tokenizer,
    threads: usize,
    path: &Path,
) -> Result<EncodeSummary, TokensError> {
    if path == Path::new("-") {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        return encode_jsonl(files, tokenizer, threads, &mut out);
    }
    let file = crate::io::AtomicFile::new(path);
    let f = std::fs::File::create(file.tmp_path()).map_err(|e| TokensError::file(path, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
    let summary = encode_jsonl(files, tokenizer, threads, &mut out).map_err(|e| match e {
        TokensError::Write(e) => TokensError::file(path, e),
        e => e,
    })?;
    drop(out);
    file.commit().map_err(|e| TokensError::file(path, e))?;
    Ok(summary)
}

/// `corpus tokens encode`: encodes the documents of `inputs` with the tokenizer of
/// `spec` into `output` (`-`: standard output) and returns the summary line it prints;
/// None when a reader closed the pipe (`| head` has seen enough), which is no error.
pub fn encode_command(
    spec: &TokenizerSpec,
    inputs: &[String],
    threads: usize,
    output: &Path,
) -> Result<Option<String>, TokensError> {
    let tokenizer = spec.load()?;
    let files = expand(inputs)?;
    let start = std::time::Instant::now();
    let summary = match encode_to_path(&files, &tokenizer, threads, output) {
        Err(TokensError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(None);
        }
        r => r?,
    };
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    Ok(Some(format!(
        "corpus tokens encode: {} documents, {} tokens, {:.1} MB of text in {:.2}s ({:.2} M tokens/s, {:.1} MB/s)",
        summary.docs,
        summary.tokens,
        summary.bytes as f64 / 1e6,
        secs,
        summary.tokens as f64 / 1e6 / secs,
        summary.bytes as f64 / 1e6 / secs
    )))
}

/// Writes `bytes` to `path` atomically (`-`: standard output).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), TokensError> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| TokensError::file(path, e));
    }
    crate::io::AtomicFile::write_all(path, bytes).map_err(|e| TokensError::file(path, e))
}

/// Docs, tokens and text bytes of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    /// Documents.
    pub docs: u64,
    /// Tokens of the documents' text (no special tokens).
    pub tokens: u64,
    /// UTF-8 bytes of the documents' text.
    pub bytes: u64,
}

impl Count {
    /// Adds one document.
    pub fn add(&mut self, tokens: u64, bytes: u64) {
        self.docs += 1;
        self.tokens += tokens;
        self.bytes += bytes;
    }
}

impl std::ops::AddAssign for Count {
    fn add_assign(&mut self, o: Count) {
        self.docs += o.docs;
        self.tokens += o.tokens;
        self.bytes += o.bytes;
    }
}

/// Token counts by source, language and shard.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenReport {
    /// Vocabulary and pattern (with the vocabulary hash).
    pub tokenizer: String,
    /// All documents.
    pub total: Count,
    /// By source name.
    pub by_source: BTreeMap<String, Count>,
    /// By language (`und` when a document has none).
    pub by_lang: BTreeMap<String, Count>,
    /// By shard: input files for documents, shard files (with sequence tokens, padding
    /// included, and the documents starting in them) for a pack directory.
    pub by_shard: BTreeMap<String, Count>,
    /// By split, for a pack directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_split: BTreeMap<String, Count>,
}

/// Counts tokens of documents.
pub fn report_documents(
    files: &[InputFile],
    tokenizer: &Tokenizer,
    threads: usize,
) -> Result<TokenReport, TokensError> {
    let mut report = TokenReport {
        tokenizer: tokenizer_label(tokenizer),
        ..Default::default()
    };
    encode_documents(files, tokenizer, threads, |d| {
        let (t, b) = (d.ids.len() as u64, d.bytes);
        report.total.add(t, b);
        report.by_source.entry(d.source).or_default().add(t, b);
        report
            .by_lang
            .entry(d.lang.unwrap_or_else(|| "und".into()))
            .or_default()
            .add(t, b);
        let shard = files[d.file].path.display().to_string();
        report.by_shard.entry(shard).or_default().add(t, b);
        Ok(())
    })?;
    Ok(report)
}

/// `VOCAB (pattern NAME, HASH)`.
pub fn tokenizer_label(t: &Tokenizer) -> String {
    format!(
        "{} (pattern {}, {})",
        t.source().describe(),
        t.pattern().name(),
        t.hash()
    )
}

/// The report as aligned text tables.
pub fn report_table(r: &TokenReport) -> String {
    let mut out = format!("tokenizer: {}\n", r.tokenizer);
    let mut section = |title: &str, rows: &BTreeMap<String, Count>| {
        if rows.is_empty() {
            return;
        }
        let width = rows
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len());
        let total: u64 = rows.values().map(|c| c.tokens).sum::<u64>().max(1);
        out.push_str(&format!(
            "\n{title:<width$}  {:>10}  {:>14}  {:>7}  {:>14}  {:>9}\n",
            "docs", "tokens", "share", "bytes", "bytes/tok"
        ));
        for (k, c) in rows {
            out.push_str(&format!(
                "{k:<width$}  {:>10}  {:>14}  {:>6.2}%  {:>14}  {:>9}\n",
                c.docs,
                c.tokens,
                100.0 * c.tokens as f64 / total as f64,
                c.bytes,
                bytes_per_token(c.bytes, c.tokens)
            ));
        }
    };
    section("split", &r.by_split);
    section("source", &r.by_source);
    section("lang", &r.by_lang);
    section("shard", &r.by_shard);
    out.push_str(&format!(
        "\ntotal: {} docs, {} tokens, {} bytes\n",
        r.total.docs, r.total.tokens, r.total.bytes
    ));
    out
}

/// The report as one self-contained HTML page: an SVG bar per grouping (split, source,
/// language, shard), segments sized by tokens, and the numbers in tables. No scripts,
/// no external files.
pub fn report_html(r: &TokenReport) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>corpus token report</title>\n\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}\
         td,th{padding:2px 8px;text-align:right}td:first-child,th:first-child{text-align:left}\
         .sw{display:inline-block;width:10px;height:10px;margin-right:4px}</style></head><body>\n",
    );
    html.push_str(&format!(
        "<h1>Token mix</h1>\n<p>{}<br>{} documents, {} tokens, {} bytes</p>\n",
        escape(&r.tokenizer),
        r.total.docs,
        r.total.tokens,
        r.total.bytes
    ));
    for (title, rows) in [
        ("split", &r.by_split),
        ("source", &r.by_source),
        ("language", &r.by_lang),
        ("shard", &r.by_shard),
    ] {
        if !rows.is_empty() {
            html.push_str(&crate::html::token_mix(title, rows));
        }
    }
    html.push_str("</body></html>\n");
    html
}

/// Bytes per token as a table cell, `-` when unknown.
pub fn bytes_per_token(bytes: u64, tokens: u64) -> String {
    if tokens > 0 && bytes > 0 {
        format!("{:.3}", bytes as f64 / tokens as f64)
    } else {
        "-".into()
    }
}
