//! `corpus export`: token shards to Megatron-LM's indexed dataset, documents to JSONL or
//! Parquet with chosen fields.
//!
//! Megatron (`MMapIndexedDataset`, `megatron/core/datasets/indexed_dataset.py`): `PREFIX.bin`
//! holds the token ids of the documents back to back, and `PREFIX.idx` is
//! `MMIDIDX\0\0`, version (u64 = 1), dtype code (u8: 8 = uint16 when the vocabulary has
//! fewer than 65,500 ids, else 4 = int32), sequence count N (u64), document count N + 1
//! (u64), then N int32 sizes, N int64 byte pointers and N + 1 int64 document indices
//! (0, 1, ..., N), all little-endian. One sequence is one document of the pack's split in
//! its shuffled order, with its `<|endoftext|>` (as Megatron's `--append-eod`); the
//! padding of the last sequence is left out.

use super::pack::{self, Manifest, ShardFormat};
use super::tokens::{TokensError, expand};
use crate::io::AtomicFile;
use arrow::array::{
    ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use arrow::datatypes::{DataType, Field, Schema, UInt32Type, UInt64Type};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Megatron's index header.
pub const MEGATRON_MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";

/// What a Megatron export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MegatronSummary {
    /// Documents (sequences in Megatron's terms).
    pub docs: u64,
    /// Tokens written to `.bin`.
    pub tokens: u64,
    /// Megatron dtype code.
    pub dtype_code: u8,
}

/// Reads all record batches of a shard or document table.
pub fn read_batches(path: &Path) -> Result<Vec<RecordBatch>, TokensError> {
    let file = std::fs::File::open(path).map_err(|e| TokensError::file(path, e))?;
    let err = |e: &dyn std::fmt::Display| TokensError::file(path, e);
    if path
        .extension()
        .is_some_and(|e| e == ShardFormat::Arrow.ext())
    {
        let reader = arrow::ipc::reader::FileReader::try_new(std::io::BufReader::new(file), None)
            .map_err(|e| err(&e))?;
        reader.map(|b| b.map_err(|e| err(&e))).collect()
    } else {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| err(&e))?
            .build()
            .map_err(|e| err(&e))?;
        reader.map(|b| b.map_err(|e| err(&e))).collect()
    }
}

fn column<'a>(b: &'a RecordBatch, name: &str, path: &Path) -> Result<&'a ArrayRef, TokensError> {
    b.column_by_name(name)
        .ok_or_else(|| TokensError::file(path, format!("no column `{name}`")))
}

/// Writes the documents of `split` of the pack output `dir` as `PREFIX.bin` and
/// `PREFIX.idx`.
pub fn megatron(dir: &Path, split: &str, prefix: &Path) -> Result<MegatronSummary, TokensError> {
    let m: Manifest = pack::read_manifest(dir)?;
    let info = m.split(dir, split).map_err(TokensError::Usage)?;
    let wide = m.tokenizer.vocab_size >= 65_500;
    let (code, itemsize) = if wide { (4u8, 4u64) } else { (8u8, 2u64) };
    // Document sizes (with the <|endoftext|>), checking that documents follow each other.
    let docs_path = dir.join(&info.docs_file);
    let seq_len = m.config.seq_len as u64;
    let mut sizes: Vec<u64> = Vec::with_capacity(info.docs as usize);
    let mut next = 0u64;
    for b in read_batches(&docs_path)? {
        let n = column(&b, "n_tokens", &docs_path)?.as_primitive::<UInt32Type>();
        let seq = column(&b, "sequence", &docs_path)?.as_primitive::<UInt64Type>();
        let off = column(&b, "offset", &docs_path)?.as_primitive::<UInt32Type>();
        for i in 0..b.num_rows() {
            let start = seq.value(i) * seq_len + u64::from(off.value(i));
            if start != next {
                return Err(TokensError::file(
                    &docs_path,
                    format!(
                        "row {}: starts at token {start}, expected {next}",
                        sizes.len()
                    ),
                ));
            }
            let size = u64::from(n.value(i)) + 1;
            sizes.push(size);
            next += size;
        }
    }
    let total = next;
    let bin_path = PathBuf::from(format!("{}.bin", prefix.display()));
    let idx_path = PathBuf::from(format!("{}.idx", prefix.display()));
    let bin = AtomicFile::new(&bin_path);
    let f = std::fs::File::create(bin.tmp_path()).map_err(|e| TokensError::file(&bin_path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(1 << 20);
    for shard in pack::shard_paths(dir, &m, split) {
        for b in read_batches(&shard)? {
            let tokens = column(&b, "tokens", &shard)?.as_fixed_size_list();
            let values = tokens.values().as_primitive::<UInt32Type>();
            buf.clear();
            for &t in values.values().iter() {
                if written == total {
                    break;
                }
                if wide {
                    buf.extend_from_slice(&(t as i32).to_le_bytes());
                } else {
                    buf.extend_from_slice(&(t as u16).to_le_bytes());
                }
                written += 1;
            }
            w.write_all(&buf)
                .map_err(|e| TokensError::file(&bin_path, e))?;
        }
    }
    if written != total {
        return Err(TokensError::file(
            dir,
            format!("the shards of `{split}` hold {written} tokens, the documents {total}"),
        ));
    }
    w.flush().map_err(|e| TokensError::file(&bin_path, e))?;
    drop(w);
    let mut idx = Vec::with_capacity(34 + sizes.len() * 20);
    idx.extend_from_slice(MEGATRON_MAGIC);
    idx.extend_from_slice(&1u64.to_le_bytes());
    idx.push(code);
    idx.extend_from_slice(&(sizes.len() as u64).to_le_bytes());
    idx.extend_from_slice(&(sizes.len() as u64 + 1).to_le_bytes());
    for &s in &sizes {
        let s = i32::try_from(s).map_err(|_| {
            TokensError::file(&docs_path, format!("a document of {s} tokens is too long"))
        })?;
        idx.extend_from_slice(&s.to_le_bytes());
    }
    let mut ptr = 0u64;
    for &s in &sizes {
        idx.extend_from_slice(&(ptr as i64).to_le_bytes());
        ptr += s * itemsize;
    }
    for k in 0..=sizes.len() as i64 {
        idx.extend_from_slice(&k.to_le_bytes());
    }
    bin.commit().map_err(|e| TokensError::file(&bin_path, e))?;
    AtomicFile::write_all(&idx_path, &idx).map_err(|e| TokensError::file(&idx_path, e))?;
    Ok(MegatronSummary {
        docs: sizes.len() as u64,
        tokens: total,
        dtype_code: code,
    })
}

/// The value of `field` in a document serialized as the JSONL sink writes it: a
/// top-level key (`id`, `source`, `text`), else a `meta` key, else a `meta.extra` key;
/// a dotted path (`scores.quality`) walks objects. `Null` when absent.
pub fn field_value(doc: &Value, field: &str) -> Value {
    let walk = |mut v: &Value, path: &str| -> Option<Value> {
        for part in path.split('.') {
            v = v.get(part)?;
        }
        Some(v.clone())
    };
    walk(doc, field)
        .or_else(|| walk(&doc["meta"], field))
        .or_else(|| walk(&doc["meta"]["extra"], field))
        .unwrap_or(Value::Null)
}

/// Document output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocFormat {
    /// One JSON object per line with the fields in the order given.
    Jsonl,
    /// Parquet (zstd), one column per field: Utf8, Int64, Float64 or Boolean as the
    /// values are (nested values as JSON text).
    Parquet,
}

/// Writes the documents of `inputs` with only `fields`; returns the number written.
pub fn documents(
    inputs: &[String],
    fields: &[String],
    format: DocFormat,
    out: &Path,
) -> Result<u64, TokensError> {
    if fields.is_empty() {
        return Err(TokensError::Usage("--fields names no field".into()));
    }
    let files = expand(inputs)?;
    let mut rows: Vec<Vec<Value>> = Vec::new();
    let mut jsonl = Vec::new();
    for f in &files {
        let mut src = crate::source::open(f, &Default::default())?;
        while let Some(doc) = src.next_intact(&mut crate::source::warn_skipped)? {
            let v = serde_json::to_value(&doc).map_err(|e| TokensError::file(&f.path, e))?;
            let row: Vec<Value> = fields.iter().map(|k| field_value(&v, k)).collect();
            match format {
                DocFormat::Jsonl => {
                    jsonl.push(b'{');
                    for (i, (k, v)) in fields.iter().zip(&row).enumerate() {
                        if i > 0 {
                            jsonl.push(b',');
                        }
                        serde_json::to_writer(&mut jsonl, k)
                            .and_then(|()| {
                                jsonl.push(b':');
                                serde_json::to_writer(&mut jsonl, v)
                            })
                            .map_err(|e| TokensError::file(out, e))?;
                    }
                    jsonl.extend_from_slice(b"}\n");
                }
                DocFormat::Parquet => rows.push(row),
            }
        }
    }
    match format {
        DocFormat::Jsonl => {
            let n = jsonl.iter().filter(|&&b| b == b'\n').count() as u64;
            super::tokens::write_output(out, &jsonl)?;
            Ok(n)
        }
        DocFormat::Parquet => {
            let n = rows.len() as u64;
            let mut columns: Vec<ArrayRef> = Vec::new();
            let mut schema = Vec::new();
            for (k, name) in fields.iter().enumerate() {
                let values: Vec<Value> = rows.iter_mut().map(|r| r[k].take()).collect();
                let array: ArrayRef = match column_type(&values) {
                    DataType::Int64 => {
                        Arc::new(Int64Array::from_iter(values.iter().map(Value::as_i64)))
                    }
                    DataType::Float64 => {
                        Arc::new(Float64Array::from_iter(values.iter().map(Value::as_f64)))
                    }
                    DataType::Boolean => {
                        Arc::new(BooleanArray::from_iter(values.iter().map(Value::as_bool)))
                    }
                    _ => Arc::new(StringArray::from_iter(values.into_iter().map(
                        |v| match v {
                            Value::Null => None,
                            Value::String(s) => Some(s),
                            other => Some(other.to_string()),
                        },
                    ))),
                };
                schema.push(Field::new(name, array.data_type().clone(), true));
                columns.push(array);
            }
            let schema = Arc::new(Schema::new(schema));
            let batch = RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| TokensError::file(out, e))?;
            pack::write_batches(out, schema, &[batch], ShardFormat::Parquet)?;
            Ok(n)
        }
    }
}

/// The Parquet column type of a field: Int64, Float64 or Boolean when every present value
/// is one, else Utf8.
pub fn column_type(values: &[Value]) -> DataType {
    let present = values.iter().filter(|v| !v.is_null());
    if present.clone().all(Value::is_i64) {
        DataType::Int64
    } else if present.clone().all(Value::is_number) {
        DataType::Float64
    } else if present.clone().all(Value::is_boolean) {
        DataType::Boolean
    } else {
        DataType::Utf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_resolve_top_level_meta_and_extra() {
        let doc = serde_json::json!({
            "id": "a", "text": "t", "source": "s",
            "meta": {"lang": "en", "extra": {"stars": 4, "deep": {"x": true}}},
            "scores": {"quality": 0.5}
        });
        assert_eq!(field_value(&doc, "id"), "a");
        assert_eq!(field_value(&doc, "lang"), "en");
        assert_eq!(field_value(&doc, "stars"), 4);
        assert_eq!(field_value(&doc, "deep.x"), true);
        assert_eq!(field_value(&doc, "scores.quality"), 0.5);
        assert_eq!(field_value(&doc, "nope"), Value::Null);
        assert_eq!(column_type(&[Value::Null, 4.into()]), DataType::Int64);
        assert_eq!(column_type(&[0.5.into(), 4.into()]), DataType::Float64);
        assert_eq!(column_type(&["x".into(), 4.into()]), DataType::Utf8);
    }
}
