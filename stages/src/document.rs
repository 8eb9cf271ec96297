//! The unit of work: one document with its text and typed metadata.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One document flowing through the pipeline.
///
/// Serialized (JSON lines, Parquet columns) with `raw` left out: `raw` carries the
/// undecoded body of an HTML response only until a stage turns it into `text`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable identifier: the WARC record id, the id field of a JSONL record, or
    /// `<file stem>/<ordinal>` when the input has none.
    pub id: String,
    /// Where the document came from (a source name from the config, or the input
    /// format's default); upsampling and reports key on it.
    pub source: String,
    /// The document text (UTF-8).
    pub text: String,
    /// The undecoded payload (for WARC responses: the HTTP body), kept for stages that
    /// need the bytes themselves, such as HTML extraction with charset detection.
    #[serde(skip)]
    pub raw: Option<Vec<u8>>,
    /// Typed metadata.
    #[serde(default, skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
    /// Scores and rule flags written by scoring stages.
    #[serde(default, skip_serializing_if = "Scores::is_empty")]
    pub scores: Scores,
    /// Extra copies of the document to write (set by `upsample`); the executor writes
    /// them after the document with ids `<id>#1`, `<id>#2`... Not serialized.
    #[serde(skip)]
    pub repeat: u32,
    /// Where the document was read: set by the reader, used by passes that must find the
    /// same document again in a later read of the same input (MinHash dedup). Not
    /// serialized.
    #[serde(skip)]
    pub origin: Option<Origin>,
    /// Values derived from the text that several stages need, computed once by the
    /// first stage that needs them and carried to the others. Not serialized.
    #[serde(skip)]
    pub derived: Derived,
    /// Set by the stage that drops the document: what its rule measured against its
    /// threshold ([`crate::stage::Failure::drop`]). The executor moves it into the drop
    /// information of the side output (`drop.detail`); never set on a kept document. Not
    /// serialized with the document.
    #[serde(skip)]
    pub drop_detail: Option<String>,
}

/// Values derived from a document's text, cached on the document for the stages after
/// the one that computed them. Each is tagged with a hash of the text it was computed
/// from, so a stage that rewrites the text makes it stale without knowing of it.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// The classifiers' hashed n-gram features (`corpus_models::features`), shared by
    /// every `classifier` stage of a run.
    features: Option<(u64, corpus_models::features::Features)>,
    /// The dedup key of the text ([`crate::normalize::dedup_key`]), with the text hash:
    /// `exact_dedup`, MinHash and `decontam` read it.
    key: Option<(u64, String)>,
    /// The token ids of the text under one encoding (text hash, encoding id, ids):
    /// counted by `upsample`, packed by `tokenize`.
    tokens: Option<(u64, u64, Vec<corpus_models::tokenizer::Rank>)>,
}

impl Derived {
    /// Drops the classifier features, the large part (tens of kilobytes a document),
    /// once no stage will read them.
    pub fn drop_features(&mut self) {
        self.features = None;
    }
}

// Derived values are a cache, not part of what a document is.
impl PartialEq for Derived {
    fn eq(&self, _: &Derived) -> bool {
        true
    }
}

impl Document {
    /// The classifier features of the text: computed on first use, then reused while
    /// the text stays the same.
    pub fn features(&mut self) -> &corpus_models::features::Features {
        let hash = xxhash_rust::xxh3::xxh3_64(self.text.as_bytes());
        let cached = &mut self.derived.features;
        if cached.as_ref().is_none_or(|(h, _)| *h != hash) {
            *cached = Some((hash, corpus_models::features::extract(&self.text)));
        }
        &cached.as_ref().expect("set above").1
    }

    /// The dedup key of the text ([`crate::normalize::dedup_key`]): computed on first
    /// use, then shared by `exact_dedup`, MinHash and `decontam` while the text stays the
    /// same.
    pub fn dedup_key(&mut self) -> &str {
        let hash = xxhash_rust::xxh3::xxh3_64(self.text.as_bytes());
        if !matches!(&self.derived.key, Some((h, _)) if *h == hash) {
            let mut key = String::with_capacity(self.text.len());
            crate::normalize::dedup_key(&self.text, &mut key);
            self.derived.key = Some((hash, key));
        }
        &self.derived.key.as_ref().expect("set above").1
    }

    /// The token ids of the text under `tok` ([`crate::tokenize::encode`]): computed on
    /// first use, then reused while the text stays the same, by any tokenizer with the
    /// same vocabulary and pattern.
    pub fn token_ids(
        &mut self,
        tok: &corpus_models::tokenizer::Tokenizer,
    ) -> Result<&[corpus_models::tokenizer::Rank], corpus_models::tokenizer::TokenizerError> {
        let hash = xxhash_rust::xxh3::xxh3_64(self.text.as_bytes());
        let encoding = tok.encoding_id();
        let fresh = matches!(&self.derived.tokens, Some((h, e, _)) if *h == hash && *e == encoding);
        if !fresh {
            let ids = crate::tokenize::encode(tok, self)?;
            self.derived.tokens = Some((hash, encoding, ids));
        }
        Ok(&self.derived.tokens.as_ref().expect("set above").2)
    }

    /// True when the token ids under an encoding are cached for the current text.
    pub fn has_token_ids(&self, encoding: u64) -> bool {
        let hash = xxhash_rust::xxh3::xxh3_64(self.text.as_bytes());
        matches!(&self.derived.tokens, Some((h, e, _)) if *h == hash && *e == encoding)
    }
}

/// A document's position in the input: input file number (its place in the sorted
/// input list) and document number within that file (0-based, counting the documents
/// the reader produced). Ordered like the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Origin {
    /// Input file number.
    pub file: u32,
    /// Document number within the file.
    pub record: u32,
}

impl Origin {
    /// Packs the position into 64 bits, preserving order.
    pub fn pack(self) -> u64 {
        (u64::from(self.file) << 32) | u64::from(self.record)
    }

    /// The inverse of [`Origin::pack`].
    pub fn unpack(v: u64) -> Origin {
        Origin {
            file: (v >> 32) as u32,
            record: v as u32,
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.record)
    }
}

impl Document {
    /// A document with the given id, source and text and no metadata.
    pub fn new(id: impl Into<String>, source: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            source: source.into(),
            text: text.into(),
            ..Default::default()
        }
    }

    /// Size in bytes used for the bytes-in/bytes-out statistics: the text, or the raw
    /// payload while the text is not decoded yet.
    pub fn size(&self) -> u64 {
        if self.text.is_empty() {
            self.raw.as_ref().map_or(0, |r| r.len() as u64)
        } else {
            self.text.len() as u64
        }
    }

    /// Decodes `raw` into `text` with the declared charset (`meta.charset`), falling back
    /// to UTF-8 with invalid sequences replaced, and drops `raw`. Does nothing when
    /// there is no raw payload. A byte-order mark overrides the declared charset.
    pub fn decode_raw(&mut self) {
        let Some(raw) = self.raw.take() else { return };
        let declared = self
            .meta
            .charset
            .as_deref()
            .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
            .unwrap_or(encoding_rs::UTF_8);
        let (text, _, _) = declared.decode(&raw);
        self.text = text.into_owned();
    }
}

/// Typed document metadata. Every field is optional; absent fields are not serialized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Meta {
    /// Target URL (WARC-Target-URI, or a `url` field of the input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// WARC-Record-ID, without the angle brackets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warc_record_id: Option<String>,
    /// The WARC file the record came from (Common Crawl file name, e.g.
    /// `CC-MAIN-20200808165417-20200808195417-00395.warc.gz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warc_filename: Option<String>,
    /// Crawl identifier parsed from a Common Crawl file name or warcinfo
    /// (e.g. `CC-MAIN-2020-34`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crawl: Option<String>,
    /// Byte offset of the record in its (compressed) input file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Capture or publication date as found in the input (WARC-Date is ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// HTTP status of a WARC response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// MIME type of the payload, lower-cased, without parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Declared character set (HTTP Content-Type parameter), lower-cased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// Page title, where an extractor found one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Language code (ISO 639-1 where one exists, else ISO 639-3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Confidence of `lang`, in 0..=1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang_score: Option<f32>,
    /// Hash of the normalized content used by exact dedup, as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// Fields of the input record that have no typed slot, kept as JSON values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Meta {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

/// Scores and flags written by scoring stages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scores {
    /// Quality score in 0..=1 (higher is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<f32>,
    /// Safety score in 0..=1 (probability that the text is unsafe).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety: Option<f32>,
    /// Rule flags raised by filters running in annotate-only mode, as `stage/reason`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

impl Scores {
    /// True when no score or flag is set.
    pub fn is_empty(&self) -> bool {
        *self == Scores::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_computed_once_and_follow_the_text() {
        let mut doc = Document::new("a", "web", "The quick brown fox jumps over the lazy dog.");
        let first = doc.features().clone();
        assert_eq!(first, corpus_models::features::extract(&doc.text));
        assert!(doc.derived.features.is_some());
        // A stage rewrites the text: the cached features are stale and recomputed.
        doc.text = "一段完全不同的中文文本。".into();
        let second = doc.features().clone();
        assert_eq!(second, corpus_models::features::extract(&doc.text));
        assert_ne!(first, second);
        // Not part of what a document is.
        assert_eq!(
            doc,
            Document {
                derived: Derived::default(),
                ..doc.clone()
            }
        );
    }

    #[test]
    fn json_round_trip_keeps_metadata_and_omits_empty_fields() {
        let mut doc = Document::new("a", "web", "hello");
        doc.meta.url = Some("http://example.com/".into());
        doc.meta.http_status = Some(200);
        doc.meta.extra.insert("k".into(), serde_json::json!([1, 2]));
        doc.scores.flags.push("length/too_short".into());
        doc.raw = Some(b"<p>x</p>".to_vec());
        let json = serde_json::to_string(&doc).unwrap();
        assert!(!json.contains("raw"));
        assert!(!json.contains("lang"));
        let back: Document = serde_json::from_str(&json).unwrap();
        assert_eq!(back.meta, doc.meta);
        assert_eq!(back.scores, doc.scores);
        assert_eq!(back.raw, None);
        let bare = serde_json::to_string(&Document::new("b", "s", "t")).unwrap();
        assert_eq!(bare, r#"{"id":"b","source":"s","text":"t"}"#);
    }

    #[test]
    fn decode_raw_uses_declared_charset() {
        let mut doc = Document::new("a", "web", "");
        // "中文" in GBK.
        doc.raw = Some(vec![0xd6, 0xd0, 0xce, 0xc4]);
        doc.meta.charset = Some("gbk".into());
        assert_eq!(doc.size(), 4);
        doc.decode_raw();
        assert_eq!(doc.text, "中文");
        assert!(doc.raw.is_none());

        let mut bad = Document::new("b", "web", "");
        bad.raw = Some(vec![b'o', b'k', 0xff]);
        bad.decode_raw();
        assert_eq!(bad.text, "ok\u{fffd}");
    }

    /// Values cached on a document follow its text: a stage that rewrites the text gets
    /// them computed again, never the old text's.
    #[test]
    fn cached_values_follow_the_text() {
        let mut doc = Document::new("a", "web", "Hello, World! 42");
        let mut expect = String::new();
        crate::normalize::dedup_key(&doc.text, &mut expect);
        assert_eq!(doc.dedup_key(), expect);
        let tok = corpus_models::tokenizer::Tokenizer::load(
            &corpus_models::tokenizer::VocabSource::Cl100k,
            &corpus_models::tokenizer::Pattern::Qwen,
            0,
        )
        .unwrap();
        let ids = doc.token_ids(&tok).unwrap().to_vec();
        assert!(doc.has_token_ids(tok.encoding_id()));
        doc.text = "Something else entirely".into();
        assert!(!doc.has_token_ids(tok.encoding_id()));
        crate::normalize::dedup_key(&doc.text, &mut expect);
        assert_eq!(doc.dedup_key(), expect);
        let fresh = tok.encode(&doc.text).unwrap();
        assert_ne!(fresh, ids);
        assert_eq!(doc.token_ids(&tok).unwrap(), &fresh[..]);
    }
}
