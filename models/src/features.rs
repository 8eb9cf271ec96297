//! Hashed n-gram features for the text classifiers: the one implementation shared by
//! the runtime ([`crate::scorer`]) and the training recipe (which calls
//! `corpus scorer-features` to dump them, so Python never re-implements them).
//!
//! Version 1 ([`VERSION`]), for a text:
//! 1. Keep the first [`MAX_CHARS`] characters; lower-case them; turn every run of
//!    whitespace into one space; trim.
//! 2. Tokens: runs of alphanumeric characters, except that every CJK character (Han,
//!    kana, Hangul) is a token of its own; other characters separate tokens.
//! 3. Features: every token (seed 1), every pair of adjacent tokens joined by a space
//!    (seed 2), and every character n-gram of the normalized text for n in
//!    [`CHAR_NGRAMS`] (seed 10 + n). Each is hashed with XXH3-64 (that seed) of its UTF-8
//!    bytes and taken modulo 2^[`BITS`].
//! 4. Values: sublinear term frequency `1 + ln(count)` per bucket, then the vector is
//!    scaled to unit L2 norm. Buckets come sorted, without repeats.
//!
//! Character n-grams make the features work for Chinese, which has no spaces; CJK
//! tokens make word unigrams and bigrams the character unigrams and bigrams there.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Version of the feature definition; a model is trained for one version.
pub const VERSION: u32 = 1;
/// The hashing space is 2^BITS buckets.
pub const BITS: u32 = 18;
/// Number of buckets, 2^[`BITS`]: the length of the model's weight vector.
pub const DIM: usize = 1 << BITS;
/// Characters of a text that are looked at; the rest is ignored.
pub const MAX_CHARS: usize = 8000;
/// Character n-gram orders.
pub const CHAR_NGRAMS: std::ops::RangeInclusive<usize> = 2..=4;

const SEED_WORD: u64 = 1;
const SEED_BIGRAM: u64 = 2;
const SEED_CHAR: u64 = 10;

/// A sparse, L2-normalized feature vector: bucket indices in increasing order with
/// their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// Bucket indices, strictly increasing, each below [`DIM`].
    pub indices: Vec<u32>,
    /// The value of each bucket.
    pub values: Vec<f32>,
}

impl Features {
    /// Number of non-zero buckets.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// True for a text with no features (empty or whitespace only).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// True for characters that form a token on their own: CJK ideographs, kana, Hangul.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F  // Extensions B.. and compatibility supplement
    )
}

/// Step 1: the normalized text (at most [`MAX_CHARS`] input characters).
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    let mut space = false;
    for c in text.chars().take(MAX_CHARS) {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.extend(c.to_lowercase());
    }
    out
}

fn bucket(bytes: &[u8], seed: u64) -> u32 {
    (xxh3_64_with_seed(bytes, seed) & (DIM as u64 - 1)) as u32
}

/// Computes the feature vector of a text.
pub fn extract(text: &str) -> Features {
    let norm = normalize(text);
    let mut buckets: Vec<u32> = Vec::with_capacity(norm.len() * 4);

    // Tokens, as byte ranges of `norm`.
    let mut tokens: Vec<(usize, usize)> = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in norm.char_indices() {
        if is_cjk(c) {
            if let Some(s) = start.take() {
                tokens.push((s, i));
            }
            tokens.push((i, i + c.len_utf8()));
        } else if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            tokens.push((s, i));
        }
    }
    if let Some(s) = start {
        tokens.push((s, norm.len()));
    }
    let mut pair = Vec::new();
    for (k, &(s, e)) in tokens.iter().enumerate() {
        buckets.push(bucket(&norm.as_bytes()[s..e], SEED_WORD));
        if let Some(&(s2, e2)) = tokens.get(k + 1) {
            pair.clear();
            pair.extend_from_slice(&norm.as_bytes()[s..e]);
            pair.push(b' ');
            pair.extend_from_slice(&norm.as_bytes()[s2..e2]);
            buckets.push(bucket(&pair, SEED_BIGRAM));
        }
    }

    // Character n-grams over the normalized text.
    let bounds: Vec<usize> = norm
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(norm.len()))
        .collect();
    let chars = bounds.len() - 1;
    for n in CHAR_NGRAMS {
        for i in 0..chars.saturating_sub(n - 1) {
            let gram = &norm.as_bytes()[bounds[i]..bounds[i + n]];
            buckets.push(bucket(gram, SEED_CHAR + n as u64));
        }
    }

    buckets.sort_unstable();
    let mut f = Features::default();
    let mut k = 0;
    while k < buckets.len() {
        let b = buckets[k];
        let mut count = 1;
        while k + count < buckets.len() && buckets[k + count] == b {
            count += 1;
        }
        f.indices.push(b);
        f.values.push(1.0 + (count as f32).ln());
        k += count;
    }
    let norm2: f32 = f.values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm2 > 0.0 {
        f.values.iter_mut().for_each(|v| *v /= norm2);
    }
    f
}

/// Writes feature vectors in the dump format the training recipe reads: a 16-byte
/// header (`b"CFEAT\0\0\0"`, version u32 LE, bits u32 LE), then per document the count
/// `n` (u32 LE), `n` indices (u32 LE) and `n` values (f32 LE).
pub fn write_header(out: &mut impl std::io::Write) -> std::io::Result<()> {
    out.write_all(b"CFEAT\0\0\0")?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&BITS.to_le_bytes())
}

/// Writes one document's features in the dump format (see [`write_header`]).
pub fn write_record(out: &mut impl std::io::Write, f: &Features) -> std::io::Result<()> {
    out.write_all(&(f.len() as u32).to_le_bytes())?;
    for i in &f.indices {
        out.write_all(&i.to_le_bytes())?;
    }
    for v in &f.values {
        out.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_and_space() {
        assert_eq!(normalize("  Hello\n\n  WORLD\t"), "hello world");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(&"a".repeat(MAX_CHARS + 10)).len(), MAX_CHARS);
    }

    #[test]
    fn unit_norm_sorted_unique_and_deterministic() {
        for text in [
            "The cat sat on the mat. The cat!",
            "今天天气很好，我们去公园。",
            "x",
        ] {
            let f = extract(text);
            assert!(!f.is_empty());
            assert!(f.indices.windows(2).all(|w| w[0] < w[1]));
            assert!(f.indices.iter().all(|&i| (i as usize) < DIM));
            let n: f32 = f.values.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5, "{n}");
            assert_eq!(f, extract(text));
        }
        assert!(extract(" \n ").is_empty());
    }

    #[test]
    fn case_and_spacing_do_not_change_features() {
        assert_eq!(extract("Hello   World"), extract("hello world"));
        assert_ne!(extract("hello world"), extract("hello there"));
    }

    #[test]
    fn feature_counts_follow_the_definition() {
        // "ab cd": tokens ab, cd (2 unigrams, 1 bigram); 5 chars: 4 bigrams, 3 trigrams,
        // 2 4-grams: 12 hashed items (fewer buckets only on a collision).
        let f = extract("ab cd");
        assert!(f.len() <= 12 && f.len() >= 11, "{}", f.len());
        // Chinese: every character is a token.
        let f = extract("中文");
        // 2 unigrams + 1 bigram + 1 char bigram = 4 items.
        assert!(f.len() >= 3 && f.len() <= 4, "{}", f.len());
    }

    #[test]
    fn repeated_terms_get_sublinear_weight() {
        let f = extract("zz");
        let g = extract("zz zz zz zz");
        // Same buckets for the token "zz", more mass through 1 + ln(4).
        assert!(g.len() > f.len());
    }
}
