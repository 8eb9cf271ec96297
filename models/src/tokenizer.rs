//! Byte-level BPE tokenization with tiktoken-format vocabularies.
//!
//! A vocabulary file has one token per line, `BASE64TOKEN RANK` (the format of
//! `cl100k_base.tiktoken` and Qwen's `qwen.tiktoken`); the rank is the token id and the
//! merge priority. Text is first split by a pre-tokenization regex ([`Pattern`]), then each
//! piece is merged byte pair by byte pair, lowest rank first, exactly as tiktoken does, so
//! that the same file and pattern give the same ids as Python `tiktoken`.
//!
//! Special tokens follow Qwen: `<|endoftext|>`, `<|im_start|>`, `<|im_end|>` and then
//! `<|extra_0|>`, `<|extra_1|>`... numbered from the first id after the vocabulary's
//! highest rank. They are never produced by [`Tokenizer::encode`], which treats its input
//! as ordinary text; callers add them as ids (e.g. [`Tokenizer::eot`] after a document).
//!
//! Long inputs: tiktoken's merge loop is quadratic in the length of a piece, and a piece
//! can be a whole document (a megabyte of one letter is one `\p{L}+` match). Pieces longer
//! than [`LONG_PIECE`] bytes are merged with a heap in `O(n log n)`, with the same result.
//! The built-in patterns run on the `regex` crate, rewritten without lookahead
//! ([`fast_pattern`]): linear time on any input, and about twice as fast as fancy-regex.
//! Other patterns run on fancy-regex with a backtracking limit far above what such
//! patterns need; where its backtracking stack (about a million entries) overflows, as
//! it does on a megabyte of whitespace (tiktoken panics there), matching goes on in
//! windows of 256 KiB (see `encode_fancy`). `decode(encode(text)) == text` holds for
//! every input with the built-in patterns.

use fancy_regex::Regex;
use rustc_hash::FxHashMap;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};

/// Token id.
pub type Rank = u32;

/// Token bytes -> rank, the map BPE merges look ranks up in.
pub type Ranks = FxHashMap<Vec<u8>, Rank>;

/// tiktoken's cl100k_base pre-tokenization pattern (its current, possessive form).
pub const CL100K_PATTERN: &str = r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s";

/// Qwen's pre-tokenization pattern (`PAT_STR` of Qwen's `tokenization_qwen.py`): cl100k's
/// older form with every digit a piece of its own (`\p{N}` instead of `\p{N}{1,3}`).
pub const QWEN_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The special tokens before the reserved extras, in id order.
pub const SPECIAL_TOKENS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Reserved `<|extra_N|>` tokens Qwen defines after its three named specials.
pub const QWEN_EXTRA_TOKENS: u32 = 205;

/// Ranks above this are refused when a vocabulary file is read: a real vocabulary is far
/// smaller, and a typo would otherwise allocate a table of billions of entries.
pub const MAX_RANK: Rank = 100_000_000;

/// The special tokens in id order: [`SPECIAL_TOKENS`], then `<|extra_0|>` ..
/// `<|extra_{extras-1}|>`.
pub fn special_token_names(extras: u32) -> Vec<String> {
    SPECIAL_TOKENS
        .iter()
        .map(|s| s.to_string())
        .chain((0..extras).map(|i| format!("<|extra_{i}|>")))
        .collect()
}

/// [`special_token_names`] with their ids, numbered from `first_id` (the first id after
/// the ordinary tokens) as Qwen numbers them.
pub fn special_tokens(first_id: Rank, extras: u32) -> Vec<(String, Rank)> {
    special_token_names(extras)
        .into_iter()
        .zip(first_id..)
        .collect()
}

/// Window of the fallback matching of [`Tokenizer::encode_into`] (bytes).
const WINDOW: usize = 256 << 10;
/// Matches ending this close to a window's end are redone in the next window.
const MARGIN: usize = 64 << 10;

/// Pieces longer than this many bytes are merged with the heap algorithm.
pub const LONG_PIECE: usize = 32;

/// The fancy-regex backtracking limit: steps per match attempt. The built-in patterns
/// take a few steps per byte of a match, so this covers matches of hundreds of megabytes.
const BACKTRACK_LIMIT: usize = 1 << 32;

/// Where a vocabulary comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabSource {
    /// tiktoken's cl100k_base, shipped inside the `tiktoken-rs` crate.
    Cl100k,
    /// A tiktoken-format file.
    File(PathBuf),
}

impl VocabSource {
    /// `cl100k` (or `cl100k_base`) names the built-in vocabulary; anything else is a path.
    pub fn parse(spec: &str) -> VocabSource {
        match spec {
            "cl100k" | "cl100k_base" => VocabSource::Cl100k,
            path => VocabSource::File(PathBuf::from(path)),
        }
    }

    /// How it reads in messages and manifests.
    pub fn describe(&self) -> String {
        match self {
            VocabSource::Cl100k => "cl100k_base".into(),
            VocabSource::File(p) => p.display().to_string(),
        }
    }
}

/// A pre-tokenization pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// [`CL100K_PATTERN`].
    Cl100k,
    /// [`QWEN_PATTERN`].
    Qwen,
    /// Any regex fancy-regex accepts.
    Regex(String),
}

impl Pattern {
    /// `cl100k` and `qwen` name the built-in patterns; anything else is a regex.
    pub fn parse(spec: &str) -> Pattern {
        match spec {
            "cl100k" | "cl100k_base" => Pattern::Cl100k,
            "qwen" => Pattern::Qwen,
            regex => Pattern::Regex(regex.to_string()),
        }
    }

    /// The regex.
    pub fn regex(&self) -> &str {
        match self {
            Pattern::Cl100k => CL100K_PATTERN,
            Pattern::Qwen => QWEN_PATTERN,
            Pattern::Regex(r) => r,
        }
    }

    /// A pattern given as a regex (as recorded in a vocabulary's sidecar): the built-in
    /// pattern when the text is exactly one of theirs, so that it gets their fast path.
    pub fn from_regex(regex: &str) -> Pattern {
        match regex {
            CL100K_PATTERN => Pattern::Cl100k,
            QWEN_PATTERN => Pattern::Qwen,
            regex => Pattern::Regex(regex.to_string()),
        }
    }

    /// The name of a built-in pattern, or `regex`.
    pub fn name(&self) -> &str {
        match self {
            Pattern::Cl100k => "cl100k",
            Pattern::Qwen => "qwen",
            Pattern::Regex(_) => "regex",
        }
    }
}

/// Errors of loading a vocabulary or using a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The vocabulary file could not be read.
    #[error("{path}: cannot read vocabulary: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of the vocabulary file is malformed.
    #[error("{path}: line {line}: {message}")]
    Format {
        /// The file (or `cl100k_base`).
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The vocabulary holds no token.
    #[error("{0}: the vocabulary is empty")]
    Empty(PathBuf),
    /// A single byte has no token, so some text cannot be encoded.
    #[error("{path}: byte 0x{byte:02x} has no token of its own; byte-level BPE needs all 256")]
    MissingByte {
        /// The file.
        path: PathBuf,
        /// The byte.
        byte: u8,
    },
    /// The pattern is not a valid regex.
    #[error("invalid pre-tokenization pattern: {0}")]
    Pattern(String),
    /// The regex engine gave up on an input (a user pattern with catastrophic backtracking).
    #[error("pre-tokenization failed at byte {offset}: {message}")]
    Regex {
        /// Byte offset in the text where matching failed.
        offset: usize,
        /// The engine's message.
        message: String,
    },
    /// An id that is neither a token nor a special token.
    #[error("unknown token id {0}")]
    UnknownId(Rank),
    /// Decoded bytes are not UTF-8.
    #[error("decoded bytes are not valid UTF-8 at byte {0}")]
    Utf8(usize),
}

/// A loaded vocabulary with its pattern and special tokens.
///
/// Cloning shares the vocabulary and compiles the pattern anew: give each thread its own
/// clone. (A clone of a fancy-regex `Regex` shares its compiled program, and with it the
/// scratch-space pool of the regex engine, which threads then contend on.)
#[derive(Debug)]
pub struct Tokenizer {
    vocab: std::sync::Arc<Vocab>,
    regex: Regex,
    /// The built-in patterns without their lookahead, for the `regex` crate (see
    /// [`fast_pattern`]); `None` for user patterns.
    fast: Option<regex::Regex>,
}

/// Clones of one tokenizer lent one per call, for stages whose calls come from many
/// threads (a clone per thread, as [`Tokenizer`] asks, without knowing the threads).
#[derive(Debug)]
pub struct TokenizerPool {
    first: Tokenizer,
    free: std::sync::Mutex<Vec<Tokenizer>>,
}

impl TokenizerPool {
    /// A pool of clones of `tokenizer`.
    pub fn new(tokenizer: Tokenizer) -> TokenizerPool {
        TokenizerPool {
            first: tokenizer,
            free: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The tokenizer the clones are made from.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.first
    }

    /// Calls `f` with a tokenizer no other thread uses meanwhile.
    pub fn with<T>(&self, f: impl FnOnce(&Tokenizer) -> T) -> T {
        let lent = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let tok = lent.unwrap_or_else(|| self.first.clone());
        let out = f(&tok);
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tok);
        out
    }
}

/// Decoder and encoder tables parsed from vocabulary bytes.
type Tables = (std::sync::Arc<Vec<Vec<u8>>>, std::sync::Arc<Ranks>);

/// The parsed tables of a vocabulary file, shared by every tokenizer of the process
/// made from the same bytes (whatever its pattern and special tokens): a run that
/// counts tokens in `upsample` and encodes them for `tokenize` holds one copy of the
/// 152k-token vocabulary (~20 MB), not one per stage. Tables no tokenizer uses any more
/// are freed.
fn shared_tables(bytes: &[u8], path: &Path) -> Result<Tables, TokenizerError> {
    type Weak = (std::sync::Weak<Vec<Vec<u8>>>, std::sync::Weak<Ranks>);
    static CACHE: std::sync::OnceLock<std::sync::Mutex<FxHashMap<u64, Weak>>> =
        std::sync::OnceLock::new();
    let key = xxhash_rust::xxh3::xxh3_64(bytes);
    let cache = CACHE.get_or_init(Default::default);
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((d, e)) = lock().get(&key)
        && let (Some(d), Some(e)) = (d.upgrade(), e.upgrade())
    {
        return Ok((d, e));
    }
    let (decoder, encoder) = parse_tiktoken_ranks(bytes, path)?;
    let tables = (std::sync::Arc::new(decoder), std::sync::Arc::new(encoder));
    let mut cache = lock();
    cache.retain(|_, (d, _)| d.strong_count() > 0);
    cache.insert(
        key,
        (
            std::sync::Arc::downgrade(&tables.0),
            std::sync::Arc::downgrade(&tables.1),
        ),
    );
    Ok(tables)
}

/// A built-in pattern rewritten for the `regex` crate (no lookaround, no backtracking,
/// linear time): `\s+(?!\S)|\s+` (or `|\s`) becomes `\s+`, and possessive
/// quantifiers become plain ones (in these patterns nothing after them could take back
/// what they matched, so the matches are the same). [`Tokenizer::encode_into`] then
/// gives back the last character of a run of two or more whitespace characters that
/// `\s+` matched when a non-space follows, which is what `\s+(?!\S)` leaves to the
/// next piece. Tested against the original patterns on fancy-regex.
pub fn fast_pattern(pattern: &Pattern) -> Option<&'static str> {
    match pattern {
        Pattern::Qwen => Some(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+",
        ),
        Pattern::Cl100k => Some(
            r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+$|\s*[\r\n]|\s+",
        ),
        Pattern::Regex(_) => None,
    }
}

fn build_fast(pattern: &Pattern) -> Option<regex::Regex> {
    fast_pattern(pattern).map(|p| regex::Regex::new(p).expect("the built-in patterns compile"))
}

impl Clone for Tokenizer {
    fn clone(&self) -> Tokenizer {
        Tokenizer {
            vocab: self.vocab.clone(),
            // The pattern compiled when the tokenizer was made, so it compiles again.
            regex: build_regex(self.vocab.pattern.regex()).expect("the pattern compiled before"),
            fast: build_fast(&self.vocab.pattern),
        }
    }
}

fn build_regex(pattern: &str) -> Result<Regex, TokenizerError> {
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
        .map_err(|e| TokenizerError::Pattern(e.to_string()))
}

#[derive(Debug)]
struct Vocab {
    /// Rank by token bytes, shared by every tokenizer of the process loaded from the
    /// same vocabulary bytes ([`shared_tables`]).
    encoder: std::sync::Arc<Ranks>,
    /// Token bytes by rank; empty for ranks the vocabulary does not use.
    decoder: std::sync::Arc<Vec<Vec<u8>>>,
    specials: Vec<String>,
    n_base: Rank,
    pattern: Pattern,
    source: VocabSource,
    hash: String,
    /// Hash of the vocabulary bytes and the pattern only: what ordinary text encodes to.
    encoding: u64,
}

impl Tokenizer {
    /// Loads a vocabulary with a pattern and `extras` reserved `<|extra_N|>` tokens
    /// ([`QWEN_EXTRA_TOKENS`] as Qwen). A file may be gzip-compressed
    /// ([`read_tiktoken_file`]).
    pub fn load(
        source: &VocabSource,
        pattern: &Pattern,
        extras: u32,
    ) -> Result<Tokenizer, TokenizerError> {
        match source {
            VocabSource::Cl100k => {
                let bytes = cl100k_file_bytes();
                Tokenizer::from_bytes(&bytes, source.clone(), pattern, extras)
            }
            VocabSource::File(path) => {
                let bytes = read_tiktoken_file(path)?;
                Tokenizer::from_bytes(&bytes, source.clone(), pattern, extras)
            }
        }
    }

    /// Parses tiktoken-format bytes (`source` names them in errors and the manifest).
    /// [`Tokenizer::hash`] is computed over these (uncompressed) bytes.
    pub fn from_bytes(
        bytes: &[u8],
        source: VocabSource,
        pattern: &Pattern,
        extras: u32,
    ) -> Result<Tokenizer, TokenizerError> {
        let path = PathBuf::from(source.describe());
        let (decoder, encoder) = shared_tables(bytes, &path)?;
        let regex = build_regex(pattern.regex())?;
        if decoder.is_empty() {
            return Err(TokenizerError::Empty(path));
        }
        let max_rank = (decoder.len() - 1) as Rank;
        for byte in 0..=255u8 {
            if !encoder.contains_key(&[byte][..]) {
                return Err(TokenizerError::MissingByte { path, byte });
            }
        }
        let specials = special_token_names(extras);
        let mut h = Vec::with_capacity(bytes.len() + 4096);
        h.extend_from_slice(bytes);
        h.extend_from_slice(b"\0pattern\0");
        h.extend_from_slice(pattern.regex().as_bytes());
        let encoding = xxhash_rust::xxh3::xxh3_64(&h);
        h.extend_from_slice(b"\0specials\0");
        for s in &specials {
            h.extend_from_slice(s.as_bytes());
            h.push(b'\n');
        }
        let hash = format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(&h));
        Ok(Tokenizer {
            vocab: std::sync::Arc::new(Vocab {
                encoder,
                decoder,
                specials,
                n_base: max_rank + 1,
                pattern: pattern.clone(),
                source,
                hash,
                encoding,
            }),
            regex,
            fast: build_fast(pattern),
        })
    }

    /// Encodes ordinary text: special-token strings in it are encoded as text.
    pub fn encode(&self, text: &str) -> Result<Vec<Rank>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_into(text, &mut out)?;
        Ok(out)
    }

    /// Appends the ids of `text` to `out` (on error `out` may hold a prefix of them).
    pub fn encode_into(&self, text: &str, out: &mut Vec<Rank>) -> Result<(), TokenizerError> {
        if let Some(fast) = &self.fast {
            let mut pos = 0;
            while let Some(m) = fast.find_at(text, pos) {
                let (start, mut end) = (m.start(), m.end());
                if end < text.len() {
                    let piece = &text[start..end];
                    let mut chars = piece.char_indices().rev();
                    if let (Some((last, c)), Some(_)) = (chars.next(), chars.next())
                        && c != '\n'
                        && c != '\r'
                        && piece.chars().all(char::is_whitespace)
                    {
                        end = start + last;
                    }
                }
                pos = self.emit(text, start, end, out);
            }
            return Ok(());
        }
        self.encode_fancy(text, out)
    }

    /// Encodes `text` in which the named special tokens (such as `<|im_start|>` and
    /// `<|im_end|>` of ChatML) stand for themselves: each occurrence becomes its id, the
    /// text between them is encoded as ordinary text. Only for trusted text (instruction
    /// data rendered by `corpus`): web text must go through [`Tokenizer::encode_into`],
    /// where these strings are ordinary text.
    pub fn encode_with_specials(
        &self,
        text: &str,
        allowed: &[&str],
        out: &mut Vec<Rank>,
    ) -> Result<(), TokenizerError> {
        let ids: Vec<(&str, Rank)> = allowed
            .iter()
            .filter_map(|name| self.special_id(name).map(|id| (*name, id)))
            .collect();
        let mut rest = text;
        loop {
            let next = ids
                .iter()
                .filter_map(|&(name, id)| rest.find(name).map(|at| (at, name, id)))
                .min_by_key(|&(at, _, _)| at);
            let Some((at, name, id)) = next else {
                return self.encode_into(rest, out);
            };
            self.encode_into(&rest[..at], out)?;
            out.push(id);
            rest = &rest[at + name.len()..];
        }
    }

    /// [`Tokenizer::encode_into`] with the pattern on fancy-regex.
    fn encode_fancy(&self, text: &str, out: &mut Vec<Rank>) -> Result<(), TokenizerError> {
        let mut pos = 0;
        let mut windowed = false;
        while pos < text.len() {
            if windowed {
                let (next, in_run) = self.window_step(text, pos, out)?;
                pos = next;
                windowed = in_run;
                continue;
            }
            match self.regex.find_from_pos(text, pos) {
                Ok(Some(m)) => {
                    pos = self.emit(text, m.start(), m.end(), out);
                }
                Ok(None) => break,
                // fancy-regex's backtracking stack holds about a million entries: a run
                // of whitespace longer than that (where tiktoken panics) is matched in
                // windows instead.
                Err(_) => windowed = true,
            }
        }
        Ok(())
    }

    /// Encodes the match `text[start..end]`; returns where the next search starts.
    fn emit(&self, text: &str, start: usize, end: usize, out: &mut Vec<Rank>) -> usize {
        if start == end {
            // An empty match (possible with a user pattern) has no token; step over a char.
            return end + text[end..].chars().next().map_or(1, char::len_utf8);
        }
        let piece = &text.as_bytes()[start..end];
        match self.vocab.encoder.get(piece) {
            Some(&rank) => out.push(rank),
            None => self.merge(piece, out),
        }
        end
    }

    /// Matches inside `text[..pos + WINDOW]`, for inputs whose matches overflow the regex
    /// engine's stack. The first match is taken whatever its end (so a long run is cut at
    /// the window's end); later ones only while they end [`MARGIN`] bytes before the
    /// window's end, where the truncated input cannot have changed them. Returns the
    /// next position and whether the run goes on (only the forced first match was taken).
    fn window_step(
        &self,
        text: &str,
        pos: usize,
        out: &mut Vec<Rank>,
    ) -> Result<(usize, bool), TokenizerError> {
        let mut end = (pos + WINDOW).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let hay = &text[..end];
        let limit = if end == text.len() { end } else { end - MARGIN };
        let mut p = pos;
        let mut taken = 0;
        loop {
            match self.regex.find_from_pos(hay, p) {
                Ok(Some(m)) if taken == 0 || m.end() <= limit => {
                    p = self.emit(hay, m.start(), m.end(), out);
                    taken += 1;
                    if p >= end {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    return Err(TokenizerError::Regex {
                        offset: p,
                        message: e.to_string(),
                    });
                }
            }
        }
        if taken == 0 {
            // Nothing matches from `pos` in the window: go on past its safe part.
            let mut next = limit.max(pos + 1);
            while !text.is_char_boundary(next) {
                next += 1;
            }
            return Ok((next, true));
        }
        Ok((p, taken == 1 && p < text.len()))
    }

    /// Byte-pair merges of one piece, appended to `out`.
    fn merge(&self, piece: &[u8], out: &mut Vec<Rank>) {
        if piece.len() == 1 {
            out.push(self.vocab.encoder[piece]);
        } else if piece.len() <= LONG_PIECE {
            merge_small(&self.vocab.encoder, piece, out);
        } else {
            merge_large(&self.vocab.encoder, piece, out);
        }
    }

    /// The bytes of `ids` (special tokens as their text).
    pub fn decode_bytes(&self, ids: &[Rank]) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.vocab.decoder.get(id as usize) {
                Some(bytes) if !bytes.is_empty() => out.extend_from_slice(bytes),
                _ => match self.special_name(id) {
                    Some(name) => out.extend_from_slice(name.as_bytes()),
                    None => return Err(TokenizerError::UnknownId(id)),
                },
            }
        }
        Ok(out)
    }

    /// The text of `ids`; an error if the bytes are not UTF-8.
    pub fn decode(&self, ids: &[Rank]) -> Result<String, TokenizerError> {
        String::from_utf8(self.decode_bytes(ids)?)
            .map_err(|e| TokenizerError::Utf8(e.utf8_error().valid_up_to()))
    }

    /// Ids in use: the highest rank + 1 + the special tokens.
    pub fn vocab_size(&self) -> usize {
        self.vocab.n_base as usize + self.vocab.specials.len()
    }

    /// The first special token's id (the highest rank + 1).
    pub fn n_base(&self) -> Rank {
        self.vocab.n_base
    }

    /// Number of ranks the vocabulary file defines (less than [`Tokenizer::n_base`] when
    /// it has gaps).
    pub fn n_tokens(&self) -> usize {
        self.vocab.encoder.len()
    }

    /// The id of `<|endoftext|>`.
    pub fn eot(&self) -> Rank {
        self.vocab.n_base
    }

    /// The id of a special token by its text.
    pub fn special_id(&self, name: &str) -> Option<Rank> {
        self.vocab
            .specials
            .iter()
            .position(|s| s == name)
            .map(|i| self.vocab.n_base + i as Rank)
    }

    /// The text of a special token id.
    pub fn special_name(&self, id: Rank) -> Option<&str> {
        let i = id.checked_sub(self.vocab.n_base)? as usize;
        self.vocab.specials.get(i).map(String::as_str)
    }

    /// The special tokens in id order.
    pub fn specials(&self) -> &[String] {
        &self.vocab.specials
    }

    /// The pre-tokenization pattern.
    pub fn pattern(&self) -> &Pattern {
        &self.vocab.pattern
    }

    /// Where the vocabulary came from.
    pub fn source(&self) -> &VocabSource {
        &self.vocab.source
    }

    /// A stable hash of the vocabulary file bytes, the pattern and the special tokens,
    /// `xxh3-128:` and 32 hex digits.
    pub fn hash(&self) -> &str {
        &self.vocab.hash
    }

    /// Identifies what ordinary text encodes to: equal for tokenizers with the same
    /// vocabulary and pattern, whatever their special tokens ([`Tokenizer::encode`]
    /// never produces those), so token ids computed by one can stand for another's.
    pub fn encoding_id(&self) -> u64 {
        self.vocab.encoding
    }

    /// The vocabulary in tiktoken's file format, ranks in increasing order.
    pub fn to_tiktoken(&self) -> Vec<u8> {
        write_tiktoken(
            self.vocab
                .decoder
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.is_empty())
                .map(|(r, t)| (t.as_slice(), r as Rank)),
        )
    }
}

/// tiktoken-format text of `(token, rank)` pairs.
pub fn write_tiktoken<'a>(tokens: impl Iterator<Item = (&'a [u8], Rank)>) -> Vec<u8> {
    use base64::Engine;
    let mut out = Vec::new();
    for (token, rank) in tokens {
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(token)
                .as_bytes(),
        );
        out.push(b' ');
        out.extend_from_slice(rank.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// [`write_tiktoken`]'s text gzip-compressed, deterministically: level 9, no file name
/// and a zero time stamp in the header, so the same vocabulary gives the same bytes.
pub fn gzip_tiktoken(text: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(text).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

/// Reads a tiktoken file, plain or gzip-compressed (told by its first two bytes, not
/// its name), and returns the uncompressed text.
pub fn read_tiktoken_file(path: &Path) -> Result<Vec<u8>, TokenizerError> {
    use std::io::Read;
    let err = |source| TokenizerError::Read {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(err)?;
    if crate::io::Compression::sniff(&raw) != crate::io::Compression::Gzip {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 3);
    flate2::read::MultiGzDecoder::new(&raw[..])
        .read_to_end(&mut out)
        .map_err(err)?;
    Ok(out)
}

/// Ordinary tokens of cl100k_base by rank (the copy `tiktoken-rs` ships).
pub fn cl100k_tokens() -> Vec<Vec<u8>> {
    // tiktoken-rs keeps the ranks private; every rank of cl100k (0..=100255, no gaps; the
    // special tokens start at 100257) decodes to its bytes, which rebuilds the table.
    let bpe = tiktoken_rs::cl100k_base_singleton();
    (0..CL100K_RANKS)
        .map(|r| {
            bpe.decode_bytes(&[r])
                .expect("cl100k_base defines every rank below 100256")
        })
        .collect()
}

/// The cl100k_base vocabulary as tiktoken file bytes, identical to OpenAI's
/// `cl100k_base.tiktoken`.
pub fn cl100k_file_bytes() -> Vec<u8> {
    let tokens = cl100k_tokens();
    write_tiktoken(tokens.iter().zip(0..).map(|(t, r)| (t.as_slice(), r)))
}

/// Ranks of cl100k_base (0..100256).
pub const CL100K_RANKS: Rank = 100_256;

/// Parses tiktoken-format bytes into `(token, rank)` pairs in file order. Blank lines
/// are skipped; a rank above [`MAX_RANK`] is an error.
pub fn parse_tiktoken(bytes: &[u8], path: &Path) -> Result<Vec<(Vec<u8>, Rank)>, TokenizerError> {
    Ok(parse_lines(bytes, path)?
        .into_iter()
        .map(|(_, token, rank)| (token, rank))
        .collect())
}

/// Token bytes by rank (empty for a rank the file does not use) and the bytes -> rank
/// map of tiktoken-format bytes; a rank or a token listed twice is an error naming the
/// line.
pub fn parse_tiktoken_ranks(
    bytes: &[u8],
    path: &Path,
) -> Result<(Vec<Vec<u8>>, Ranks), TokenizerError> {
    let lines = parse_lines(bytes, path)?;
    let max_rank = lines.iter().map(|(_, _, r)| *r).max();
    let mut decoder = vec![Vec::new(); max_rank.map_or(0, |r| r as usize + 1)];
    let mut encoder = FxHashMap::default();
    encoder.reserve(lines.len());
    for (line, token, rank) in lines {
        let err = |message| TokenizerError::Format {
            path: path.to_path_buf(),
            line,
            message,
        };
        if !decoder[rank as usize].is_empty() {
            return Err(err(format!("rank {rank} is used twice")));
        }
        decoder[rank as usize] = token.clone();
        if let Some(other) = encoder.insert(token, rank) {
            return Err(err(format!(
                "token of rank {rank} is the same bytes as rank {other}"
            )));
        }
    }
    Ok((decoder, encoder))
}

/// The lines of tiktoken-format bytes as (1-based line number, token, rank).
fn parse_lines(bytes: &[u8], path: &Path) -> Result<Vec<(usize, Vec<u8>, Rank)>, TokenizerError> {
    use base64::Engine;
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let err = |message: String| TokenizerError::Format {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let text = std::str::from_utf8(line).map_err(|_| err("not ASCII".into()))?;
        let mut parts = text.split_ascii_whitespace();
        let (Some(token), Some(rank), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err(format!(
                "expected `BASE64TOKEN RANK`, found `{}`",
                text.chars().take(80).collect::<String>()
            )));
        };
        let token = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|e| err(format!("bad base64 `{token}`: {e}")))?;
        if token.is_empty() {
            return Err(err("empty token".into()));
        }
        let rank: Rank = rank
            .parse()
            .map_err(|_| err(format!("bad rank `{rank}`")))?;
        if rank > MAX_RANK {
            return Err(err(format!(
                "rank {rank} is too large (at most {MAX_RANK})"
            )));
        }
        out.push((i + 1, token, rank));
    }
    Ok(out)
}

fn rank_of(ranks: &Ranks, bytes: &[u8]) -> Rank {
    ranks.get(bytes).copied().unwrap_or(Rank::MAX)
}

/// tiktoken's merge: repeatedly join the adjacent pair whose joined bytes have the
/// lowest rank (the leftmost among equals). `O(n^2)`, fast for short pieces.
fn merge_small(ranks: &Ranks, piece: &[u8], out: &mut Vec<Rank>) {
    // (start of part, rank of this part joined with the next).
    let mut parts: Vec<(usize, Rank)> = Vec::with_capacity(piece.len() + 1);
    for i in 0..piece.len() - 1 {
        parts.push((i, rank_of(ranks, &piece[i..i + 2])));
    }
    parts.push((piece.len() - 1, Rank::MAX));
    parts.push((piece.len(), Rank::MAX));
    loop {
        let mut min = (Rank::MAX, 0);
        for (i, &(_, r)) in parts[..parts.len() - 1].iter().enumerate() {
            if r < min.0 {
                min = (r, i);
            }
        }
        if min.0 == Rank::MAX {
            break;
        }
        let i = min.1;
        // parts[i + 1] is about to go: the pair at i now ends at parts[i + 3].
        let joined = |parts: &[(usize, Rank)], k: usize| {
            if k + 3 < parts.len() {
                rank_of(ranks, &piece[parts[k].0..parts[k + 3].0])
            } else {
                Rank::MAX
            }
        };
        if i > 0 {
            parts[i - 1].1 = joined(&parts, i - 1);
        }
        parts[i].1 = joined(&parts, i);
        parts.remove(i + 1);
    }
    out.extend(parts.windows(2).map(|w| ranks[&piece[w[0].0..w[1].0]]));
}

/// The same merges as [`merge_small`] in `O(n log n)`: candidate pairs in a min-heap by
/// (rank, start), parts in a linked list; a popped candidate is used only if its two
/// parts are still the current ones.
fn merge_large(ranks: &Ranks, piece: &[u8], out: &mut Vec<Rank>) {
    use std::cmp::Reverse;
    let n = piece.len();
    // For each part start: end of the part (0 when the start is no longer a part) and
    // start of the previous part.
    let mut end: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
    let mut heap: BinaryHeap<Reverse<(Rank, usize, usize)>> = BinaryHeap::with_capacity(n);
    for i in 0..n - 1 {
        let r = rank_of(ranks, &piece[i..i + 2]);
        if r != Rank::MAX {
            heap.push(Reverse((r, i, i + 2)));
        }
    }
    while let Some(Reverse((_, start, pair_end))) = heap.pop() {
        let mid = end[start];
        if mid == 0 || mid >= n || end[mid] != pair_end {
            continue;
        }
        // Join [start, mid) and [mid, pair_end).
        end[start] = pair_end;
        end[mid] = 0;
        if pair_end < n {
            prev[pair_end] = start;
            let r = rank_of(ranks, &piece[start..end[pair_end]]);
            if r != Rank::MAX {
                heap.push(Reverse((r, start, end[pair_end])));
            }
        }
        if start > 0 {
            let p = prev[start];
            let r = rank_of(ranks, &piece[p..pair_end]);
            if r != Rank::MAX {
                heap.push(Reverse((r, p, pair_end)));
            }
        }
    }
    let mut i = 0;
    while i < n {
        out.push(ranks[&piece[i..end[i]]]);
        i = end[i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokenizers made from the same vocabulary share its tables, whatever their
    /// pattern and special tokens, and encode ordinary text alike when the pattern is the
    /// same (the encoding id says so).
    #[test]
    fn tokenizers_of_one_vocabulary_share_its_tables() {
        let a = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Qwen, 0).unwrap();
        let b = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Cl100k, 22).unwrap();
        let c = Tokenizer::load(&VocabSource::Cl100k, &Pattern::Qwen, 22).unwrap();
        assert!(std::sync::Arc::ptr_eq(&a.vocab.encoder, &b.vocab.encoder));
        assert!(std::sync::Arc::ptr_eq(&a.vocab.decoder, &b.vocab.decoder));
        assert_eq!(a.encoding_id(), c.encoding_id());
        assert_ne!(a.encoding_id(), b.encoding_id());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(
            a.encode("abc 12345").unwrap(),
            c.encode("abc 12345").unwrap()
        );
    }

    fn cl100k() -> Tokenizer {
        Tokenizer::load(&VocabSource::Cl100k, &Pattern::Cl100k, QWEN_EXTRA_TOKENS).unwrap()
    }

    #[test]
    fn allowed_specials_become_their_ids_and_nothing_else_does() {
        let t = cl100k();
        let (start, end) = (
            t.special_id("<|im_start|>").unwrap(),
            t.special_id("<|im_end|>").unwrap(),
        );
        let text =
            "<|im_start|>user\nhi <|endoftext|><|im_end|>\n<|im_start|>assistant\nyo<|im_end|>";
        let mut ids = Vec::new();
        t.encode_with_specials(text, &["<|im_start|>", "<|im_end|>"], &mut ids)
            .unwrap();
        let mut want = vec![start];
        want.extend(t.encode("user\nhi <|endoftext|>").unwrap());
        want.push(end);
        want.extend(t.encode("\n").unwrap());
        want.push(start);
        want.extend(t.encode("assistant\nyo").unwrap());
        want.push(end);
        assert_eq!(ids, want);
        // Without permission the markers are ordinary text.
        assert!(!t.encode(text).unwrap().contains(&start));
        assert_eq!(t.decode(&ids).unwrap(), text);
    }

    #[test]
    fn cl100k_known_ids_and_round_trip() {
        let t = cl100k();
        // Ids from tiktoken's cl100k_base ("hello world" is [15339, 1917]).
        assert_eq!(t.encode("hello world").unwrap(), vec![15339, 1917]);
        assert_eq!(t.n_base(), 100_256);
        assert_eq!(t.vocab_size(), 100_256 + 3 + 205);
        assert_eq!(t.special_id("<|endoftext|>"), Some(100_256));
        assert_eq!(t.special_id("<|extra_204|>"), Some(100_256 + 207));
        assert_eq!(t.special_name(100_258), Some("<|im_end|>"));
        let text = "Tokenizers split text 12345 ways; 中文也可以。\n\n  <|endoftext|> done";
        let ids = t.encode(text).unwrap();
        assert!(!ids.contains(&t.eot()), "special text is ordinary text");
        assert_eq!(t.decode(&ids).unwrap(), text);
        let mut with_eot = ids.clone();
        with_eot.push(t.eot());
        assert!(t.decode(&with_eot).unwrap().ends_with("done<|endoftext|>"));
        assert!(matches!(
            t.decode(&[u32::MAX - 1]),
            Err(TokenizerError::UnknownId(_))
        ));
    }

    #[test]
    fn file_round_trip_and_hash_depends_on_pattern() {
        let bytes = cl100k_file_bytes();
        let a = Tokenizer::from_bytes(&bytes, VocabSource::Cl100k, &Pattern::Qwen, 205).unwrap();
        let b = Tokenizer::from_bytes(&bytes, VocabSource::Cl100k, &Pattern::Cl100k, 205).unwrap();
        let c = Tokenizer::from_bytes(&bytes, VocabSource::Cl100k, &Pattern::Cl100k, 3).unwrap();
        assert_eq!(a.to_tiktoken(), bytes);
        assert_ne!(a.hash(), b.hash());
        assert_ne!(b.hash(), c.hash());
        assert_eq!(b.hash(), cl100k().hash());
        // The qwen pattern splits digits one by one.
        assert_eq!(a.encode("2024").unwrap().len(), 4);
        assert_eq!(b.encode("2024").unwrap().len(), 2);
    }

    #[test]
    fn bad_files_name_the_line() {
        let p = Pattern::Cl100k;
        let src = || VocabSource::File("v.tiktoken".into());
        let err = Tokenizer::from_bytes(b"YQ== 0\nnot-a-line\n", src(), &p, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.tiktoken: line 2: expected `BASE64TOKEN RANK`, found `not-a-line`"
        );
        let err = Tokenizer::from_bytes(b"YQ== 0\n!!! 1\n", src(), &p, 0).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("v.tiktoken: line 2: bad base64")
        );
        let err = Tokenizer::from_bytes(b"YQ== 0\nYg== x\n", src(), &p, 0).unwrap_err();
        assert!(err.to_string().contains("line 2: bad rank `x`"), "{err}");
        // Line numbers count blank lines.
        let err = Tokenizer::from_bytes(b"YQ== 0\n\nYg== 0\n", src(), &p, 0).unwrap_err();
        assert_eq!(err.to_string(), "v.tiktoken: line 3: rank 0 is used twice");
        let err = Tokenizer::from_bytes(b"YQ== 0\n\nYQ== 1\n", src(), &p, 0).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("line 3: token of rank 1 is the same bytes as rank 0")
        );
        let err = Tokenizer::from_bytes(b"YQ== 4000000000\n", src(), &p, 0).unwrap_err();
        assert!(
            err.to_string()
                .contains("line 1: rank 4000000000 is too large")
        );
        let err = Tokenizer::from_bytes(b"YQ== 0\n", src(), &p, 0).unwrap_err();
        assert!(matches!(err, TokenizerError::MissingByte { byte: 0, .. }));
        let err = Tokenizer::from_bytes(b"\n", src(), &p, 0).unwrap_err();
        assert!(matches!(err, TokenizerError::Empty(_)));
        let err = Tokenizer::from_bytes(&cl100k_file_bytes(), src(), &Pattern::parse("("), 0)
            .unwrap_err();
        assert!(matches!(err, TokenizerError::Pattern(_)));
    }

    #[test]
    fn special_tokens_follow_the_ordinary_ones() {
        let s = special_tokens(151_643, QWEN_EXTRA_TOKENS);
        assert_eq!(s.len(), 208);
        assert_eq!(s[0], ("<|endoftext|>".to_string(), 151_643));
        assert_eq!(s[2], ("<|im_end|>".to_string(), 151_645));
        assert_eq!(s[207], ("<|extra_204|>".to_string(), 151_850));
        let t = cl100k();
        let names: Vec<String> = s.into_iter().map(|(n, _)| n).collect();
        assert_eq!(t.specials(), &names[..]);
    }

    #[test]
    fn patterns_by_name_and_by_regex() {
        for p in [Pattern::Cl100k, Pattern::Qwen] {
            assert_eq!(Pattern::parse(p.name()), p);
            assert_eq!(Pattern::from_regex(p.regex()), p);
        }
        assert_eq!(Pattern::parse("cl100k_base"), Pattern::Cl100k);
        assert_eq!(Pattern::from_regex("qwen"), Pattern::Regex("qwen".into()));
        assert_eq!(Pattern::parse(r"\S+"), Pattern::Regex(r"\S+".into()));
    }

    #[test]
    fn gzip_files_load_like_plain_ones() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = cl100k_file_bytes();
        let gz = gzip_tiktoken(&bytes);
        assert!(gz.starts_with(&[0x1f, 0x8b]) && gz.len() < bytes.len() / 2);
        assert_eq!(gz, gzip_tiktoken(&bytes), "deterministic");
        let (plain_path, gz_path) = (dir.path().join("c.tiktoken"), dir.path().join("c.gz"));
        std::fs::write(&plain_path, &bytes).unwrap();
        std::fs::write(&gz_path, &gz).unwrap();
        assert_eq!(read_tiktoken_file(&gz_path).unwrap(), bytes);
        let load =
            |p: &Path| Tokenizer::load(&VocabSource::File(p.into()), &Pattern::Qwen, 3).unwrap();
        let (a, b) = (load(&plain_path), load(&gz_path));
        assert_eq!(a.hash(), b.hash(), "the hash is of the uncompressed text");
        assert_eq!(b.to_tiktoken(), bytes);
        assert_eq!(
            a.encode("gzip 2024").unwrap(),
            b.encode("gzip 2024").unwrap()
        );
        let err = read_tiktoken_file(&dir.path().join("missing.gz")).unwrap_err();
        assert!(
            err.to_string()
                .contains("missing.gz: cannot read vocabulary")
        );
        // The shipped vocabulary, as `corpus tokens --vocab` reads it.
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/corpus152k.tiktoken.gz");
        let t = load(&shipped);
        assert_eq!((t.n_base(), t.n_tokens()), (151_643, 151_643));
        let text = "北京大学创办于1898年。";
        assert_eq!(t.decode(&t.encode(text).unwrap()).unwrap(), text);
    }

    #[test]
    fn heap_merge_equals_tiktoken_merge() {
        let t = cl100k();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabets: [&[&str]; 4] = [
            &["a", "b", "ab", "ba", "aa"],
            &["的", "是", "中国", "人"],
            &["e", "r", "t", "er", "th", "the", "ing", "in", "g"],
            &["\u{0}", "\u{7f}", "é", "🙂", "x"],
        ];
        for round in 0..300 {
            let alphabet = alphabets[round % alphabets.len()];
            let len = 2 + (next() % 400) as usize;
            let mut s = String::new();
            while s.len() < len {
                s.push_str(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            let (mut small, mut large) = (Vec::new(), Vec::new());
            merge_small(&t.vocab.encoder, s.as_bytes(), &mut small);
            merge_large(&t.vocab.encoder, s.as_bytes(), &mut large);
            assert_eq!(small, large, "{s:?}");
            assert_eq!(t.decode(&large).unwrap(), s);
        }
    }

    /// The rewritten built-in patterns split exactly as the originals on fancy-regex.
    #[test]
    fn fast_patterns_split_as_the_originals() {
        let bytes = cl100k_file_bytes();
        let pieces = [
            " ", "  ", "   ", "\n", "\r\n", "\t", "\u{a0}", "\u{3000}", "\u{2028}", "a", "B", "é",
            "的", "7", "٣", "'s", "'S", "'ll", "'", "!", "?!", "🙂", "\u{301}", "x", "ab", "\u{0}",
            "-", "_", "Ⅻ",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for pattern in [Pattern::Qwen, Pattern::Cl100k] {
            let fast = Tokenizer::from_bytes(&bytes, VocabSource::Cl100k, &pattern, 0).unwrap();
            let slow = Tokenizer::from_bytes(
                &bytes,
                VocabSource::Cl100k,
                &Pattern::Regex(pattern.regex().into()),
                0,
            )
            .unwrap();
            assert!(fast.fast.is_some() && slow.fast.is_none());
            assert_eq!(fast.hash(), slow.hash());
            for _ in 0..20_000 {
                let n = 1 + (next() % 12) as usize;
                let text: String = (0..n)
                    .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    fast.encode(&text).unwrap(),
                    slow.encode(&text).unwrap(),
                    "{} {text:?}",
                    pattern.name()
                );
            }
        }
    }

    #[test]
    fn pathological_megabyte_inputs_are_linear_enough() {
        let qwen_regex = Pattern::Regex(QWEN_PATTERN.into());
        for pattern in [Pattern::Cl100k, Pattern::Qwen, qwen_regex] {
            let t = Tokenizer::from_bytes(&cl100k_file_bytes(), VocabSource::Cl100k, &pattern, 3)
                .unwrap();
            let mb = 1 << 20;
            let cases = [
                "a".repeat(mb),
                "7".repeat(mb),
                " ".repeat(mb),
                format!("{}x", " ".repeat(mb)),
                "\n".repeat(mb),
                " \n".repeat(mb / 2),
                "的".repeat(mb / 3),
                "!".repeat(mb),
                "ab ".repeat(mb / 3),
                "Packed shards, 2048 tokens each: 中文和English混合的文本。\n".repeat(mb * 3 / 64),
            ];
            for text in cases {
                let ids = t.encode(&text).unwrap();
                assert_eq!(t.decode(&ids).unwrap(), text, "{}", pattern.name());
            }
        }
    }
}
