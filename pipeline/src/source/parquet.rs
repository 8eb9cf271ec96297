//! Parquet source: rows of a table with a string text column become documents.
//!
//! Reading streams record batches of [`ParquetOptions::batch_rows`] rows through the
//! `parquet` crate's Arrow reader, which holds one row group's column chunks at a time,
//! so memory is bounded by the row group size, not the file size.
//!
//! Mapping of a row to a [`Document`]:
//! - `text_column` must exist and be Utf8, LargeUtf8 or Utf8View; otherwise opening
//!   fails with an error naming the file and its columns. A null text makes the row
//!   corrupt (`null_text`, counted and skipped).
//! - `id_column` (string, or any other scalar, formatted); missing or null:
//!   `<file stem>/<row index>` (0-based).
//! - `source_column` (string) overrides the source name given to the file.
//! - Columns named like a typed [`Meta`](corpus_stages::Meta) field (`url`, `lang`,
//!   `offset`...), `meta_extra` (a JSON object), `quality`, `safety` and `flags`
//!   (`List<Utf8>` or a JSON array in Utf8) restore what the Parquet sink wrote (see
//!   [`crate::sink::parquet`]), so a run's output reads back as the same documents.
//! - Any other scalar column (strings, integers, floats, bools; dates, timestamps and
//!   decimals formatted as strings) goes to `meta.extra`, as does a value whose type
//!   does not fit its typed slot. Null values are left out. Nested and binary columns
//!   other than `flags` are not read.
//!
//! `record` of a corrupt row is its 0-based row index; `offset` the start of its row
//! group in the file, as stored.

use super::jsonl::set_typed;
use super::{Source, SourceError, SourceStats};
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use corpus_stages::Document;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

/// `[input.parquet]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetOptions {
    /// Column holding the document text (Utf8, LargeUtf8 or Utf8View). Default `text`.
    pub text_column: String,
    /// Column holding the document id; absent or null, ids are `<file stem>/<row>`.
    /// Default `id`.
    pub id_column: String,
    /// Column holding the source name; absent or null, the file's source name is used.
    /// Default `source`.
    pub source_column: String,
    /// Rows decoded at a time. Default 1024.
    pub batch_rows: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            text_column: "text".into(),
            id_column: "id".into(),
            source_column: "source".into(),
            batch_rows: 1024,
        }
    }
}

/// What a column of the file is read into.
#[derive(Debug, Clone)]
enum Role {
    Text,
    Id,
    Source,
    MetaExtra,
    Quality,
    Safety,
    Flags,
    /// A typed `Meta` field or, failing that, `meta.extra`, under the column name.
    Field(String),
}

/// A row that could not become a document.
struct BadRow {
    kind: &'static str,
    message: String,
}

/// Reads one Parquet file as documents.
pub struct ParquetSource {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    roles: Vec<Role>,
    source_column: String,
    source_name: String,
    stem: String,
    queue: VecDeque<Result<Document, BadRow>>,
    /// Rows decoded so far.
    rows: u64,
    /// For each row group: the row count at its end and the file offset at its end.
    group_ends: Vec<(u64, u64)>,
    /// Row group of the next row handed out.
    group: usize,
    file_len: u64,
    done: bool,
    stats: SourceStats,
}

impl ParquetSource {
    /// Opens `path`; documents without a source column get `source_name`.
    pub fn open(
        path: &Path,
        options: &ParquetOptions,
        source_name: &str,
    ) -> Result<ParquetSource, SourceError> {
        let file = File::open(path).map_err(|e| SourceError::Open {
            path: path.to_path_buf(),
            source: e,
        })?;
        let file_len = file
            .metadata()
            .map_err(|e| SourceError::Open {
                path: path.to_path_buf(),
                source: e,
            })?
            .len();
        let fatal = |message: String| SourceError::Fatal {
            path: path.to_path_buf(),
            offset: 0,
            message,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| fatal(format!("not a readable Parquet file: {e}")))?;
        let schema = builder.schema().clone();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let Some(text_field) = schema
            .fields()
            .iter()
            .find(|f| *f.name() == options.text_column)
        else {
            return Err(SourceError::Config(format!(
                "{}: no text column `{}` (columns: {}); set input.parquet.text_column",
                path.display(),
                options.text_column,
                names.join(", ")
            )));
        };
        if !is_string(text_field.data_type()) {
            return Err(SourceError::Config(format!(
                "{}: text column `{}` is {}, not a string column (columns: {})",
                path.display(),
                options.text_column,
                text_field.data_type(),
                names.join(", ")
            )));
        }

        let mut roles = Vec::new();
        let mut indices = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let name = field.name().as_str();
            let ty = field.data_type();
            let role = if name == options.text_column {
                Role::Text
            } else if name == options.id_column {
                Role::Id
            } else if name == options.source_column {
                Role::Source
            } else if name == "meta_extra" {
                Role::MetaExtra
            } else if name == "quality" {
                Role::Quality
            } else if name == "safety" {
                Role::Safety
            } else if name == "flags" {
                Role::Flags
            } else {
                Role::Field(name.to_string())
            };
            let readable = match role {
                Role::Flags => is_scalar(ty) || is_string_list(ty),
                _ => is_scalar(ty),
            };
            if readable {
                roles.push(role);
                indices.push(i);
            }
        }
        let metadata = builder.metadata().clone();
        let mut group_ends = Vec::new();
        let (mut rows, mut offset) = (0u64, 4u64);
        for rg in metadata.row_groups() {
            rows += u64::try_from(rg.num_rows()).unwrap_or(0);
            offset += u64::try_from(rg.compressed_size()).unwrap_or(0);
            group_ends.push((rows, offset));
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(options.batch_rows.max(1))
            .build()
            .map_err(|e| fatal(format!("cannot read: {e}")))?;
        Ok(ParquetSource {
            path: path.to_path_buf(),
            reader,
            roles,
            source_column: options.source_column.clone(),
            source_name: source_name.to_string(),
            stem: super::file_stem(path),
            queue: VecDeque::new(),
            rows: 0,
            group_ends,
            group: 0,
            file_len,
            done: false,
            stats: SourceStats::default(),
        })
    }

    /// Start of the row group holding `row`, in the file as stored.
    fn group_offset(&mut self, row: u64) -> u64 {
        while self.group < self.group_ends.len() && self.group_ends[self.group].0 <= row {
            self.group += 1;
        }
        match self.group.checked_sub(1) {
            Some(g) => self.group_ends[g].1,
            None => 4,
        }
    }

    /// Decodes the next batch into the queue; false at the end of the file.
    fn fill(&mut self) -> Result<bool, SourceError> {
        let batch = match self.reader.next() {
            None => return Ok(false),
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                let row = self.rows;
                return Err(SourceError::Fatal {
                    path: self.path.clone(),
                    offset: self.group_offset(row),
                    message: format!("cannot decode rows from {row} on: {e}"),
                });
            }
        };
        if batch.num_columns() != self.roles.len() {
            return Err(SourceError::Fatal {
                path: self.path.clone(),
                offset: self.stats.bytes,
                message: format!(
                    "batch has {} columns, expected {}",
                    batch.num_columns(),
                    self.roles.len()
                ),
            });
        }
        for i in 0..batch.num_rows() {
            let row = self.rows + i as u64;
            let doc = self.row_to_doc(&batch, i, row);
            self.queue.push_back(doc);
        }
        self.rows += batch.num_rows() as u64;
        Ok(true)
    }

    fn row_to_doc(&self, batch: &RecordBatch, i: usize, row: u64) -> Result<Document, BadRow> {
        let mut doc = Document {
            source: self.source_name.clone(),
            ..Default::default()
        };
        let mut text = None;
        let mut id = None;
        let mut later: Vec<(String, Value)> = Vec::new();
        for (role, col) in self.roles.iter().zip(batch.columns()) {
            if col.is_null(i) {
                continue;
            }
            match role {
                Role::Text => text = string_at(col, i).map(str::to_string),
                Role::Id => id = scalar(col, i).map(|v| value_to_string(&v)),
                Role::Source => match string_at(col, i) {
                    Some(s) if !s.is_empty() => doc.source = s.to_string(),
                    Some(_) => {}
                    None => later.push((self.source_column.clone(), scalar_or_null(col, i))),
                },
                Role::MetaExtra => match string_at(col, i) {
                    Some(s) => match serde_json::from_str::<Value>(s) {
                        Ok(Value::Object(map)) => doc.meta.extra.extend(map),
                        _ => later.push(("meta_extra".into(), Value::String(s.to_string()))),
                    },
                    None => later.push(("meta_extra".into(), scalar_or_null(col, i))),
                },
                Role::Quality | Role::Safety => {
                    let v = scalar_or_null(col, i);
                    match v.as_f64() {
                        Some(f) if matches!(role, Role::Quality) => {
                            doc.scores.quality = Some(f as f32)
                        }
                        Some(f) => doc.scores.safety = Some(f as f32),
                        None => {
                            let name = if matches!(role, Role::Quality) {
                                "quality"
                            } else {
                                "safety"
                            };
                            later.push((name.into(), v));
                        }
                    }
                }
                Role::Flags => match flags_at(col, i) {
                    Ok(flags) => doc.scores.flags = flags,
                    Err(v) => later.push(("flags".into(), v)),
                },
                Role::Field(name) => {
                    if let Some(v) = scalar(col, i)
                        && let Err(v) = set_typed(&mut doc.meta, name, v, true)
                    {
                        later.push((name.clone(), v));
                    }
                }
            }
        }
        for (k, v) in later {
            doc.meta.extra.entry(k).or_insert(v);
        }
        let Some(text) = text else {
            return Err(BadRow {
                kind: "null_text",
                message: "text is null".into(),
            });
        };
        doc.text = text;
        doc.id = id.unwrap_or_else(|| format!("{}/{row}", self.stem));
        Ok(doc)
    }
}

impl Source for ParquetSource {
    fn next_doc(&mut self) -> Result<Option<Document>, SourceError> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                // Every decoded row is queued once, in order: the count is the row index.
                let row = self.stats.records;
                self.stats.records += 1;
                let offset = self.group_offset(row);
                // A row group counts as consumed once its first row is handed out.
                if let Some(&(_, end)) = self.group_ends.get(self.group) {
                    self.stats.bytes = self.stats.bytes.max(end);
                }
                return match item {
                    Ok(doc) => {
                        self.stats.docs += 1;
                        Ok(Some(doc))
                    }
                    Err(bad) => {
                        self.stats.corrupt(bad.kind);
                        Err(SourceError::Corrupt {
                            path: self.path.clone(),
                            record: row,
                            offset,
                            message: format!("row {row}: {}", bad.message),
                        })
                    }
                };
            }
            if self.done {
                return Ok(None);
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    self.stats.bytes = self.file_len;
                }
                Err(e) => {
                    self.done = true;
                    return Err(e);
                }
            }
        }
    }

    fn stats(&self) -> &SourceStats {
        &self.stats
    }
}

fn is_string(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

fn is_string_list(ty: &DataType) -> bool {
    match ty {
        DataType::List(f) | DataType::LargeList(f) => is_string(f.data_type()),
        _ => false,
    }
}

fn is_scalar(ty: &DataType) -> bool {
    is_string(ty)
        || ty.is_integer()
        || ty.is_floating()
        || ty.is_temporal()
        || matches!(
            ty,
            DataType::Boolean | DataType::Decimal128(..) | DataType::Decimal256(..)
        )
}

fn string_at(col: &ArrayRef, i: usize) -> Option<&str> {
    match col.data_type() {
        DataType::Utf8 => Some(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Some(col.as_string::<i64>().value(i)),
        DataType::Utf8View => Some(col.as_string_view().value(i)),
        _ => None,
    }
}

/// The value at row `i` of a non-null scalar cell, as JSON.
fn scalar(col: &ArrayRef, i: usize) -> Option<Value> {
    if col.is_null(i) {
        return None;
    }
    macro_rules! prim {
        ($t:ty) => {
            Value::from(col.as_primitive::<$t>().value(i))
        };
    }
    Some(match col.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Value::String(string_at(col, i)?.to_string())
        }
        DataType::Boolean => Value::Bool(col.as_boolean().value(i)),
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        // NaN and infinities have no JSON form: they become null.
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        _ => {
            let formatter =
                ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default()).ok()?;
            Value::String(formatter.value(i).to_string())
        }
    })
}

fn scalar_or_null(col: &ArrayRef, i: usize) -> Value {
    scalar(col, i).unwrap_or(Value::Null)
}

fn value_to_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Flags from a `List<Utf8>` cell or a Utf8 cell holding a JSON array of strings; gives
/// the cell back as JSON when it is neither.
fn flags_at(col: &ArrayRef, i: usize) -> Result<Vec<String>, Value> {
    let items = match col.data_type() {
        DataType::List(_) => Some(col.as_list::<i32>().value(i)),
        DataType::LargeList(_) => Some(col.as_list::<i64>().value(i)),
        _ => None,
    };
    if let Some(items) = items {
        return Ok((0..items.len())
            .filter_map(|j| string_at(&items, j).filter(|_| !items.is_null(j)))
            .map(str::to_string)
            .collect());
    }
    let v = scalar_or_null(col, i);
    if let Some(s) = v.as_str()
        && let Ok(flags) = serde_json::from_str::<Vec<String>>(s)
    {
        return Ok(flags);
    }
    Err(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_mentions;
    use arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, LargeStringArray, StringArray,
        StringViewArray, StructArray,
    };
    use arrow::datatypes::Field;
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    /// A new temporary directory with Parquet file `name` holding one batch of
    /// `columns`; the directory is removed when the returned guard is dropped.
    fn parquet_file(name: &str, columns: Vec<(&str, ArrayRef)>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        write_batch(&p, columns);
        (dir, p)
    }

    fn write_batch(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let file = File::create(path).unwrap();
        let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    /// A string column.
    fn strings(values: Vec<&str>) -> ArrayRef {
        Arc::new(StringArray::from(values))
    }

    /// An integer column.
    fn ints(values: Vec<i64>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }

    /// Why opening `path` fails.
    fn open_error(path: &Path, options: &ParquetOptions) -> SourceError {
        ParquetSource::open(path, options, "s").err().unwrap()
    }

    fn read(
        path: &Path,
        options: &ParquetOptions,
    ) -> (Vec<Document>, Vec<SourceError>, SourceStats) {
        let mut src = ParquetSource::open(path, options, "dflt").unwrap();
        let (docs, errors) = super::super::read_all(&mut src);
        (docs, errors, src.stats().clone())
    }

    #[test]
    fn text_only_file_gets_generated_ids_in_small_batches() {
        let texts: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
        let (_dir, p) = parquet_file(
            "books-1.parquet",
            vec![("text", Arc::new(LargeStringArray::from(texts)) as ArrayRef)],
        );
        let options = ParquetOptions {
            batch_rows: 3,
            ..Default::default()
        };
        let (docs, errors, stats) = read(&p, &options);
        assert!(errors.is_empty());
        assert_eq!(docs.len(), 10);
        assert_eq!(docs[0].id, "books-1/0");
        assert_eq!(docs[9].id, "books-1/9");
        assert_eq!(docs[9].text, "t9");
        assert!(docs.iter().all(|d| d.source == "dflt" && d.meta.is_empty()));
        assert_eq!((stats.records, stats.docs), (10, 10));
        assert_eq!(stats.bytes, std::fs::metadata(&p).unwrap().len());
    }

    #[test]
    fn null_text_is_corrupt_and_other_columns_go_to_extra() {
        let nested = StructArray::from(vec![(
            Arc::new(Field::new("a", DataType::Int64, false)),
            ints(vec![1, 2, 3]),
        )]);
        let (_dir, p) = parquet_file(
            "x.parquet",
            vec![
                ("id", ints(vec![10, 11, 12])),
                (
                    "body",
                    Arc::new(StringViewArray::from(vec![Some("a"), None, Some("c")])),
                ),
                (
                    "source",
                    Arc::new(StringArray::from(vec![Some("wiki"), None, Some("")])),
                ),
                ("lang", strings(vec!["en", "de", "fr"])),
                ("offset", ints(vec![5, -1, 7])),
                (
                    "score",
                    Arc::new(Float64Array::from(vec![Some(0.5), None, Some(f64::NAN)])),
                ),
                ("ok", Arc::new(BooleanArray::from(vec![true, false, true]))),
                ("day", Arc::new(Date32Array::from(vec![0, 1, 19000]))),
                ("nested", Arc::new(nested)),
            ],
        );
        let options = ParquetOptions {
            text_column: "body".into(),
            ..Default::default()
        };
        let (docs, errors, stats) = read(&p, &options);
        assert_eq!(docs.len(), 2);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].is_recoverable());
        assert_mentions(&errors[0].to_string(), &["x.parquet", "row 1"]);
        assert_eq!(stats.corrupt["null_text"], 1);
        assert_eq!((stats.records, stats.docs), (3, 2));

        let (a, c) = (&docs[0], &docs[1]);
        assert_eq!(
            (a.id.as_str(), a.text.as_str(), a.source.as_str()),
            ("10", "a", "wiki")
        );
        assert_eq!((c.id.as_str(), c.source.as_str()), ("12", "dflt"));
        assert_eq!(a.meta.lang.as_deref(), Some("en"));
        assert_eq!(a.meta.offset, Some(5));
        assert_eq!(a.meta.extra["score"], serde_json::json!(0.5));
        assert_eq!(a.meta.extra["ok"], serde_json::json!(true));
        assert_eq!(a.meta.extra["day"], "1970-01-01");
        assert!(!a.meta.extra.contains_key("nested"));
        assert_eq!(c.meta.extra["score"], Value::Null);
        assert_eq!(c.meta.extra["day"], "2022-01-08");
        assert_eq!(c.meta.offset, Some(7));
    }

    #[test]
    fn values_that_do_not_fit_their_slot_stay_in_extra() {
        let (_dir, p) = parquet_file(
            "x.parquet",
            vec![("text", strings(vec!["a"])), ("offset", ints(vec![-1]))],
        );
        let (docs, _, _) = read(&p, &ParquetOptions::default());
        assert_eq!(docs[0].meta.offset, None);
        assert_eq!(docs[0].meta.extra["offset"], serde_json::json!(-1));

        // Columns of the sink's names but unexpected types are kept, not lost.
        write_batch(
            &p,
            vec![
                ("text", strings(vec!["a"])),
                ("source", ints(vec![3])),
                ("meta_extra", Arc::new(BooleanArray::from(vec![true]))),
                ("quality", strings(vec!["high"])),
                ("flags", strings(vec!["[\"a/b\"]"])),
            ],
        );
        let (docs, _, _) = read(&p, &ParquetOptions::default());
        let d = &docs[0];
        assert_eq!(d.source, "dflt");
        assert_eq!(d.meta.extra["source"], serde_json::json!(3));
        assert_eq!(d.meta.extra["meta_extra"], serde_json::json!(true));
        assert_eq!(d.meta.extra["quality"], "high");
        assert_eq!(d.scores.quality, None);
        assert_eq!(d.scores.flags, ["a/b"]);
    }

    #[test]
    fn missing_or_wrong_text_column_names_file_and_columns() {
        let (_dir, p) = parquet_file(
            "notext.parquet",
            vec![("content", strings(vec!["a"])), ("n", ints(vec![1]))],
        );
        let err = open_error(&p, &ParquetOptions::default()).to_string();
        assert_mentions(&err, &["notext.parquet", "`text`", "content, n"]);

        let options = ParquetOptions {
            text_column: "n".into(),
            ..Default::default()
        };
        let err = open_error(&p, &options).to_string();
        assert_mentions(&err, &["notext.parquet", "Int64"]);
    }

    #[test]
    fn missing_and_non_parquet_files_fail_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.parquet");
        let err = open_error(&missing, &ParquetOptions::default());
        assert!(matches!(err, SourceError::Open { .. }));
        assert_mentions(&err.to_string(), &["gone.parquet"]);

        let junk = dir.path().join("junk.parquet");
        std::fs::write(&junk, b"{\"text\": \"not parquet\"}\n").unwrap();
        let err = open_error(&junk, &ParquetOptions::default());
        assert!(matches!(err, SourceError::Fatal { .. }), "{err}");
        assert_mentions(&err.to_string(), &["junk.parquet"]);
    }

    #[test]
    fn options_reject_unknown_keys() {
        assert!(toml::from_str::<ParquetOptions>("text_col = \"x\"").is_err());
        let o: ParquetOptions = toml::from_str("batch_rows = 7").unwrap();
        assert_eq!((o.batch_rows, o.text_column.as_str()), (7, "text"));
    }
}
