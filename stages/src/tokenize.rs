//! `tokenize`: the last stage of a run. It is a barrier: packing shuffles the documents
//! of the whole run into sequences, so it runs as a pass of its own (one task) once every
//! shard of the run is complete, over `OUT/docs/`, writing `OUT/<dir>/` as
//! `corpus tokens pack` does:
//!
//! ```text
//! OUT/tokens/manifest.json              vocabulary, settings, splits, counts
//! OUT/tokens/train/shard-00000.parquet  packed sequences (or .arrow)
//! OUT/tokens/validation/shard-00000.parquet
//! OUT/tokenize/part-00000.ids           token ids of OUT/docs/part-00000, streamed by the
//! OUT/tokenize/part-00000.ids.head      last per-file pass (the head, written last, says
//!                                       what they match); removed once packed
//! ```
//!
//! The text is encoded in the last per-file pass, on its workers, as each shard is
//! written ([`encode`]; ids `upsample` counted with the same vocabulary and pattern are
//! taken from the document); packing encodes only shards without a matching ids file.
//!
//! The stage is configured here and carried out by the pipeline's plan
//! (`corpus::plan`), which also checks the vocabulary before the run starts.

use crate::document::Document;
use crate::stage::StageError;
use corpus_models::tokenizer::{Rank, Tokenizer, TokenizerError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The value of `meta.extra.format` on instruction data rendered in ChatML (by the JSONL
/// source).
pub const CHATML: &str = "chatml";

/// ChatML's markers: the special tokens a ChatML document's text contains.
pub const CHATML_MARKERS: [&str; 2] = ["<|im_start|>", "<|im_end|>"];

/// True when the document is instruction data rendered in ChatML.
pub fn is_chatml(doc: &Document) -> bool {
    doc.meta
        .extra
        .get("format")
        .and_then(serde_json::Value::as_str)
        == Some(CHATML)
}

/// The token ids of a document as training sees them (no special tokens added): ChatML
/// documents with their markers as the special tokens, any other text as ordinary text,
/// markers included. Every count and every shard of token ids comes from here
/// ([`Document::token_ids`] caches it).
pub fn encode(tok: &Tokenizer, doc: &Document) -> Result<Vec<Rank>, TokenizerError> {
    if is_chatml(doc) {
        let mut ids = Vec::new();
        tok.encode_with_specials(&doc.text, &CHATML_MARKERS, &mut ids)?;
        Ok(ids)
    } else {
        tok.encode(&doc.text)
    }
}

/// The stage kind.
pub const KIND: &str = "tokenize";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str = "tokenize and pack the kept documents into shuffled training sequences (last stage; a pass of its own after the run)";

/// Checks the configuration; the stage is no per-document stage: the pipeline's plan
/// runs it as a pass of its own, so asking to build it here is an error.
pub fn stage(config: &Config) -> Result<crate::stage::AnyStage, StageError> {
    config.validate()?;
    Err(StageError::Config {
        kind: KIND,
        message: "tokenize is a pass of its own after the per-document stages; the \
                  pipeline's plan runs it"
            .into(),
    })
}

/// Shard file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardFormat {
    /// Parquet, zstd.
    Parquet,
    /// Arrow IPC file format.
    Arrow,
}

impl ShardFormat {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            ShardFormat::Parquet => "parquet",
            ShardFormat::Arrow => "arrow",
        }
    }
}

/// Configuration of the `tokenize` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Vocabulary: `cl100k` or a tiktoken-format file (relative to the config file).
    pub vocab: String,
    /// Pre-tokenization: `qwen`, `cl100k` or a regex.
    pub pattern: String,
    /// Reserved `<|extra_N|>` tokens.
    pub extra_tokens: u32,
    /// Where the shards go, relative to the output directory.
    pub dir: String,
    /// Tokens per sequence (the context length).
    pub seq_len: usize,
    /// Share of documents in the validation split.
    pub val_fraction: f64,
    /// Shuffle seed.
    pub seed: u64,
    /// Shard format: `parquet` or `arrow`.
    pub format: ShardFormat,
    /// Sequences per shard file.
    pub shard_sequences: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            vocab: "cl100k".into(),
            pattern: "qwen".into(),
            extra_tokens: corpus_models::tokenizer::QWEN_EXTRA_TOKENS,
            dir: "tokens".into(),
            seq_len: 2048,
            val_fraction: 0.01,
            seed: 0,
            format: ShardFormat::Parquet,
            shard_sequences: 8192,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "vocab",
        doc: "cl100k (built in) or a tiktoken-format vocabulary file, plain or .gz (relative to the config file)",
    },
    crate::FieldDoc {
        name: "pattern",
        doc: "pre-tokenization: qwen (digits split one by one), cl100k, or a regex",
    },
    crate::FieldDoc {
        name: "extra_tokens",
        doc: "reserved <|extra_N|> special tokens after the three named ones",
    },
    crate::FieldDoc {
        name: "dir",
        doc: "where the shards go, relative to the output directory",
    },
    crate::FieldDoc {
        name: "seq_len",
        doc: "tokens per packed sequence (the context length)",
    },
    crate::FieldDoc {
        name: "val_fraction",
        doc: "share of documents in the validation split (0..1)",
    },
    crate::FieldDoc {
        name: "seed",
        doc: "seed of the document shuffle and the split",
    },
    crate::FieldDoc {
        name: "format",
        doc: "shard format: parquet (zstd) or arrow (IPC file)",
    },
    crate::FieldDoc {
        name: "shard_sequences",
        doc: "sequences per shard file",
    },
];

impl Config {
    /// Checks what serde cannot: the settings, and that the vocabulary file exists, so
    /// a wrong path fails when the run starts rather than after it.
    pub fn validate(&self) -> Result<(), StageError> {
        let invalid = |message: String| StageError::Config {
            kind: KIND,
            message,
        };
        if self.seq_len == 0 || self.seq_len > u32::MAX as usize {
            return Err(invalid(format!(
                "seq_len {} must be at least 1",
                self.seq_len
            )));
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(invalid(format!(
                "val_fraction {} is not in 0..1",
                self.val_fraction
            )));
        }
        if self.shard_sequences == 0 {
            return Err(invalid("shard_sequences must be at least 1".into()));
        }
        if self.dir.is_empty() || Path::new(&self.dir).is_absolute() {
            return Err(invalid(format!(
                "dir `{}` must be a relative path under the output directory",
                self.dir
            )));
        }
        if let corpus_models::tokenizer::VocabSource::File(path) =
            corpus_models::tokenizer::VocabSource::parse(&self.vocab)
            && !path.is_file()
        {
            return Err(invalid(format!(
                "vocabulary {} not found (vocab is `cl100k` or a tiktoken-format file)",
                path.display()
            )));
        }
        Ok(())
    }
}
