//! JSONL source: one JSON object per line, plain, gzip or zstd (told by the first bytes).
//!
//! Reading streams line by line with one reused line buffer, so memory stays constant
//! (bounded by the longest line, itself bounded by [`JsonlOptions::max_line_bytes`]).
//!
//! Mapping of a line to a [`Document`]:
//! - `id_field` (string, or a number or bool, stringified); missing or null:
//!   `<file stem>/<line number>` (1-based line number, stem without `.jsonl.gz` etc.).
//! - `text_field` must be a string; missing, null or another type makes the line corrupt.
//! - `source_field` (string) overrides the source name given to the file.
//! - `url_field` (string) goes to `meta.url`.
//! - A `meta` object (as the JSONL sink writes it) fills the typed [`Meta`] fields it
//!   names, its `extra` object goes to `meta.extra`, any other key of it to `meta.extra`.
//!   A `scores` object with only `quality`, `safety` and `flags` restores [`Scores`].
//!   So the output of one run reads back as the same documents.
//! - A top-level key named like a typed [`Meta`] field (`lang`, `title`, `date`...)
//!   fills that field when the field is still unset and the value has the right type.
//! - Anything else, or a value of the wrong type for its typed slot, goes to
//!   `meta.extra` unchanged, so no input field is lost.
//!
//! Damage: a line that is not valid UTF-8, not a JSON object, lacks the text, or is longer
//! than the limit is a [`SourceError::Corrupt`] (counted by kind in
//! [`SourceStats::corrupt`]; the next call goes on). Its `record` is the 0-based line
//! index and its `offset` the byte offset of the line in the *decompressed* stream (the
//! compressed offset of one line is not meaningful); the message says both.
//!
//! Damaged compression (a gzip or zstd file cut short, bad compressed data, junk after
//! the last member or frame) delivers the complete lines decoded before it, then one
//! [`SourceError::Corrupt`] (`truncated` or `bad_compression`) whose message also gives
//! how far the file as stored was read, and ends the file: what it holds is read, so its
//! shard completes (failing it would throw those lines away, and a retry meets the same
//! damage). A failure to read the stored bytes themselves (disk or download error) is a
//! [`SourceError::Fatal`] instead, which fails the shard so that a resumed run retries it.

use super::{Source, SourceError, SourceStats};
use crate::io::{ByteCounter, open_decompressed};
use corpus_stages::Document;
use corpus_stages::document::{Meta, Scores};
use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::io::{BufRead, ErrorKind};
use std::path::{Path, PathBuf};

/// `[input.jsonl]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JsonlOptions {
    /// Field holding the document id. Default `id`.
    pub id_field: String,
    /// Field holding the document text (must be a string). Default `text`.
    pub text_field: String,
    /// Field holding the source name; absent, the file's source name is used.
    /// Default `source`.
    pub source_field: String,
    /// Field holding the URL, mapped to `meta.url`. Default `url`.
    pub url_field: String,
    /// Longest line accepted, in bytes (decompressed); a longer line is skipped as
    /// corrupt (`line_too_long`) without being held in memory. Default 256 MiB.
    pub max_line_bytes: u64,
    /// How a line becomes the document text: `text` (the text field, default),
    /// `messages` (instruction data: a list of `{role, content}` objects) or
    /// `prompt_response` (instruction data: prompt, response and an optional system
    /// field). Instruction data is rendered in ChatML (`<|im_start|>role\ncontent<|im_end|>`
    /// per message, joined by newlines) and marked `meta.extra.format = "chatml"`, so that
    /// tokenization turns its markers into the special tokens.
    pub format: JsonlFormat,
    /// `messages`: the field holding the messages. Default `messages`.
    pub messages_field: String,
    /// `prompt_response`: the prompt field. Default `prompt`.
    pub prompt_field: String,
    /// `prompt_response`: the response field. Default `response`.
    pub response_field: String,
    /// `prompt_response`: the optional system field. Default `system`.
    pub system_field: String,
}

/// See [`JsonlOptions::format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonlFormat {
    /// The text field is the text.
    Text,
    /// Chat messages rendered in ChatML.
    Messages,
    /// A prompt and a response rendered in ChatML.
    PromptResponse,
}

// Where ChatML documents are told apart, for the tokenizer's sake: one definition for
// this source, which renders them, and the encoders, which keep their markers special.
pub use corpus_stages::tokenize::{CHATML, CHATML_MARKERS, is_chatml};

/// Renders `(role, content)` messages in ChatML; `Err` names a problem.
fn render_chatml<'a>(messages: impl Iterator<Item = (&'a str, &'a str)>) -> Result<String, String> {
    let mut out = String::new();
    for (role, content) in messages {
        if role.is_empty() || role.contains(char::is_whitespace) {
            return Err(format!("bad role {role:?}"));
        }
        if CHATML_MARKERS
            .iter()
            .any(|m| content.contains(m) || role.contains(m))
        {
            return Err("a message contains a ChatML marker".into());
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("<|im_start|>");
        out.push_str(role);
        out.push('\n');
        out.push_str(content);
        out.push_str("<|im_end|>");
    }
    if out.is_empty() {
        return Err("no messages".into());
    }
    Ok(out)
}

/// Takes the instruction fields out of `rest` and renders them.
fn chat_text(
    rest: &mut Vec<(String, Value)>,
    options: &JsonlOptions,
) -> Result<String, (&'static str, String)> {
    let mut take = |name: &str| -> Option<Value> {
        let i = rest.iter().position(|(k, _)| k == name)?;
        Some(rest.remove(i).1)
    };
    let bad = |m: String| ("bad_chat", m);
    match options.format {
        JsonlFormat::Text => unreachable!("only for instruction formats"),
        JsonlFormat::Messages => {
            let Some(Value::Array(list)) = take(&options.messages_field) else {
                return Err(bad(format!("no `{}` array", options.messages_field)));
            };
            let mut pairs = Vec::with_capacity(list.len());
            for m in &list {
                match (
                    m.get("role").and_then(Value::as_str),
                    m.get("content").and_then(Value::as_str),
                ) {
                    (Some(r), Some(c)) => pairs.push((r, c)),
                    _ => {
                        return Err(bad(format!(
                            "`{}` holds an item without string `role` and `content`",
                            options.messages_field
                        )));
                    }
                }
            }
            render_chatml(pairs.into_iter()).map_err(bad)
        }
        JsonlFormat::PromptResponse => {
            let mut field =
                |name: &str, required: bool| -> Result<Option<String>, (&'static str, String)> {
                    match take(name) {
                        Some(Value::String(v)) => Ok(Some(v)),
                        None | Some(Value::Null) if !required => Ok(None),
                        _ => Err(bad(format!("no string `{name}`"))),
                    }
                };
            let system = field(&options.system_field, false)?;
            let prompt = field(&options.prompt_field, true)?.unwrap_or_default();
            let response = field(&options.response_field, true)?.unwrap_or_default();
            let mut pairs = Vec::new();
            if let Some(sys) = &system {
                pairs.push(("system", sys.as_str()));
            }
            pairs.push(("user", prompt.as_str()));
            pairs.push(("assistant", response.as_str()));
            render_chatml(pairs.into_iter()).map_err(bad)
        }
    }
}

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            id_field: "id".into(),
            text_field: "text".into(),
            source_field: "source".into(),
            url_field: "url".into(),
            max_line_bytes: 256 << 20,
            format: JsonlFormat::Text,
            messages_field: "messages".into(),
            prompt_field: "prompt".into(),
            response_field: "response".into(),
            system_field: "system".into(),
        }
    }
}

/// Reads one JSONL file as documents.
pub struct JsonlSource {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    counter: ByteCounter,
    options: JsonlOptions,
    source_name: String,
    stem: String,
    line: Vec<u8>,
    /// Lines read so far (the 0-based index of the next line).
    line_index: u64,
    /// Decompressed offset of the next line.
    offset: u64,
    done: bool,
    stats: SourceStats,
}

/// What one call to [`JsonlSource::read_line`] found.
enum LineRead {
    Eof,
    /// A line of `len` bytes (newline included) was consumed; `too_long` when it was
    /// over the limit and not kept in the buffer.
    Line {
        len: u64,
        too_long: bool,
    },
}

impl JsonlSource {
    /// Opens `path`; documents without a source field get `source_name`.
    pub fn open(
        path: &Path,
        options: &JsonlOptions,
        source_name: &str,
    ) -> Result<JsonlSource, SourceError> {
        let (reader, counter) = open_decompressed(path).map_err(|e| SourceError::Open {
            path: path.to_path_buf(),
            source: e,
        })?;
        Ok(JsonlSource {
            path: path.to_path_buf(),
            reader,
            counter,
            options: options.clone(),
            source_name: source_name.to_string(),
            stem: super::file_stem(path),
            line: Vec::with_capacity(1 << 14),
            line_index: 0,
            offset: 0,
            done: false,
            stats: SourceStats::default(),
        })
    }

    /// Reads the next line into `self.line` (newline included), keeping at most
    /// `max_line_bytes` of it.
    fn read_line(&mut self) -> std::io::Result<LineRead> {
        self.line.clear();
        let max = usize::try_from(self.options.max_line_bytes).unwrap_or(usize::MAX);
        let mut len: u64 = 0;
        let mut too_long = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(if len == 0 {
                    LineRead::Eof
                } else {
                    LineRead::Line { len, too_long }
                });
            }
            let (take, found) = match memchr::memchr(b'\n', buf) {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !too_long {
                if self.line.len() + take > max.saturating_add(1) {
                    // Over the limit (the newline itself does not count): stop keeping it.
                    too_long = true;
                    self.line = Vec::with_capacity(1 << 14);
                } else {
                    self.line.extend_from_slice(&buf[..take]);
                }
            }
            self.reader.consume(take);
            len += take as u64;
            if found {
                return Ok(LineRead::Line { len, too_long });
            }
        }
    }

    fn corrupt(&mut self, kind: &str, record: u64, offset: u64, what: String) -> SourceError {
        self.stats.corrupt(kind);
        SourceError::Corrupt {
            path: self.path.clone(),
            record,
            offset,
            message: format!(
                "line {} (byte {offset} of the decompressed stream): {what}",
                record + 1
            ),
        }
    }
}

impl Source for JsonlSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let read = self.read_line();
            self.stats.bytes = self.counter.get();
            let (len, too_long) = match read {
                Ok(LineRead::Eof) => {
                    self.done = true;
                    return Ok(None);
                }
                Ok(LineRead::Line { len, too_long }) => (len, too_long),
                Err(e) if !self.counter.input_failed() => {
                    self.done = true;
                    // Whatever line was being read is cut by the damage: it is the record
                    // counted as lost.
                    self.stats.records += 1;
                    let kind = if e.kind() == ErrorKind::UnexpectedEof {
                        "truncated"
                    } else {
                        "bad_compression"
                    };
                    let what = format!(
                        "damaged compressed data (the file as stored was read to byte {}): \
                         {e}; nothing after it can be read",
                        self.counter.get()
                    );
                    return Err(self.corrupt(kind, self.line_index, self.offset, what));
                }
                Err(e) => {
                    self.done = true;
                    return Err(SourceError::Fatal {
                        path: self.path.clone(),
                        offset: self.counter.get(),
                        message: format!(
                            "read error after line {} (byte {} of the decompressed stream): {e}",
                            self.line_index, self.offset
                        ),
                    });
                }
            };
            let record = self.line_index;
            let offset = self.offset;
            self.line_index += 1;
            self.offset += len;
            if too_long {
                self.stats.records += 1;
                let max = self.options.max_line_bytes;
                return Err(self.corrupt(
                    "line_too_long",
                    record,
                    offset,
                    format!("line of {len} bytes is longer than max_line_bytes = {max}"),
                ));
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.stats.records += 1;
            let mut line: &[u8] = &self.line;
            while let [rest @ .., b'\n' | b'\r'] = line {
                line = rest;
            }
            if record == 0 {
                // A UTF-8 byte-order mark some editors write is not part of the JSON.
                line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
            }
            let text = match std::str::from_utf8(line) {
                Ok(t) => t,
                Err(e) => {
                    let what = format!("invalid UTF-8: {e}");
                    return Err(self.corrupt("invalid_utf8", record, offset, what));
                }
            };
            let parsed = parse_line(text, &self.options).or_else(|e| {
                // JSON from broken UTF-16 carries lone surrogate escapes, which serde_json
                // rejects; the line is otherwise fine, so they become U+FFFD.
                match replace_lone_surrogates(text) {
                    Cow::Owned(fixed) => parse_line(&fixed, &self.options)
                        .inspect(|_| self.stats.repair("lone_surrogate")),
                    Cow::Borrowed(_) => Err(e),
                }
            });
            let raw = match parsed {
                Ok(raw) => raw,
                Err(e) => {
                    let kind = match e.classify() {
                        serde_json::error::Category::Data => "not_object",
                        _ => "invalid_json",
                    };
                    // serde_json's own position counts from the start of the line only.
                    let mut what = e.to_string();
                    if let Some(at) = what.rfind(" at line ") {
                        what.truncate(at);
                    }
                    let what = format!("invalid JSON at column {}: {what}", e.column());
                    return Err(self.corrupt(kind, record, offset, what));
                }
            };
            return match build_document(raw, &self.options, &self.source_name, || {
                format!("{}/{}", self.stem, record + 1)
            }) {
                Ok(doc) => {
                    self.stats.docs += 1;
                    Ok(Some(doc))
                }
                Err((kind, what)) => Err(self.corrupt(kind, record, offset, what)),
            };
        }
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}

/// Replaces the `\uXXXX` escapes of lone UTF-16 surrogates in JSON text by `\ufffd`,
/// leaving valid surrogate pairs and everything else as it is. JSON written by
/// JavaScript or Python from broken UTF-16 carries such escapes; serde_json rejects them.
pub fn replace_lone_surrogates(json: &str) -> Cow<'_, str> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let b = json.as_bytes();
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(b, i) {
            Some(0xD800..=0xDBFF) => {
                if matches!(escape_at(b, i + 6), Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    out.push_str(&json[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.push_str(&json[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape, `\\` included, is two bytes or a complete `\uXXXX`;
            // skipping the escaped byte keeps `\\ud800` (a literal backslash) intact.
            _ => i += 2,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

/// The fields of one line, before they are checked and mapped.
#[derive(Default)]
struct RawLine {
    id: Option<Value>,
    text: Option<Value>,
    source: Option<Value>,
    url: Option<Value>,
    meta: Option<Value>,
    scores: Option<Value>,
    rest: Vec<(String, Value)>,
}

fn parse_line(line: &str, options: &JsonlOptions) -> Result<RawLine, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(line);
    let raw = LineSeed { options }.deserialize(&mut de)?;
    de.end()?;
    Ok(raw)
}

/// Deserializes a line straight into [`RawLine`], with the field names of the options,
/// so that no intermediate map of the whole line is built.
struct LineSeed<'o> {
    options: &'o JsonlOptions,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = RawLine;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RawLine, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = RawLine;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawLine, A::Error> {
        let o = self.options;
        let mut raw = RawLine::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let slot = if *key == o.text_field {
                &mut raw.text
            } else if *key == o.id_field {
                &mut raw.id
            } else if *key == o.source_field {
                &mut raw.source
            } else if *key == o.url_field {
                &mut raw.url
            } else if key == "meta" {
                &mut raw.meta
            } else if key == "scores" {
                &mut raw.scores
            } else {
                raw.rest.push((key.into_owned(), map.next_value()?));
                continue;
            };
            *slot = Some(map.next_value()?);
        }
        Ok(raw)
    }
}

/// An object key, borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Checks and maps the fields of a line; `Err((kind, message))` for a corrupt line.
fn build_document(
    mut raw: RawLine,
    options: &JsonlOptions,
    default_source: &str,
    default_id: impl FnOnce() -> String,
) -> Result<Document, (&'static str, String)> {
    let chat = options.format != JsonlFormat::Text;
    if chat && let Some(t) = raw.text.take() {
        // Instruction data has no text field of its own: keep one as an extra field.
        raw.rest.push((options.text_field.clone(), t));
    }
    let text = match raw.text.take() {
        _ if chat => chat_text(&mut raw.rest, options)?,
        Some(Value::String(t)) => t,
        None | Some(Value::Null) => {
            return Err(("missing_text", format!("no `{}` field", options.text_field)));
        }
        Some(other) => {
            return Err((
                "text_not_string",
                format!(
                    "`{}` is {}, not a string",
                    options.text_field,
                    json_type(&other)
                ),
            ));
        }
    };
    let id = match raw.id {
        None | Some(Value::Null) => default_id(),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => {
            return Err((
                "bad_id",
                format!(
                    "`{}` is {}, not a string or number",
                    options.id_field,
                    json_type(&other)
                ),
            ));
        }
    };
    let mut meta = Meta::default();
    let mut scores = Scores::default();
    let mut extra_later: Vec<(String, Value)> = Vec::new();
    match raw.meta {
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if k == "extra" {
                    match v {
                        Value::Object(extra) => meta.extra.extend(extra),
                        v => extra_later.push((k, v)),
                    }
                } else if let Err(v) = set_typed(&mut meta, &k, v, true) {
                    extra_later.push((k, v));
                }
            }
        }
        Some(v) => extra_later.push(("meta".into(), v)),
        None => {}
    }
    if let Some(v) = raw.scores
        && let Err(v) = set_scores(&mut scores, v)
    {
        extra_later.push(("scores".into(), v));
    }
    let source = match raw.source {
        Some(Value::String(s)) if !s.is_empty() => s,
        None | Some(Value::Null) => default_source.to_string(),
        Some(v) => {
            extra_later.push((options.source_field.clone(), v));
            default_source.to_string()
        }
    };
    match raw.url {
        Some(Value::String(u)) if meta.url.is_none() => meta.url = Some(u),
        None | Some(Value::Null) => {}
        Some(v) => extra_later.push((options.url_field.clone(), v)),
    }
    for (k, v) in raw.rest {
        if let Err(v) = set_typed(&mut meta, &k, v, false) {
            extra_later.push((k, v));
        }
    }
    // Keys of `meta.extra` come first: they are the record's own extras from an earlier run.
    for (k, v) in extra_later {
        meta.extra.entry(k).or_insert(v);
    }
    if chat {
        meta.extra
            .insert("format".into(), Value::String(CHATML.into()));
    }
    Ok(Document {
        id,
        source,
        text,
        meta,
        scores,
        ..Default::default()
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sets the typed [`Meta`] field named `key` from `v`. Gives `v` back when there is no
/// such field, its type does not fit, or (unless `overwrite`) the field is already set.
/// A null value sets nothing and is dropped.
pub(crate) fn set_typed(
    meta: &mut Meta,
    key: &str,
    v: Value,
    overwrite: bool,
) -> Result<(), Value> {
    fn put<T>(
        slot: &mut Option<T>,
        value: Option<T>,
        v: Value,
        overwrite: bool,
    ) -> Result<(), Value> {
        match value {
            Some(x) if overwrite || slot.is_none() => {
                *slot = Some(x);
                Ok(())
            }
            _ => Err(v),
        }
    }
    if v.is_null() {
        let typed = matches!(
            key,
            "url"
                | "warc_record_id"
                | "warc_filename"
                | "crawl"
                | "offset"
                | "date"
                | "http_status"
                | "content_type"
                | "charset"
                | "title"
                | "lang"
                | "lang_score"
                | "content_hash"
        );
        return if typed { Ok(()) } else { Err(v) };
    }
    let string = |v: &Value| v.as_str().map(str::to_string);
    match key {
        "url" => put(&mut meta.url, string(&v), v, overwrite),
        "warc_record_id" => put(&mut meta.warc_record_id, string(&v), v, overwrite),
        "warc_filename" => put(&mut meta.warc_filename, string(&v), v, overwrite),
        "crawl" => put(&mut meta.crawl, string(&v), v, overwrite),
        "offset" => put(&mut meta.offset, v.as_u64(), v, overwrite),
        "date" => put(&mut meta.date, string(&v), v, overwrite),
        "http_status" => {
            let x = v.as_u64().and_then(|n| u16::try_from(n).ok());
            put(&mut meta.http_status, x, v, overwrite)
        }
        "content_type" => put(&mut meta.content_type, string(&v), v, overwrite),
        "charset" => put(&mut meta.charset, string(&v), v, overwrite),
        "title" => put(&mut meta.title, string(&v), v, overwrite),
        "lang" => put(&mut meta.lang, string(&v), v, overwrite),
        "lang_score" => put(
            &mut meta.lang_score,
            v.as_f64().map(|f| f as f32),
            v,
            overwrite,
        ),
        "content_hash" => put(&mut meta.content_hash, string(&v), v, overwrite),
        _ => Err(v),
    }
}

/// Restores [`Scores`] from an object holding only `quality`, `safety` and `flags` of
/// the right types; gives anything else back unchanged.
fn set_scores(scores: &mut Scores, v: Value) -> Result<(), Value> {
    let Value::Object(map) = &v else {
        return Err(v);
    };
    let mut out = Scores::default();
    for (k, x) in map {
        let ok = match (k.as_str(), x) {
            (_, Value::Null) => true,
            ("quality", Value::Number(n)) => {
                out.quality = n.as_f64().map(|f| f as f32);
                true
            }
            ("safety", Value::Number(n)) => {
                out.safety = n.as_f64().map(|f| f as f32);
                true
            }
            ("flags", Value::Array(items)) => {
                let flags: Option<Vec<String>> = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string))
                    .collect();
                match flags {
                    Some(f) => {
                        out.flags = f;
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if !ok {
            return Err(v);
        }
    }
    *scores = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn read_all(path: &Path) -> (Vec<Document>, Vec<SourceError>, SourceStats) {
        let mut src = JsonlSource::open(path, &JsonlOptions::default(), "dflt").unwrap();
        let (docs, errors) = super::super::read_all(&mut src);
        if errors.last().is_some_and(|e| !e.is_recoverable()) {
            // A source is finished after a fatal error.
            assert!(matches!(src.next_doc(), Ok(None)));
        }
        (docs, errors, src.stats().clone())
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn maps_fields_ids_and_extras() {
        let dir = tempfile::tempdir().unwrap();
        let lines = concat!(
            "\u{feff}",
            r#"{"id": 7, "text": "a", "lang": "en", "url": "http://x/", "k": [1]}"#,
            "\n\n   \n",
            r#"{"text": "b", "source": "wiki", "lang": 3, "meta": {"file": "f", "title": "T"}}"#,
            "\n",
            r#"{"id": "c", "text": "c", "lang": "en", "meta": {"lang": "fr", "extra": {"k": 1}, "k": 2}}"#,
            "\n",
            r#"{"id": "s", "text": "s", "scores": {"quality": 0.5, "flags": ["a/b"]}}"#,
            "\n",
            r#"{"id": "t", "text": "t", "scores": {"quality": "high"}}"#,
        );
        let p = write(dir.path(), "news-01.jsonl", lines.as_bytes());
        let (docs, errors, stats) = read_all(&p);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(docs.len(), 5);
        assert_eq!(stats.records, 5);
        assert_eq!(stats.docs, 5);
        assert_eq!(stats.bytes, lines.len() as u64);

        assert_eq!(docs[0].id, "7");
        assert_eq!(docs[0].source, "dflt");
        assert_eq!(docs[0].meta.lang.as_deref(), Some("en"));
        assert_eq!(docs[0].meta.url.as_deref(), Some("http://x/"));
        assert_eq!(docs[0].meta.extra["k"], serde_json::json!([1]));

        // Missing id: stem and 1-based line number (blank lines count as lines).
        assert_eq!(docs[1].id, "news-01/4");
        assert_eq!(docs[1].source, "wiki");
        assert_eq!(docs[1].meta.lang, None);
        assert_eq!(docs[1].meta.extra["lang"], serde_json::json!(3));
        assert_eq!(docs[1].meta.extra["file"], "f");
        assert_eq!(docs[1].meta.title.as_deref(), Some("T"));

        // The meta object wins over top-level keys; its extra object over other keys.
        assert_eq!(docs[2].meta.lang.as_deref(), Some("fr"));
        assert_eq!(docs[2].meta.extra["k"], serde_json::json!(1));
        assert_eq!(docs[2].meta.extra["lang"], "en");

        assert_eq!(docs[3].scores.quality, Some(0.5));
        assert_eq!(docs[3].scores.flags, ["a/b"]);
        assert!(docs[4].scores.is_empty());
        assert_eq!(docs[4].meta.extra["scores"]["quality"], "high");
    }

    #[test]
    fn corrupt_lines_are_counted_named_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"{\"id\": \"a\", \"text\": \"ok\"}\n");
        bytes.extend_from_slice(b"{\"id\": \"b\", \"text\": \"unterminated}\n");
        bytes.extend_from_slice(b"{\"id\": \"c\"}\n");
        bytes.extend_from_slice(b"{\"id\": \"d\", \"text\": \"bad \xff byte\"}\n");
        bytes.extend_from_slice(b"{\"id\": \"e\", \"text\": 5}\n");
        bytes.extend_from_slice(b"[1, 2]\n");
        bytes.extend_from_slice(b"{\"id\": \"f\", \"text\": \"x\"} trailing\n");
        bytes.extend_from_slice(b"{\"id\": \"g\", \"text\": \"last\"}");
        let p = write(dir.path(), "bad.jsonl", &bytes);
        let (docs, errors, stats) = read_all(&p);
        let ids: Vec<&str> = docs.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "g"]);
        assert_eq!(errors.len(), 6);
        assert!(errors.iter().all(|e| e.is_recoverable()));
        let first = errors[0].to_string();
        assert!(first.contains("bad.jsonl"), "{first}");
        assert!(first.contains("line 2 "), "{first}");
        assert!(
            first.contains("byte 26 of the decompressed stream"),
            "{first}"
        );
        assert!(first.contains("invalid JSON at column"), "{first}");
        let SourceError::Corrupt { record, offset, .. } = &errors[0] else {
            panic!("{first}")
        };
        assert_eq!((*record, *offset), (1, 26));
        assert!(errors[2].to_string().contains("line 4 "), "{}", errors[2]);
        assert_eq!(stats.records, 8);
        assert_eq!(stats.docs, 2);
        let kinds: Vec<(&str, u64)> = stats
            .corrupt
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(
            kinds,
            [
                ("invalid_json", 2),
                ("invalid_utf8", 1),
                ("missing_text", 1),
                ("not_object", 1),
                ("text_not_string", 1)
            ]
        );
    }

    #[test]
    fn overlong_lines_are_skipped_without_buffering() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{{\"text\": \"{}\"}}\n", "x".repeat(100));
        let text = format!("{long}{{\"text\": \"short\"}}\n");
        let p = write(dir.path(), "long.jsonl", text.as_bytes());
        let options = JsonlOptions {
            max_line_bytes: 50,
            ..Default::default()
        };
        let mut src = JsonlSource::open(&p, &options, "s").unwrap();
        let err = src.next_doc().unwrap_err();
        assert!(err.is_recoverable());
        assert!(err.to_string().contains("max_line_bytes"), "{err}");
        let doc = src.next_doc().unwrap().unwrap();
        assert_eq!(doc.text, "short");
        assert_eq!(doc.id, "long/2");
        assert_eq!(src.stats().corrupt["line_too_long"], 1);
    }

    /// The real reviews of tests/data, `copies` times with distinct ids: JSONL text.
    fn reviews(copies: usize) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/jsonl/movie_reviews-sample.jsonl");
        let sample = std::fs::read_to_string(path).unwrap();
        let mut out = String::new();
        for c in 0..copies {
            for line in sample.lines() {
                let mut v: Value = serde_json::from_str(line).unwrap();
                v["id"] = format!("{}-{c}", v["id"].as_str().unwrap()).into();
                out.push_str(&v.to_string());
                out.push('\n');
            }
        }
        out
    }

    fn gzip(plain: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(plain).unwrap();
        enc.finish().unwrap()
    }

    /// Reads `bytes` (the reviews compressed, then damaged) as file `name`: the documents
    /// of the lines `expect` holds come in order, then one corrupt record of `kind` that
    /// names the file and where the damage is, and the source ends.
    fn damaged_compression_keeps_what_decodes(name: &str, bytes: &[u8], expect: &[u8], kind: &str) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), name, bytes);
        let (docs, errors, stats) = read_all(&p);
        let lines: Vec<&[u8]> = expect.split_inclusive(|&b| b == b'\n').collect();
        let complete = lines.iter().filter(|l| l.ends_with(b"\n")).count();
        assert!(complete > 0, "{name}");
        assert_eq!(docs.len(), complete, "{name}");
        for (d, line) in docs.iter().zip(&lines) {
            let v: Value = serde_json::from_slice(line).unwrap();
            assert_eq!(
                (d.id.as_str(), d.text.as_str()),
                (v["id"].as_str().unwrap(), v["text"].as_str().unwrap())
            );
        }
        assert_eq!(errors.len(), 1, "{name}: {errors:?}");
        let err = &errors[0];
        assert!(err.is_recoverable(), "{name}: {err}");
        crate::testing::assert_mentions(
            &err.to_string(),
            &[
                name,
                &format!("line {}", complete + 1),
                "damaged compressed data",
                "read to byte",
            ],
        );
        assert_eq!(stats.corrupt.get(kind), Some(&1), "{name}: {stats:?}");
        assert_eq!(stats.corrupt.len(), 1, "{name}: {stats:?}");
        assert_eq!(stats.docs, complete as u64);
        assert_eq!(stats.records, complete as u64 + 1);
        // Finished: the damage is not met again.
        let mut src = JsonlSource::open(&p, &JsonlOptions::default(), "dflt").unwrap();
        while src.next_doc().is_ok_and(|d| d.is_some()) {}
        assert!(matches!(src.next_doc(), Ok(None)), "{name}");
    }

    #[test]
    fn a_cut_gzip_or_zstd_file_keeps_every_line_before_the_cut() {
        let plain = reviews(20);
        for (name, packed) in [
            ("cut.jsonl.gz", gzip(plain.as_bytes())),
            (
                "cut.jsonl.zst",
                zstd::encode_all(plain.as_bytes(), 3).unwrap(),
            ),
        ] {
            // Near the end: zstd decodes whole blocks (128 KiB of text), and the first
            // copy of the reviews takes most of its bytes (the repeats cost little).
            let cut = &packed[..packed.len() - packed.len() / 50];
            // What the decoders themselves give before failing.
            let mut decoded = Vec::new();
            let (mut r, _) =
                open_decompressed(&write(tempfile::tempdir().unwrap().path(), name, cut)).unwrap();
            assert!(r.read_to_end(&mut decoded).is_err(), "{name}");
            damaged_compression_keeps_what_decodes(name, cut, &decoded, "truncated");
        }
    }

    #[test]
    fn junk_after_the_compressed_data_keeps_every_line() {
        let plain = reviews(20);
        let junk = b"\x00\x00junk after the end\r\n";
        for (name, packed) in [
            ("junk.jsonl.gz", gzip(plain.as_bytes())),
            (
                "junk.jsonl.zst",
                zstd::encode_all(plain.as_bytes(), 3).unwrap(),
            ),
        ] {
            let bytes = [&packed[..], junk].concat();
            damaged_compression_keeps_what_decodes(
                name,
                &bytes,
                plain.as_bytes(),
                "bad_compression",
            );
        }
    }

    #[test]
    fn empty_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "empty.jsonl", b"");
        let (docs, errors, stats) = read_all(&p);
        assert!(docs.is_empty() && errors.is_empty());
        assert_eq!(stats.records, 0);

        let missing = dir.path().join("nope.jsonl");
        let err = JsonlSource::open(&missing, &JsonlOptions::default(), "s")
            .err()
            .unwrap();
        assert!(matches!(err, SourceError::Open { .. }));
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
    }

    #[test]
    fn options_reject_unknown_keys_and_rename_fields() {
        let bad: Result<JsonlOptions, _> = toml::from_str("txt_field = \"body\"");
        assert!(bad.is_err());
        let options: JsonlOptions =
            toml::from_str("text_field = \"body\"\nid_field = \"key\"").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "r.jsonl",
            br#"{"key": "k1", "body": "b", "text": "t"}"#,
        );
        let mut src = JsonlSource::open(&p, &options, "s").unwrap();
        let doc = src.next_doc().unwrap().unwrap();
        assert_eq!((doc.id.as_str(), doc.text.as_str()), ("k1", "b"));
        assert_eq!(doc.meta.extra["text"], "t");
    }

    #[test]
    fn file_stems_drop_format_and_compression() {
        use super::super::file_stem;
        assert_eq!(file_stem(Path::new("a/wiki-01.jsonl.gz")), "wiki-01");
        assert_eq!(file_stem(Path::new("x.v2.ndjson.zst")), "x.v2");
        assert_eq!(file_stem(Path::new("plain.json")), "plain");
        assert_eq!(file_stem(Path::new("books.parquet")), "books");
        assert_eq!(file_stem(Path::new("CC-MAIN-1.warc.wet.gz")), "CC-MAIN-1");
    }
}
