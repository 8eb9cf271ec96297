//! Extending a byte-level BPE vocabulary the way Qwen extended cl100k_base.
//!
//! Qwen's vocabulary is cl100k_base's ordinary tokens in cl100k's order, minus its 1,100
//! multi-digit number tokens (`00`..`999`: tokens that are two or three ASCII digits),
//! followed by 52,487 new tokens learned on Qwen's data, for 151,643 ordinary tokens;
//! its pre-tokenization pattern ([`QWEN_PATTERN`](crate::tokenizer::QWEN_PATTERN)) is
//! cl100k's with `\p{N}{1,3}` replaced by `\p{N}`, so numbers are split into single
//! digits. This module does the same on a corpus; the patterns, the special tokens, the
//! cl100k rank table and the tiktoken file format are those of [`crate::tokenizer`],
//! which encodes with the result:
//!
//! 1. [`cl100k_without_multi_digit`]: the base vocabulary (99,156 tokens), renumbered in
//!    cl100k's order.
//! 2. [`WordCounter`]: the text is cut into pre-tokens by the pattern, and each distinct
//!    pre-token is counted.
//! 3. [`train`]: each distinct pre-token ("word") starts as its tiktoken encoding with the
//!    base vocabulary; then, until the target size, the most frequent byte string formed
//!    by two adjacent tokens becomes a new token at the next rank. Ties go to the smaller
//!    byte string, so the result depends on nothing but the counts.
//!
//! **Consistency with tiktoken.** tiktoken encodes a pre-token by merging, again and
//! again, the adjacent pair whose concatenated bytes have the lowest rank (leftmost
//! first), and returns the pre-token as one token when its bytes are a token. The
//! trainer keeps every word in exactly that state for the vocabulary built so far: when a
//! new token `B` (the highest rank) is added, a word whose state is a fixpoint of the old
//! vocabulary can only merge pairs whose bytes are `B`, but each such merge may enable
//! merges with the neighbours whose bytes are older tokens (of any rank), which tiktoken
//! then applies in rank order; the trainer replays that cascade on the affected words,
//! and a word whose whole bytes are `B` becomes `[B]`. Candidates are byte strings, not
//! token pairs, because tiktoken merges by bytes: two different pairs with the same bytes
//! (`ab`+`c`, `a`+`bc`) count towards the same candidate. [`Trained::mismatched_words`]
//! re-encodes every word with tiktoken's own merge function and the final ranks and
//! counts differences (zero when the invariant holds).
//!
//! **Cost.** Pair counts live in a hash map with, per pair, the list of words that may
//! hold it; candidates live in a max-heap with lazy deletion. A merge touches only the
//! words that hold one of the merged pairs, and only the neighbourhood of each merge.

use crate::tokenizer::{
    Pattern, Rank, Ranks, Tokenizer, TokenizerError, VocabSource, cl100k_tokens, gzip_tiktoken,
    parse_tiktoken_ranks, read_tiktoken_file, write_tiktoken,
};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;
use std::rc::Rc;

/// Qwen's count of ordinary (BPE) tokens, the default target size.
pub const QWEN_ORDINARY_TOKENS: usize = 151_643;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum VocabError {
    /// Reading a tiktoken file, or loading or running the tokenizer, failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The pre-tokenization pattern does not compile or failed on a text.
    #[error("pre-tokenization pattern: {0}")]
    Pattern(String),
    /// Anything else that makes the request impossible (named in the message).
    #[error("{0}")]
    Invalid(String),
}

/// Whether `token`, stripped of one leading space, is two or more ASCII digits: the
/// tokens Qwen removed from cl100k_base.
pub fn is_multi_digit(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b" ").unwrap_or(token);
    digits.len() >= 2 && digits.iter().all(u8::is_ascii_digit)
}

/// A base vocabulary: tokens by rank, and the tokens removed from the original.
#[derive(Debug, Clone)]
pub struct BaseVocab {
    /// Tokens by rank.
    pub tokens: Vec<Vec<u8>>,
    /// Tokens of the original vocabulary that were dropped, in their original order.
    pub removed: Vec<Vec<u8>>,
}

/// cl100k_base without its multi-digit number tokens ([`is_multi_digit`]), renumbered in
/// cl100k's order: 100,256 - 1,100 = 99,156 tokens, as the start of Qwen's vocabulary.
pub fn cl100k_without_multi_digit() -> BaseVocab {
    let (removed, tokens): (Vec<_>, Vec<_>) =
        cl100k_tokens().into_iter().partition(|t| is_multi_digit(t));
    BaseVocab { tokens, removed }
}

/// Counts the distinct pre-tokens of texts.
pub struct WordCounter {
    regex: fancy_regex::Regex,
    counts: FxHashMap<String, u64>,
    pieces: u64,
    bytes: u64,
}

impl WordCounter {
    /// A counter that cuts texts with `pattern` (a regex in tiktoken's dialect).
    pub fn new(pattern: &str) -> Result<WordCounter, VocabError> {
        let regex =
            fancy_regex::Regex::new(pattern).map_err(|e| VocabError::Pattern(e.to_string()))?;
        Ok(WordCounter {
            regex,
            counts: FxHashMap::default(),
            pieces: 0,
            bytes: 0,
        })
    }

    /// Counts the pre-tokens of `text`, each `weight` times.
    pub fn add(&mut self, text: &str, weight: u64) -> Result<(), VocabError> {
        for m in self.regex.find_iter(text) {
            let piece = m.map_err(|e| VocabError::Pattern(e.to_string()))?.as_str();
            match self.counts.get_mut(piece) {
                Some(c) => *c += weight,
                None => {
                    self.counts.insert(piece.to_owned(), weight);
                }
            }
            self.pieces += weight;
        }
        self.bytes += text.len() as u64 * weight;
        Ok(())
    }

    /// Adds the counts of `other`.
    pub fn merge(&mut self, other: WordCounter) {
        if other.counts.len() > self.counts.len() {
            let mine = std::mem::replace(&mut self.counts, other.counts);
            for (k, v) in mine {
                *self.counts.entry(k).or_insert(0) += v;
            }
        } else {
            for (k, v) in other.counts {
                *self.counts.entry(k).or_insert(0) += v;
            }
        }
        self.pieces += other.pieces;
        self.bytes += other.bytes;
    }

    /// Distinct pre-tokens so far.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// Pre-tokens counted so far (with weights).
    pub fn pieces(&self) -> u64 {
        self.pieces
    }

    /// Text bytes counted so far (with weights).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The distinct pre-tokens with their counts, sorted by bytes.
    pub fn into_counts(self) -> Vec<(String, u64)> {
        let mut v: Vec<_> = self.counts.into_iter().collect();
        v.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        v
    }
}

/// Training limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainOptions {
    /// Ordinary tokens wanted in the result (base tokens included).
    pub vocab_size: usize,
    /// Stop when the best candidate occurs fewer times than this (weighted count).
    pub min_frequency: u64,
    /// Candidates longer than this many bytes are never added; 0 for no limit.
    pub max_token_bytes: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            vocab_size: QWEN_ORDINARY_TOKENS,
            min_frequency: 2,
            max_token_bytes: 0,
        }
    }
}

/// Where training is, handed to the progress callback every few hundred merges.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Tokens added so far.
    pub added: usize,
    /// Tokens to add to reach the target size.
    pub wanted: usize,
    /// Occurrences of the last token added.
    pub last_count: u64,
}

/// Why training stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The target size was reached.
    Size,
    /// The best candidate was below the minimum frequency.
    MinFrequency,
    /// No candidate was left (every word is one token).
    NoCandidates,
}

impl StopReason {
    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Size => "size",
            StopReason::MinFrequency => "min_frequency",
            StopReason::NoCandidates => "no_candidates",
        }
    }
}

/// The result of [`train`].
#[derive(Debug, Clone)]
pub struct Trained {
    /// The vocabulary: base tokens, then the new ones in the order they were learned.
    pub vocab: Vocabulary,
    /// Tokens of the base vocabulary.
    pub base_len: usize,
    /// Weighted occurrences of each new token when it was added.
    pub counts: Vec<u64>,
    /// Why training stopped.
    pub stop: StopReason,
    /// Distinct words (pre-tokens of two or more base tokens) trained on.
    pub words: usize,
    /// Words whose trained segmentation differs from tiktoken's encoding with the final
    /// vocabulary (expected 0).
    pub mismatched_words: usize,
    segmentation: Vec<(Box<[u8]>, Vec<u32>)>,
}

impl Trained {
    /// The trained segmentation of a pre-token: its tokens when it was a training word
    /// of two or more base tokens, `None` otherwise.
    pub fn segmentation(&self, piece: &[u8]) -> Option<&[u32]> {
        self.segmentation
            .binary_search_by(|(w, _)| (**w).cmp(piece))
            .ok()
            .map(|i| &self.segmentation[i].1[..])
    }
}

/// Continues BPE training from `base` on `words` (distinct pre-tokens with their counts;
/// any order, no duplicates) until `options.vocab_size` tokens. `progress` is called
/// every 256 tokens added.
pub fn train(
    base: &[Vec<u8>],
    words: Vec<(String, u64)>,
    options: &TrainOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<Trained, VocabError> {
    let mut trainer = Trainer::new(base, words, options)?;
    let wanted = options.vocab_size.saturating_sub(base.len());
    let mut counts = Vec::with_capacity(wanted);
    let stop = loop {
        if trainer.tokens.len() >= options.vocab_size {
            break StopReason::Size;
        }
        let Some((cand, count)) = trainer.pop_best() else {
            break StopReason::NoCandidates;
        };
        if count < options.min_frequency {
            break StopReason::MinFrequency;
        }
        trainer.merge(cand);
        counts.push(count);
        if counts.len() % 256 == 0 {
            progress(Progress {
                added: counts.len(),
                wanted,
                last_count: count,
            });
        }
    };
    progress(Progress {
        added: counts.len(),
        wanted,
        last_count: counts.last().copied().unwrap_or(0),
    });
    let mismatched_words = trainer.count_mismatches();
    let words = trainer.words.len();
    let segmentation = trainer
        .words
        .into_iter()
        .map(|w| (w.text, w.toks))
        .collect();
    Ok(Trained {
        vocab: Vocabulary::new(trainer.tokens)?,
        base_len: base.len(),
        counts,
        stop,
        words,
        mismatched_words,
        segmentation,
    })
}

type Pair = (u32, u32);

/// A heap entry: count, then the smaller bytes first on ties, then the candidate.
type HeapEntry = (u64, Reverse<Rc<[u8]>>, u32);

struct Word {
    text: Box<[u8]>,
    count: u64,
    toks: Vec<u32>,
}

struct PairInfo {
    count: u64,
    cand: u32,
    /// Words that may hold the pair (a superset; may repeat).
    words: Vec<u32>,
}

struct Cand {
    bytes: Rc<[u8]>,
    count: u64,
    pairs: Vec<Pair>,
}

struct Trainer {
    tokens: Vec<Vec<u8>>,
    ids: Ranks,
    /// Sorted by text.
    words: Vec<Word>,
    pairs: FxHashMap<Pair, PairInfo>,
    cands: Vec<Cand>,
    cand_ids: FxHashMap<Rc<[u8]>, u32>,
    heap: BinaryHeap<HeapEntry>,
    max_token_bytes: usize,
    scratch: Vec<u8>,
}

/// tiktoken's encoding of one pre-token with `ranks`.
fn tiktoken_encode(piece: &[u8], ranks: &Ranks) -> Vec<u32> {
    if let Some(&id) = ranks.get(piece) {
        return vec![id];
    }
    tiktoken_rs::byte_pair_split(piece, ranks)
        .into_iter()
        .map(|part| ranks[part])
        .collect()
}

impl Trainer {
    fn new(
        base: &[Vec<u8>],
        words: Vec<(String, u64)>,
        options: &TrainOptions,
    ) -> Result<Trainer, VocabError> {
        let mut ids: Ranks = FxHashMap::default();
        for (i, t) in base.iter().enumerate() {
            if t.is_empty() {
                return Err(VocabError::Invalid(format!("base token {i} is empty")));
            }
            if ids.insert(t.clone(), i as Rank).is_some() {
                return Err(VocabError::Invalid(format!(
                    "base token {i} ({:?}) appears twice",
                    String::from_utf8_lossy(t)
                )));
            }
        }
        if (0u8..=255).any(|b| !ids.contains_key(&[b][..])) {
            return Err(VocabError::Invalid(
                "the base vocabulary lacks single-byte tokens".into(),
            ));
        }
        let mut list: Vec<Word> = Vec::with_capacity(words.len());
        for (text, count) in words {
            if count == 0 || text.is_empty() {
                continue;
            }
            let toks = tiktoken_encode(text.as_bytes(), &ids);
            if toks.len() >= 2 {
                list.push(Word {
                    text: text.into_bytes().into_boxed_slice(),
                    count,
                    toks,
                });
            }
        }
        list.sort_unstable_by(|a, b| a.text.cmp(&b.text));
        if list.windows(2).any(|w| w[0].text == w[1].text) {
            return Err(VocabError::Invalid("a word is listed twice".into()));
        }
        let mut trainer = Trainer {
            tokens: base.to_vec(),
            ids,
            words: list,
            pairs: FxHashMap::default(),
            cands: Vec::new(),
            cand_ids: FxHashMap::default(),
            heap: BinaryHeap::new(),
            max_token_bytes: options.max_token_bytes,
            scratch: Vec::new(),
        };
        let mut counts: FxHashMap<Pair, (u64, Vec<u32>)> = FxHashMap::default();
        for (w, word) in trainer.words.iter().enumerate() {
            for p in word.toks.windows(2) {
                let e = counts.entry((p[0], p[1])).or_default();
                e.0 += word.count;
                if e.1.last() != Some(&(w as u32)) {
                    e.1.push(w as u32);
                }
            }
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_unstable_by_key(|(p, _)| *p);
        for (pair, (count, words)) in counts {
            let cand = trainer.cand_for(pair);
            trainer.pairs.insert(pair, PairInfo { count, cand, words });
            trainer.cands[cand as usize].count += count;
        }
        for (i, c) in trainer.cands.iter().enumerate() {
            if c.count > 0 && trainer.allowed(&c.bytes) {
                trainer
                    .heap
                    .push((c.count, Reverse(c.bytes.clone()), i as u32));
            }
        }
        Ok(trainer)
    }

    fn allowed(&self, bytes: &[u8]) -> bool {
        self.max_token_bytes == 0 || bytes.len() <= self.max_token_bytes
    }

    /// The candidate of the bytes of `pair` (created when new), with `pair` listed in it.
    fn cand_for(&mut self, pair: Pair) -> u32 {
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&self.tokens[pair.0 as usize]);
        self.scratch
            .extend_from_slice(&self.tokens[pair.1 as usize]);
        let id = match self.cand_ids.get(&self.scratch[..]) {
            Some(&id) => id,
            None => {
                let id = self.cands.len() as u32;
                let bytes: Rc<[u8]> = Rc::from(&self.scratch[..]);
                self.cand_ids.insert(bytes.clone(), id);
                self.cands.push(Cand {
                    bytes,
                    count: 0,
                    pairs: Vec::new(),
                });
                id
            }
        };
        self.cands[id as usize].pairs.push(pair);
        id
    }

    /// The rank of the concatenation of two tokens, `Rank::MAX` when it is no token.
    fn rank_of(&mut self, a: u32, b: u32) -> Rank {
        self.scratch.clear();
        self.scratch.extend_from_slice(&self.tokens[a as usize]);
        self.scratch.extend_from_slice(&self.tokens[b as usize]);
        self.ids
            .get(&self.scratch[..])
            .copied()
            .unwrap_or(Rank::MAX)
    }

    /// The most frequent candidate (ties: smallest bytes) and its count.
    fn pop_best(&mut self) -> Option<(u32, u64)> {
        while let Some((count, Reverse(bytes), cand)) = self.heap.pop() {
            let current = self.cands[cand as usize].count;
            if current == count {
                return Some((cand, count));
            }
            // Stale: counts only went down since this entry (a rise pushes a new one).
            if current > 0 && current < count {
                self.heap.push((current, Reverse(bytes), cand));
            }
        }
        None
    }

    /// Adds the candidate's bytes as the next token and re-encodes the words it touches.
    fn merge(&mut self, cand: u32) {
        let new_id = self.tokens.len() as u32;
        let bytes: Vec<u8> = self.cands[cand as usize].bytes.to_vec();
        self.tokens.push(bytes.clone());
        self.ids.insert(bytes.clone(), new_id);

        let mut affected: Vec<u32> = Vec::new();
        for pair in std::mem::take(&mut self.cands[cand as usize].pairs) {
            if let Some(info) = self.pairs.get_mut(&pair) {
                affected.append(&mut info.words);
            }
        }
        if let Ok(w) = self.words.binary_search_by(|w| (*w.text).cmp(&bytes[..])) {
            affected.push(w as u32);
        }
        affected.sort_unstable();
        affected.dedup();

        let mut delta: FxHashMap<Pair, i64> = FxHashMap::default();
        let mut added: Vec<(Pair, u32)> = Vec::new();
        for &w in &affected {
            self.reencode(w, new_id, &bytes, &mut delta, &mut added);
        }
        let max = self.max_token_bytes;
        let mut delta: Vec<(Pair, i64)> = delta.into_iter().filter(|&(_, d)| d != 0).collect();
        delta.sort_unstable_by_key(|&(p, _)| p);
        for (pair, d) in delta {
            let cand = match self.pairs.get(&pair) {
                Some(info) => info.cand,
                None => {
                    debug_assert!(d > 0, "a pair that was not counted lost occurrences");
                    let cand = self.cand_for(pair);
                    self.pairs.insert(
                        pair,
                        PairInfo {
                            count: 0,
                            cand,
                            words: Vec::new(),
                        },
                    );
                    cand
                }
            };
            let info = self.pairs.get_mut(&pair).expect("pair just ensured");
            let count = (info.count as i64 + d) as u64;
            info.count = count;
            let c = &mut self.cands[cand as usize];
            c.count = (c.count as i64 + d) as u64;
            if d > 0 && (max == 0 || c.bytes.len() <= max) {
                self.heap.push((c.count, Reverse(c.bytes.clone()), cand));
            }
            if count == 0 {
                self.pairs.remove(&pair);
                let c = &mut self.cands[cand as usize];
                if let Some(i) = c.pairs.iter().position(|&p| p == pair) {
                    c.pairs.swap_remove(i);
                }
            }
        }
        for (pair, w) in added {
            if let Some(info) = self.pairs.get_mut(&pair)
                && info.words.last() != Some(&w)
            {
                info.words.push(w);
            }
        }
        debug_assert_eq!(self.cands[cand as usize].count, 0);
    }

    /// Brings word `w` from the fixpoint of the vocabulary without `new_id` to tiktoken's
    /// encoding with it, recording pair count changes in `delta` and new pair occurrences
    /// in `added`.
    fn reencode(
        &mut self,
        w: u32,
        new_id: u32,
        bytes: &[u8],
        delta: &mut FxHashMap<Pair, i64>,
        added: &mut Vec<(Pair, u32)>,
    ) {
        let mut toks = std::mem::take(&mut self.words[w as usize].toks);
        let count = self.words[w as usize].count as i64;
        if *self.words[w as usize].text == *bytes {
            for p in toks.windows(2) {
                *delta.entry((p[0], p[1])).or_insert(0) -= count;
            }
            self.words[w as usize].toks = vec![new_id];
            return;
        }
        // From the old fixpoint only pairs whose bytes are the new token can merge.
        let mut ranks: Vec<Rank> = toks
            .windows(2)
            .map(|p| {
                let (a, b) = (&self.tokens[p[0] as usize], &self.tokens[p[1] as usize]);
                if a.len() + b.len() == bytes.len() && bytes.starts_with(a) && bytes.ends_with(b) {
                    new_id
                } else {
                    Rank::MAX
                }
            })
            .collect();
        loop {
            let mut best = (Rank::MAX, usize::MAX);
            for (i, &r) in ranks.iter().enumerate() {
                if r < best.0 {
                    best = (r, i);
                }
            }
            let (merged, i) = best;
            if merged == Rank::MAX {
                break;
            }
            let (a, b) = (toks[i], toks[i + 1]);
            *delta.entry((a, b)).or_insert(0) -= count;
            if i > 0 {
                let prev = toks[i - 1];
                *delta.entry((prev, a)).or_insert(0) -= count;
                *delta.entry((prev, merged)).or_insert(0) += count;
                added.push(((prev, merged), w));
            }
            if i + 2 < toks.len() {
                let next = toks[i + 2];
                *delta.entry((b, next)).or_insert(0) -= count;
                *delta.entry((merged, next)).or_insert(0) += count;
                added.push(((merged, next), w));
            }
            toks[i] = merged;
            toks.remove(i + 1);
            ranks.remove(i);
            if i > 0 {
                ranks[i - 1] = self.rank_of(toks[i - 1], toks[i]);
            }
            if i < ranks.len() {
                ranks[i] = self.rank_of(toks[i], toks[i + 1]);
            }
        }
        self.words[w as usize].toks = toks;
    }

    /// Words whose state differs from tiktoken's encoding with the current vocabulary.
    fn count_mismatches(&self) -> usize {
        self.words
            .iter()
            .filter(|w| tiktoken_encode(&w.text, &self.ids) != w.toks)
            .count()
    }
}

/// An ordinary-token vocabulary: token bytes by rank (rank = token id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<Vec<u8>>,
}

impl Vocabulary {
    /// A vocabulary of `tokens` (rank = index); tokens must be distinct and non-empty.
    pub fn new(tokens: Vec<Vec<u8>>) -> Result<Vocabulary, VocabError> {
        let mut seen: FxHashMap<&[u8], usize> = FxHashMap::default();
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                return Err(VocabError::Invalid(format!("token {i} is empty")));
            }
            if let Some(j) = seen.insert(t, i) {
                return Err(VocabError::Invalid(format!(
                    "tokens {j} and {i} are the same bytes"
                )));
            }
        }
        Ok(Vocabulary { tokens })
    }

    /// Token bytes by rank.
    pub fn tokens(&self) -> &[Vec<u8>] {
        &self.tokens
    }

    /// Number of ordinary tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes -> rank map tiktoken works with.
    pub fn ranks(&self) -> Ranks {
        self.tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as Rank))
            .collect()
    }

    /// The vocabulary in tiktoken's file format ([`write_tiktoken`]), by rank.
    pub fn to_tiktoken(&self) -> Vec<u8> {
        write_tiktoken(self.tokens.iter().zip(0..).map(|(t, r)| (t.as_slice(), r)))
    }

    /// [`Vocabulary::to_tiktoken`], gzip-compressed deterministically ([`gzip_tiktoken`]).
    pub fn to_tiktoken_gz(&self) -> Vec<u8> {
        gzip_tiktoken(&self.to_tiktoken())
    }

    /// Reads a tiktoken file, plain or gzip-compressed ([`read_tiktoken_file`]). Ranks
    /// must run from 0 without gaps (any line order).
    pub fn load(path: &Path) -> Result<Vocabulary, VocabError> {
        Vocabulary::parse(&read_tiktoken_file(path)?, path)
    }

    /// Parses tiktoken's file format ([`parse_tiktoken_ranks`]); `path` names the source
    /// in errors.
    pub fn parse(text: &[u8], path: &Path) -> Result<Vocabulary, VocabError> {
        let (tokens, _) = parse_tiktoken_ranks(text, path)?;
        if let Some(rank) = tokens.iter().position(Vec::is_empty) {
            return Err(VocabError::Invalid(format!(
                "{}: rank {rank} is missing",
                path.display()
            )));
        }
        Ok(Vocabulary { tokens })
    }

    /// A [`Tokenizer`] of this vocabulary with `pattern` and `extras` reserved
    /// `<|extra_N|>` tokens; `source` names it in errors and manifests.
    pub fn tokenizer(
        &self,
        source: VocabSource,
        pattern: &Pattern,
        extras: u32,
    ) -> Result<Tokenizer, VocabError> {
        Ok(Tokenizer::from_bytes(
            &self.to_tiktoken(),
            source,
            pattern,
            extras,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::QWEN_PATTERN;

    fn bytes_base() -> Vec<Vec<u8>> {
        (0u8..=255).map(|b| vec![b]).collect()
    }

    fn words(list: &[(&str, u64)]) -> Vec<(String, u64)> {
        list.iter().map(|&(w, c)| (w.to_string(), c)).collect()
    }

    fn new_tokens(t: &Trained) -> Vec<String> {
        t.vocab.tokens()[t.base_len..]
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    fn train_to(base: &[Vec<u8>], w: Vec<(String, u64)>, size: usize, min: u64) -> Trained {
        let options = TrainOptions {
            vocab_size: size,
            min_frequency: min,
            max_token_bytes: 0,
        };
        train(base, w, &options, &mut |_| {}).unwrap()
    }

    #[test]
    fn merges_follow_the_hand_computed_sequence() {
        // Pairs by hand: ug 20, pu 17, un 16, hu 15 -> "ug"; then un 16, hug 15, pu 12
        // -> "un"; hug 15 -> "hug"; pun 12 -> "pun"; then "hugs" 5 and "pug" 5 tie and
        // the smaller bytes win; "bun" 4 last.
        let w = words(&[
            ("hug", 10),
            ("pug", 5),
            ("pun", 12),
            ("bun", 4),
            ("hugs", 5),
        ]);
        let t = train_to(&bytes_base(), w, 256 + 100, 1);
        assert_eq!(
            new_tokens(&t),
            ["ug", "un", "hug", "pun", "hugs", "pug", "bun"]
        );
        assert_eq!(t.counts, [20, 16, 15, 12, 5, 5, 4]);
        assert_eq!(t.stop, StopReason::NoCandidates);
        assert_eq!(t.mismatched_words, 0);
        assert_eq!(t.segmentation(b"hugs"), Some(&[256 + 4][..]));
    }

    #[test]
    fn size_and_min_frequency_stop_training() {
        // Pairs: pu 17, un 16, ug 15, hu 10, bu 4 -> "pu"; then [pu n] 12, hu 10, ug 10
        // -> "pun" 12; then hu 10 < 12.
        let w = words(&[("hug", 10), ("pug", 5), ("pun", 12), ("bun", 4)]);
        let t = train_to(&bytes_base(), w.clone(), 258, 1);
        assert_eq!((t.vocab.len(), t.stop), (258, StopReason::Size));
        let t = train_to(&bytes_base(), w, 400, 12);
        assert_eq!(new_tokens(&t), ["pu", "pun"]);
        assert_eq!(t.stop, StopReason::MinFrequency);
    }

    #[test]
    fn max_token_bytes_is_respected() {
        let w = words(&[("hug", 10), ("pug", 5), ("pun", 12), ("bun", 4)]);
        let options = TrainOptions {
            vocab_size: 400,
            min_frequency: 1,
            max_token_bytes: 2,
        };
        // "pu" 17; "pun" is too long; "hu" and "ug" tie at 10 and "hu" is smaller,
        // which leaves [hu g]; "bu" and "un" tie at 4 -> "bu"; nothing of 2 bytes is left.
        let t = train(&bytes_base(), w, &options, &mut |_| {}).unwrap();
        assert_eq!(new_tokens(&t), ["pu", "hu", "bu"]);
        assert_eq!(t.stop, StopReason::NoCandidates);
    }

    #[test]
    fn a_new_token_can_complete_an_unreachable_base_token() {
        // "abc" is a base token no merge reaches (neither "ab" nor "bc" is a token).
        // Adding "ab" lets tiktoken merge ab+c into "abc" (a lower rank), so the word
        // "abcd" becomes [abc, d] and the next candidate is "abcd", not "abc" again.
        let mut base = bytes_base();
        base.push(b"abc".to_vec());
        let w = words(&[("abcd", 5), ("abx", 2)]);
        let t = train_to(&base, w, 400, 1);
        assert_eq!(new_tokens(&t), ["ab", "abcd", "abx"]);
        assert_eq!(t.counts, [7, 5, 2]);
        assert_eq!(t.mismatched_words, 0);
    }

    #[test]
    fn random_corpora_stay_consistent_with_tiktoken() {
        // Small random words over a 4-letter alphabet (many overlaps, repeats like
        // "aaaa"), with random extra base tokens that no merge reaches, so cascades into
        // base tokens happen: after training, every word's state
        // must equal tiktoken's encoding with the final ranks.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..60 {
            let mut base = bytes_base();
            for _ in 0..next(4) {
                let len = 3 + next(3) as usize;
                let t: Vec<u8> = (0..len).map(|_| b"abcd"[next(4) as usize]).collect();
                if !base.contains(&t) {
                    base.push(t);
                }
            }
            let mut list: FxHashMap<String, u64> = FxHashMap::default();
            for _ in 0..40 {
                let len = 2 + next(7) as usize;
                let w: String = (0..len)
                    .map(|_| b"abcd"[next(4) as usize] as char)
                    .collect();
                *list.entry(w).or_insert(0) += 1 + next(9);
            }
            let t = train_to(&base, list.into_iter().collect(), base.len() + 40, 1);
            assert_eq!(t.mismatched_words, 0, "case {case}");
            assert_eq!(t.vocab.tokens()[..base.len()], base[..], "case {case}");
        }
    }

    #[test]
    fn training_is_deterministic_and_order_independent() {
        let text =
            "the cat sat on the mat; the bat ate the rat at that hat stand. 我们的猫在我们的家里。";
        let mut counter = WordCounter::new(QWEN_PATTERN).unwrap();
        for _ in 0..3 {
            counter.add(text, 1).unwrap();
        }
        let w = counter.into_counts();
        let mut rev = w.clone();
        rev.reverse();
        let a = train_to(&bytes_base(), w, 300, 1);
        let b = train_to(&bytes_base(), rev, 300, 1);
        assert_eq!(a.vocab, b.vocab);
        assert_eq!(a.counts, b.counts);
        assert_eq!(a.mismatched_words, 0);
    }

    #[test]
    fn cl100k_base_loses_exactly_its_multi_digit_tokens() {
        let all = cl100k_tokens();
        assert_eq!(all.len(), 100_256);
        let base = cl100k_without_multi_digit();
        assert_eq!(base.removed.len(), 1_100);
        assert_eq!(base.tokens.len(), 99_156);
        assert_eq!(base.removed.iter().filter(|t| t.len() == 2).count(), 100);
        assert_eq!(base.removed.iter().filter(|t| t.len() == 3).count(), 1_000);
        // The rest keep cl100k's order.
        let kept: Vec<&Vec<u8>> = all.iter().filter(|t| !is_multi_digit(t)).collect();
        assert!(kept.iter().zip(&base.tokens).all(|(a, b)| *a == b));
        assert!(is_multi_digit(b"12") && is_multi_digit(b" 123") && !is_multi_digit(b"1"));
        assert!(!is_multi_digit(b"1a") && !is_multi_digit(b"  12") && !is_multi_digit(b" 1"));
    }

    #[test]
    fn extends_cl100k_consistently_with_tiktoken_and_never_merges_digits() {
        let texts = [
            "In 2024, 1,234 people paid $56.78 for 90 tickets; 3.14159 is pi.",
            "北京大学成立于1898年，是中国第一所国立综合性大学。北京大学的校园在北京。",
            "上海交通大学和北京大学都是中国的大学，学生们在大学里学习。",
            "Tokenizers split numbers like 31415926 and 2718281828 into single digits.",
        ];
        let mut counter = WordCounter::new(QWEN_PATTERN).unwrap();
        for (i, t) in texts.iter().enumerate() {
            counter.add(t, 1 + i as u64).unwrap();
        }
        let base = cl100k_without_multi_digit();
        let t = train_to(
            &base.tokens,
            counter.into_counts(),
            base.tokens.len() + 40,
            2,
        );
        assert!(t.vocab.len() > base.tokens.len(), "learned something");
        assert_eq!(t.mismatched_words, 0);
        // All base tokens kept, in order, ranks contiguous.
        assert_eq!(t.vocab.tokens()[..base.tokens.len()], base.tokens[..]);
        let ranks = t.vocab.ranks();
        assert_eq!(ranks.len(), t.vocab.len());
        let mut values: Vec<u32> = ranks.values().copied().collect();
        values.sort_unstable();
        assert!(values.iter().enumerate().all(|(i, &r)| i as u32 == r));
        // No new token holds a digit: the pattern cuts every number character alone.
        for tok in &t.vocab.tokens()[base.tokens.len()..] {
            assert!(!tok.iter().any(u8::is_ascii_digit), "{tok:?}");
        }
        // tiktoken with the new ranks, and the project's tokenizer, give the trained
        // segmentation of every piece.
        let bpe =
            tiktoken_rs::CoreBPE::new(ranks.clone(), Default::default(), QWEN_PATTERN).unwrap();
        let tokenizer = t
            .vocab
            .tokenizer(VocabSource::File("trained".into()), &Pattern::Qwen, 2)
            .unwrap();
        assert_eq!(tokenizer.n_base() as usize, t.vocab.len());
        let regex = fancy_regex::Regex::new(QWEN_PATTERN).unwrap();
        for text in texts {
            let mut expected = Vec::new();
            for m in regex.find_iter(text) {
                let piece = m.unwrap().as_str().as_bytes();
                match t.segmentation(piece) {
                    Some(s) => expected.extend_from_slice(s),
                    None => expected.push(ranks[piece]),
                }
            }
            let ids = bpe.encode_ordinary(text);
            assert_eq!(ids, expected, "{text}");
            assert_eq!(tokenizer.encode(text).unwrap(), expected, "{text}");
            assert_eq!(tokenizer.decode(&ids).unwrap(), text);
        }
        // And Chinese got shorter than with cl100k.
        let cl = tiktoken_rs::cl100k_base_singleton();
        assert!(bpe.encode_ordinary(texts[1]).len() < cl.encode_ordinary(texts[1]).len());
    }

    #[test]
    fn tiktoken_files_round_trip_plain_and_gzip() {
        let v = Vocabulary::new(vec![b"a".to_vec(), b" \n".to_vec(), vec![0xe4, 0xb8]]).unwrap();
        let text = v.to_tiktoken();
        assert_eq!(String::from_utf8_lossy(&text), "YQ== 0\nIAo= 1\n5Lg= 2\n");
        assert_eq!(Vocabulary::parse(&text, Path::new("x")).unwrap(), v);
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("v.tiktoken.gz");
        std::fs::write(&gz, v.to_tiktoken_gz()).unwrap();
        assert_eq!(Vocabulary::load(&gz).unwrap(), v);
        assert_eq!(v.to_tiktoken_gz(), v.to_tiktoken_gz(), "deterministic gzip");
        let plain = dir.path().join("v.tiktoken");
        std::fs::write(&plain, &text).unwrap();
        assert_eq!(Vocabulary::load(&plain).unwrap(), v);
    }

    #[test]
    fn bad_tiktoken_files_name_the_line() {
        let p = Path::new("bad.tiktoken");
        let e = Vocabulary::parse(b"YQ== 0\nYg==\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad.tiktoken: line 2") && e.contains("BASE64TOKEN RANK"),
            "{e}"
        );
        let e = Vocabulary::parse(b"YQ== 0\n!!! 1\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("base64"), "{e}");
        let e = Vocabulary::parse(b"YQ== 0\nYg== 0\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let e = Vocabulary::parse(b"YQ== 0\nYg== 2\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.tiktoken: rank 1 is missing"), "{e}");
        let e = Vocabulary::parse(b"YQ== 0\nYQ== 1\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("same bytes"), "{e}");
        let e = Vocabulary::load(Path::new("/nonexistent/v.tiktoken")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/v.tiktoken"), "{e}");
        let e = Vocabulary::parse(b"YQ== 100000001\n", p).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 1: rank 100000001 is too large"),
            "{e}"
        );
    }
}
