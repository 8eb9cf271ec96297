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
//! | `flags` | List<Utf8> | `scores.flags`; null when empty |
//! | `drop_stage`, `drop_reason` | Utf8 | [`DropInfo`], only when asked for |
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
        if with_drop_info {
            out.push(Arc::new(stage));
            out.push(Arc::new(reason));
        }
        out
    }
}

/// Writes `.parquet` files (zstd), in the schema of the module documentation.
pub struct ParquetSink {
    path: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    with_drop_info: bool,
    columns: Columns,
    rows: usize,
    text_bytes: usize,
}

impl ParquetSink {
    /// Creates (truncates) `path`. `with_drop_info` adds the `drop_stage` and
    /// `drop_reason` columns of the dropped-documents side output.
    pub fn create(path: &Path, with_drop_info: bool) -> Result<ParquetSink, SinkError> {
        let file = File::create(path).map_err(|e| SinkError::write(path, e))?;
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
        if self.rows >= ROW_GROUP_ROWS || self.text_bytes >= ROW_GROUP_TEXT_BYTES {
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
