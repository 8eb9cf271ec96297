//! Parquet sink: one flat table, zstd-compressed.
//!
//! Schema (every column but `id`, `source` and `text` is nullable; null means unset):
//!
//! | column | type | from |
//! |---|---|---|
//! | `id`, `source`, `text` | Utf8, not null | [`Document`] |
//! | `url`, `warc_record_id`, `warc_filename`, `crawl` | Utf8 | [`Meta`](corpus_stages::Meta) |
//! | `offset` | UInt64 | `meta.offset` |
//! | `date` | Utf8 | `meta.date` |
//! | `http_status` | UInt16 | `meta.http_status` |
//! | `content_type`, `charset`, `title`, `lang` | Utf8 | `meta` |
//! | `lang_score` | Float32 | `meta.lang_score` |
//! | `content_hash` | Utf8 | `meta.content_hash` |
//! | `meta_extra` | Utf8 | `meta.extra` as a JSON object; null when empty |
//! | `quality`, `safety` | Float32 | [`Scores`](corpus_stages::Scores) |
//! | `flags` | `List<Utf8>` | `scores.flags`; null when empty |
//! | `drop_stage`, `drop_reason`, `drop_detail` | Utf8 | [`DropInfo`], only when asked for |
//!
//! Rows are buffered and cut into row groups of [`ROW_GROUP_ROWS`] rows, or earlier once
//! the buffered text reaches [`ROW_GROUP_TEXT_BYTES`]. Both cuts depend only on the
//! documents, never on how the caller spread its calls, so the same documents give a
//! byte-identical file. The Parquet source reads this schema back into the same
//! documents.

use super::{DocSink, DropInfo, SinkError};
use arrow::array::{
    ArrayRef, Float32Builder, ListBuilder, RecordBatch, StringBuilder, UInt16Builder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use corpus_stages::Document;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group (the last one may hold fewer).
pub const ROW_GROUP_ROWS: usize = 8192;

/// A row group is cut early once the text buffered for it reaches this many bytes,
/// which bounds the sink's memory with long documents.
pub const ROW_GROUP_TEXT_BYTES: usize = 64 << 20;

/// zstd level of the column chunks.
const ZSTD_LEVEL: i32 = 3;

/// The columns of the typed `Meta` fields, in schema order.
const META_COLUMNS: [(&str, DataType); 13] = [
    ("url", DataType::Utf8),
    ("warc_record_id", DataType::Utf8),
    ("warc_filename", DataType::Utf8),
    ("crawl", DataType::Utf8),
    ("offset", DataType::UInt64),
    ("date", DataType::Utf8),
    ("http_status", DataType::UInt16),
    ("content_type", DataType::Utf8),
    ("charset", DataType::Utf8),
    ("title", DataType::Utf8),
    ("lang", DataType::Utf8),
    ("lang_score", DataType::Float32),
    ("content_hash", DataType::Utf8),
];

/// The Arrow schema of the files this sink writes.
pub fn schema(with_drop_info: bool) -> SchemaRef {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("source", DataType::Utf8, false),
        Field::new("text", DataType::Utf8, false),
    ];
    for (name, ty) in META_COLUMNS {
        fields.push(Field::new(name, ty, true));
    }
    fields.push(Field::new("meta_extra", DataType::Utf8, true));
    fields.push(Field::new("quality", DataType::Float32, true));
    fields.push(Field::new("safety", DataType::Float32, true));
    fields.push(Field::new(
        "flags",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    ));
    if with_drop_info {
        fields.push(Field::new("drop_stage", DataType::Utf8, true));
        fields.push(Field::new("drop_reason", DataType::Utf8, true));
        fields.push(Field::new("drop_detail", DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// Column builders of the row group being buffered.
#[derive(Default)]
struct Columns {
    id: StringBuilder,
    source: StringBuilder,
    text: StringBuilder,
    url: StringBuilder,
    warc_record_id: StringBuilder,
    warc_filename: StringBuilder,
    crawl: StringBuilder,
    offset: UInt64Builder,
    date: StringBuilder,
    http_status: UInt16Builder,
    content_type: StringBuilder,
    charset: StringBuilder,
    title: StringBuilder,
    lang: StringBuilder,
    lang_score: Float32Builder,
    content_hash: StringBuilder,
    meta_extra: StringBuilder,
    quality: Float32Builder,
    safety: Float32Builder,
    flags: ListBuilder<StringBuilder>,
    drop_stage: StringBuilder,
    drop_reason: StringBuilder,
    drop_detail: StringBuilder,
}

impl Columns {
    fn push(&mut self, doc: &Document, drop: Option<&DropInfo>, extra_json: Option<&str>) {
        let m = &doc.meta;
        self.id.append_value(&doc.id);
        self.source.append_value(&doc.source);
        self.text.append_value(&doc.text);
        self.url.append_option(m.url.as_deref());
        self.warc_record_id
            .append_option(m.warc_record_id.as_deref());
        self.warc_filename.append_option(m.warc_filename.as_deref());
        self.crawl.append_option(m.crawl.as_deref());
        self.offset.append_option(m.offset);
        self.date.append_option(m.date.as_deref());
        self.http_status.append_option(m.http_status);
        self.content_type.append_option(m.content_type.as_deref());
        self.charset.append_option(m.charset.as_deref());
        self.title.append_option(m.title.as_deref());
        self.lang.append_option(m.lang.as_deref());
        self.lang_score.append_option(m.lang_score);
        self.content_hash.append_option(m.content_hash.as_deref());
        self.meta_extra.append_option(extra_json);
        self.quality.append_option(doc.scores.quality);
        self.safety.append_option(doc.scores.safety);
        if doc.scores.flags.is_empty() {
            self.flags.append_null();
        } else {
            for f in &doc.scores.flags {
                self.flags.values().append_value(f);
            }
            self.flags.append(true);
        }
        self.drop_stage
            .append_option(drop.map(|d| d.stage.as_str()));
        self.drop_reason
            .append_option(drop.map(|d| d.reason.as_str()));
        self.drop_detail
            .append_option(drop.and_then(|d| d.detail.as_deref()));
    }

    /// The buffered rows as arrays in schema order; leaves the builders empty.
    fn finish(&mut self, with_drop_info: bool) -> Vec<ArrayRef> {
        let mut out: Vec<ArrayRef> = vec![
            Arc::new(self.id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.url.finish()),
            Arc::new(self.warc_record_id.finish()),
            Arc::new(self.warc_filename.finish()),
            Arc::new(self.crawl.finish()),
            Arc::new(self.offset.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.http_status.finish()),
            Arc::new(self.content_type.finish()),
            Arc::new(self.charset.finish()),
            Arc::new(self.title.finish()),
            Arc::new(self.lang.finish()),
            Arc::new(self.lang_score.finish()),
            Arc::new(self.content_hash.finish()),
            Arc::new(self.meta_extra.finish()),
            Arc::new(self.quality.finish()),
            Arc::new(self.safety.finish()),
            Arc::new(self.flags.finish()),
        ];
        let stage = self.drop_stage.finish();
        let reason = self.drop_reason.finish();
        let detail = self.drop_detail.finish();
        if with_drop_info {
            out.push(Arc::new(stage));
            out.push(Arc::new(reason));
            out.push(Arc::new(detail));
        }
        out
    }
}

/// Writes `.parquet` files (zstd), in the schema of the module documentation.
pub struct ParquetSink {
    path: PathBuf,
    writer: ArrowWriter<BufWriter<Box<dyn Write + Send>>>,
    schema: SchemaRef,
    with_drop_info: bool,
    columns: Columns,
    rows: usize,
    text_bytes: usize,
    max_rows: usize,
    max_text_bytes: usize,
}

impl ParquetSink {
    /// Creates (truncates) `path`. `with_drop_info` adds the `drop_stage` and
    /// `drop_reason` columns of the dropped-documents side output.
    pub fn create(path: &Path, with_drop_info: bool) -> Result<ParquetSink, SinkError> {
        let file = File::create(path).map_err(|e| SinkError::write(path, e))?;
        Self::to_writer(Box::new(file), path, with_drop_info)
    }

    /// Writes to `out` (a file or an upload); `path` names it in errors.
    pub fn to_writer(
        out: Box<dyn Write + Send>,
        path: &Path,
        with_drop_info: bool,
    ) -> Result<ParquetSink, SinkError> {
        Self::with_limits(
            out,
            path,
            with_drop_info,
            ROW_GROUP_ROWS,
            ROW_GROUP_TEXT_BYTES,
        )
    }

    #[cfg(test)]
    fn create_with_limits(
        path: &Path,
        with_drop_info: bool,
        max_rows: usize,
        max_text_bytes: usize,
    ) -> Result<ParquetSink, SinkError> {
        let file = File::create(path).map_err(|e| SinkError::write(path, e))?;
        Self::with_limits(
            Box::new(file),
            path,
            with_drop_info,
            max_rows,
            max_text_bytes,
        )
    }

    fn with_limits(
        file: Box<dyn Write + Send>,
        path: &Path,
        with_drop_info: bool,
        max_rows: usize,
        max_text_bytes: usize,
    ) -> Result<ParquetSink, SinkError> {
        let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|e| SinkError::write(path, e))?;
        // Row groups are cut by `flush_group` alone, so the writer's own row and byte
        // limits are turned off.
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(None)
            .build();
        let schema = schema(with_drop_info);
        let writer = ArrowWriter::try_new(
            BufWriter::with_capacity(1 << 16, file),
            schema.clone(),
            Some(props),
        )
        .map_err(|e| SinkError::write(path, e))?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            writer,
            schema,
            with_drop_info,
            columns: Columns::default(),
            rows: 0,
            text_bytes: 0,
            max_rows,
            max_text_bytes,
        })
    }

    fn flush_group(&mut self) -> Result<(), SinkError> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays = self.columns.finish(self.with_drop_info);
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(|e| SinkError::write(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| SinkError::write(&self.path, e))?;
        self.writer
            .flush()
            .map_err(|e| SinkError::write(&self.path, e))?;
        self.rows = 0;
        self.text_bytes = 0;
        Ok(())
    }
}

impl DocSink for ParquetSink {
    fn write(&mut self, doc: &Document, drop: Option<&DropInfo>) -> Result<(), SinkError> {
        let extra = if doc.meta.extra.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&doc.meta.extra)
                    .map_err(|e| SinkError::write(&self.path, e))?,
            )
        };
        self.columns.push(doc, drop, extra.as_deref());
        self.rows += 1;
        self.text_bytes += doc.text.len();
        if self.rows >= self.max_rows || self.text_bytes >= self.max_text_bytes {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), SinkError> {
        self.flush_group()?;
        let path = self.path.clone();
        let buffered = self
            .writer
            .into_inner()
            .map_err(|e| SinkError::write(&path, e))?;
        let mut file = buffered
            .into_inner()
            .map_err(|e| SinkError::write(&path, e.error()))?;
        file.flush().map_err(|e| SinkError::write(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn docs(n: usize) -> Vec<Document> {
        (0..n)
            .map(|i| {
                let mut d = Document::new(format!("d{i}"), "web", format!("text number {i}"));
                if i % 2 == 0 {
                    d.meta.lang = Some("en".into());
                    d.meta.extra.insert("k".into(), serde_json::json!(i));
                    d.scores.flags.push("a/b".into());
                }
                d
            })
            .collect()
    }

    fn write(path: &Path, sink: ParquetSink, docs: &[Document], drop: Option<&DropInfo>) {
        let mut sink: Box<dyn DocSink> = Box::new(sink);
        for d in docs {
            sink.write(d, drop).unwrap();
        }
        sink.finish().unwrap();
        assert!(path.exists());
    }

    fn row_group_sizes(path: &Path) -> Vec<i64> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let groups = builder.metadata().row_groups();
        groups.iter().map(|g| g.num_rows()).collect()
    }

    #[test]
    fn same_documents_give_identical_files_in_fixed_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let docs = docs(20_000);
        let a = dir.path().join("a.parquet");
        let b = dir.path().join("b.parquet");
        write(&a, ParquetSink::create(&a, false).unwrap(), &docs, None);
        write(&b, ParquetSink::create(&b, false).unwrap(), &docs, None);
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(row_group_sizes(&a), [8192, 8192, 3616]);

        // One document changed: different bytes (the comparison above can fail).
        let mut other = docs.clone();
        other[19_999].text.push('!');
        write(&b, ParquetSink::create(&b, false).unwrap(), &other, None);
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn text_budget_cuts_row_groups_early() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        // Texts are 13-14 bytes: the budget of 20 is reached on every second row.
        let sink = ParquetSink::create_with_limits(&p, false, 1000, 20).unwrap();
        write(&p, sink, &docs(5), None);
        assert_eq!(row_group_sizes(&p), [2, 2, 1]);
    }

    #[test]
    fn drop_info_columns_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let info = DropInfo {
            stage: "length".into(),
            reason: "too_short".into(),
            detail: Some("characters 1 < 5".into()),
        };
        let with = dir.path().join("with.parquet");
        write(
            &with,
            ParquetSink::create(&with, true).unwrap(),
            &docs(3),
            Some(&info),
        );
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&with).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.schema(), schema(true));
        let stage = batch
            .column_by_name("drop_stage")
            .unwrap()
            .as_string::<i32>();
        let reason = batch
            .column_by_name("drop_reason")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(stage.value(2), "length");
        assert_eq!(reason.value(0), "too_short");
        let extra = batch
            .column_by_name("meta_extra")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(extra.value(0), r#"{"k":0}"#);
        assert!(extra.is_null(1));

        let without = dir.path().join("without.parquet");
        write(
            &without,
            ParquetSink::create(&without, false).unwrap(),
            &docs(3),
            None,
        );
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&without).unwrap()).unwrap();
        assert!(builder.schema().field_with_name("drop_stage").is_err());
        assert_eq!(builder.schema().fields().len(), 20);
    }

    #[test]
    fn create_in_missing_directory_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/x.parquet");
        let err = ParquetSink::create(&p, false).err().unwrap().to_string();
        assert!(err.contains("no/such/dir/x.parquet"), "{err}");
    }
}
