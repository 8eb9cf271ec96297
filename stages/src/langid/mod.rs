//! `langid`: document-level language identification on whatlang, with script rules for
//! CJK text and a language filter.
//!
//! How a document is decided ([`Detector::detect`]):
//! 1. A *sample* of the text: the whole text up to `sample_bytes`; a longer text is read
//!    as `sample_slices` slices spread evenly over it (start, middle..., end), so a page
//!    with a header or footer in another language is judged by its body and a long page
//!    costs no more than a short one.
//! 2. Letters of the sample are counted by script. Han, kana and Hangul characters weigh
//!    [`CJK_WEIGHT`] Latin letters each (one CJK character carries about as much text as
//!    a few alphabetic letters), so a Chinese page with English brand names stays Chinese.
//! 3. When CJK letters carry at least half the weight, the script decides: Hangul is
//!    Korean, kana (Hiragana/Katakana) make Han text Japanese, Han alone is Chinese.
//!    whatlang's own rule counts full-width punctuation as Hangul and is not used here.
//! 4. Unaccented Latin text in which at least 25% of the words are frequent English
//!    words (a list that leaves out words other languages share, such as "in", "is",
//!    "die", "over") is English without running the trigram model: the common case of a
//!    web crawl, and whatlang's slowest.
//! 5. Otherwise whatlang decides among the languages of the main script (Cyrillic text
//!    is only compared with Cyrillic languages, and so on), and its confidence is scaled
//!    by the share of the letters that are not CJK. When whatlang is unsure (confidence
//!    below 0.8) on unaccented Latin text with at least 20% English words, the answer is
//!    English (headlines, tables and one-line chat mislead the trigram model). Failing
//!    that, the larger English lexicon (`lexicon/english.txt`, about 30,000 words from
//!    MIT- and Apache-licensed English text, less the words whatlang's profiles find plausible in
//!    another Latin-script language; see `lexicon/SOURCE.md`) decides: at least two
//!    English words of three letters or more (or contractions such as "don't", "I'm")
//!    carrying at least half of the letters, and no accented word.
//!    With the opt-in English prior (`prior = "en"`, [`Detector::with_prior_english`]),
//!    unsure or too-short Latin text is English when one English word carries a third of
//!    the letters, names left out ("Girl: Ew.").
//! 6. A second opinion on the pairs whatlang confuses most moves the label inside its
//!    family on evidence in the text: letters only one language uses (Cyrillic ы/э/ё for
//!    Russian, і/ї/є for Ukrainian, ў for Belarusian, ђ/ћ for Serbian, ѓ/ќ/ѕ for
//!    Macedonian; ě/ř/ů Czech against ä/ô/ľ Slovak; ı/ğ Turkish against Turkmen), and
//!    marker words for Danish/Bokmål, Dutch/Afrikaans, Slovenian/Croatian and
//!    Catalan/Spanish.
//!
//! Undecided (`und`, reason `unknown_language`): no letters, fewer than `min_letters`
//! letters where the script does not settle the language by itself, or no answer from
//! whatlang. Short one-line text usually gets a low confidence from whatlang instead, so
//! `min_confidence` is where short or ambiguous text is dropped rather than mislabelled.
//!
//! Codes are ISO 639-1 where one exists (`en`, `zh`, `fa` for whatlang's `pes`, `nb` for
//! `nob`), else ISO 639-3. The script goes to `meta.extra["script"]` as an ISO 15924 code
//! (`Latn`, `Cyrl`, `Hani` for Chinese, `Jpan` for Japanese, `Kore` for Korean...).

/// The detector library, re-exported so that benchmarks compare against the same
/// version.
pub use whatlang;

mod confusables;

use crate::document::Document;
use crate::stage::{Failure, Measure, Reason, Stage, StageCx, StageError, Verdict};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The stage kind.
pub const KIND: &str = "langid";

/// What the stage does, in one line (`corpus stages`).
pub const ABOUT: &str =
    "identify the document language (whatlang + script rules) and keep wanted languages";

/// No language could be decided (no letters, too few letters, no answer).
pub const UNKNOWN_LANGUAGE: Reason = Reason::new("unknown_language");
/// A language was found, with a confidence below the configured minimum for it.
pub const LOW_CONFIDENCE: Reason = Reason::new("low_confidence");
/// A language was found with enough confidence, and it is not in `languages`.
pub const UNWANTED_LANGUAGE: Reason = Reason::new("unwanted_language");

/// How many alphabetic letters one Han, kana or Hangul character weighs when the scripts
/// of a text are compared.
pub const CJK_WEIGHT: usize = 3;

/// Configuration of the `langid` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Languages to keep (ISO 639-1 or 639-3 codes); empty keeps every language.
    /// Default: empty.
    pub languages: Vec<String>,
    /// Minimum confidence (0..=1) for a language without its own entry in
    /// `min_confidence_by_lang`; below it the document is dropped (`low_confidence`).
    /// Default 0.5.
    pub min_confidence: f32,
    /// Minimum confidence per language code, overriding `min_confidence`. Default: empty.
    pub min_confidence_by_lang: BTreeMap<String, f32>,
    /// Bytes of text the decision reads at most. Default 2048 (at least 64).
    pub sample_bytes: usize,
    /// Number of slices a longer text is sampled as, spread evenly over it. Default 4.
    pub sample_slices: usize,
    /// Fewer letters than this leave the language undecided, unless the script alone
    /// settles it (Han, kana, Hangul, Greek, Thai...). Default 8.
    pub min_letters: usize,
    /// The language a short or ambiguous Latin-script text is taken to be when nothing in
    /// it contradicts that language: a prior for a corpus known to be in that language
    /// (for example a pipeline that keeps only `en` and `zh`). Only `en` is supported (the
    /// one language with a lexicon). Off by default: without it such text is left
    /// undecided or dropped as low confidence. See [`Detector::with_prior_english`].
    pub prior: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            languages: Vec::new(),
            min_confidence: 0.5,
            min_confidence_by_lang: BTreeMap::new(),
            sample_bytes: 2048,
            sample_slices: 4,
            min_letters: 8,
            prior: None,
        }
    }
}

/// Field documentation for `corpus stages`.
pub const FIELDS: &[crate::FieldDoc] = &[
    crate::FieldDoc {
        name: "languages",
        doc: "language codes to keep (ISO 639-1, or 639-3 where none exists); empty keeps all (unwanted_language)",
    },
    crate::FieldDoc {
        name: "min_confidence",
        doc: "minimum confidence in 0..=1 for languages without their own minimum (low_confidence)",
    },
    crate::FieldDoc {
        name: "min_confidence_by_lang",
        doc: "table of language code -> minimum confidence, overriding min_confidence",
    },
    crate::FieldDoc {
        name: "sample_bytes",
        doc: "bytes of text read at most to decide; longer texts are sampled",
    },
    crate::FieldDoc {
        name: "sample_slices",
        doc: "number of slices, spread over the text, that a longer text is sampled as",
    },
    crate::FieldDoc {
        name: "min_letters",
        doc: "fewer letters leave the language undecided (unknown_language), unless the script settles it",
    },
    crate::FieldDoc {
        name: "prior",
        doc: "language (only \"en\") that short or unsure Latin-script text is taken to be when nothing contradicts it; off by default",
    },
];

/// The outcome of [`Detector::detect`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Language code (ISO 639-1 where one exists, else ISO 639-3); `None` when undecided.
    pub lang: Option<&'static str>,
    /// Main script of the text as an ISO 15924 code; `None` when the text has no letters.
    pub script: Option<&'static str>,
    /// Confidence in 0..=1 (0 when undecided).
    pub confidence: f32,
}

impl Detection {
    /// The language code, or `und` when undecided.
    pub fn code(&self) -> &'static str {
        self.lang.unwrap_or("und")
    }

    const UNDECIDED: Detection = Detection {
        lang: None,
        script: None,
        confidence: 0.0,
    };
}

/// The language detector, without the filter: sampling, script rules and whatlang.
#[derive(Debug, Clone)]
pub struct Detector {
    sample_bytes: usize,
    sample_slices: usize,
    min_letters: usize,
    prior_english: bool,
}

impl Default for Detector {
    fn default() -> Self {
        let c = Config::default();
        Detector::new(c.sample_bytes, c.sample_slices, c.min_letters)
    }
}

/// Letter counts of a sample, by the scripts the CJK rules need.
#[derive(Debug, Default)]
struct ScriptCounts {
    han: usize,
    kana: usize,
    hangul: usize,
    /// Letters of every other script.
    other: usize,
}

impl ScriptCounts {
    fn of(text: &str) -> ScriptCounts {
        let mut c = ScriptCounts::default();
        for ch in text.chars() {
            if ch.is_ascii() {
                c.other += usize::from(ch.is_ascii_alphabetic());
            } else if is_han(ch) {
                c.han += 1;
            } else if is_kana(ch) {
                c.kana += 1;
            } else if is_hangul(ch) {
                c.hangul += 1;
            } else if ch.is_alphabetic() {
                c.other += 1;
            }
        }
        c
    }

    fn cjk(&self) -> usize {
        self.han + self.kana + self.hangul
    }
}

impl Detector {
    /// A detector reading at most `sample_bytes` of a text as `sample_slices` slices, and
    /// leaving texts with fewer than `min_letters` letters undecided.
    pub fn new(sample_bytes: usize, sample_slices: usize, min_letters: usize) -> Detector {
        Detector {
            sample_bytes: sample_bytes.max(64),
            sample_slices: sample_slices.max(1),
            min_letters,
            prior_english: false,
        }
    }

    /// The same detector with the English prior on or off (`prior = "en"` in the stage's
    /// config). With it, a Latin-script text that the detector would leave undecided (too
    /// few letters) or that whatlang is unsure about is English when no word carries a
    /// non-ASCII letter and at least one word, and a third of the letters, are in the
    /// English lexicon ("Girl: Ew.", "Woman #2: No.", "Autocomplete Fun"). Text that whatlang
    /// is sure about, accented text and text of other scripts are not affected.
    pub fn with_prior_english(mut self, on: bool) -> Detector {
        self.prior_english = on;
        self
    }

    /// Decides the language of `text`.
    pub fn detect(&self, text: &str) -> Detection {
        let sample = sample(text, self.sample_bytes, self.sample_slices);
        let counts = ScriptCounts::of(&sample);
        let cjk = counts.cjk() * CJK_WEIGHT;
        let total = cjk + counts.other;
        if total == 0 {
            return Detection::UNDECIDED;
        }
        if cjk * 2 >= total {
            return cjk_detection(&counts, cjk as f32 / total as f32);
        }
        let english = EnglishWords::of(&sample);
        // Plain English prose is settled by its function words without running the
        // trigram model, which is both the common case of a web crawl and the slow one.
        if counts.other >= self.min_letters && english.is_english(ENGLISH_SHARE) {
            let share = counts.other as f32 / total as f32;
            return Detection {
                lang: Some("en"),
                script: Some("Latn"),
                confidence: (english.share() / (2.0 * ENGLISH_SHARE)).min(1.0) * share,
            };
        }
        let Some(info) = whatlang::detect(&sample) else {
            return Detection::UNDECIDED;
        };
        let script = script_code(info.script());
        // A script with one language (Greek, Thai, Georgian...) is conclusive however
        // short the text; an alphabet shared by many languages is not.
        let shared = matches!(
            info.script(),
            whatlang::Script::Latin
                | whatlang::Script::Cyrillic
                | whatlang::Script::Arabic
                | whatlang::Script::Devanagari
                | whatlang::Script::Hebrew
        );
        if shared && counts.other < self.min_letters {
            if self.prior_english
                && info.script() == whatlang::Script::Latin
                && LexiconWords::of(&sample).prior_fits()
            {
                return Detection {
                    lang: Some("en"),
                    script: Some(script),
                    confidence: PRIOR_CONFIDENCE * (counts.other as f32 / total as f32),
                };
            }
            return Detection {
                lang: None,
                script: Some(script),
                confidence: 0.0,
            };
        }
        let share = counts.other as f32 / total as f32;
        // whatlang is unsure on short or list-like Latin text (headlines, tables,
        // one-line chat) and then often names a small language; unaccented text with a
        // fair share of English words (of a list without words other languages share)
        // is English.
        if info.script() == whatlang::Script::Latin && info.confidence() < WHATLANG_UNSURE {
            // The curated list first (cheap), then the larger lexicon: words of bug
            // titles and chat lines ("PHP pages sometimes downloaded instead of viewed").
            let lexicon =
                (!english.is_english(ENGLISH_SHARE_WEAK)).then(|| LexiconWords::of(&sample));
            if lexicon.as_ref().is_none_or(LexiconWords::is_english) {
                return Detection {
                    lang: Some("en"),
                    script: Some(script),
                    confidence: 0.5 * share,
                };
            }
            if self.prior_english && lexicon.as_ref().is_some_and(LexiconWords::prior_fits) {
                return Detection {
                    lang: Some("en"),
                    script: Some(script),
                    confidence: PRIOR_CONFIDENCE * share,
                };
            }
        }
        let mut lang = lang_code(info.lang());
        let mut confidence = info.confidence() as f32;
        if let Some((better, c)) = confusables::second_opinion(&sample, lang) {
            lang = better;
            confidence = c;
        }
        Detection {
            lang: Some(lang),
            script: Some(script),
            confidence: (confidence * share).clamp(0.0, 1.0),
        }
    }
}

/// Share of English words (of [`ENGLISH_WORDS`]) among the words of an unaccented Latin
/// text that settles it as English without the trigram model.
const ENGLISH_SHARE: f32 = 0.25;
/// The smaller share that decides for English when whatlang is unsure.
const ENGLISH_SHARE_WEAK: f32 = 0.2;
/// Below this whatlang confidence a Latin-script answer is open to the English rule.
const WHATLANG_UNSURE: f64 = 0.8;
/// Confidence of a label that the English prior decided (kept at the default
/// `min_confidence`).
const PRIOR_CONFIDENCE: f32 = 0.5;

/// The English lexicon (`lexicon/english.txt`, built by `lexicon/build_english.py`, see
/// `lexicon/SOURCE.md`): about 30,000 words of 3 to 16 letters that occur at least 3
/// times in MIT- and Apache-licensed English text and that are not made only of the trigrams of
/// another Latin-script language's whatlang profile.
const ENGLISH_LEXICON: &str = include_str!("lexicon/english.txt");

/// [`ENGLISH_LEXICON`] as sorted [`word_key`]s.
fn lexicon_keys() -> &'static [u128] {
    static KEYS: std::sync::LazyLock<Vec<u128>> = std::sync::LazyLock::new(|| {
        let mut keys: Vec<u128> = ENGLISH_LEXICON.lines().filter_map(word_key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    });
    &KEYS
}

/// English contractions: a word ending in "n't", "'m", "'re", "'ve", "'ll" or "'d" (with a
/// straight or curly apostrophe). Other Latin-script languages elide at the start of a
/// word ("l'", "d'", "qu'") rather than at the end.
fn is_contraction(word: &str) -> bool {
    let w = word.replace('\u{2019}', "'").to_ascii_lowercase();
    let Some((stem, tail)) = w.rsplit_once('\'') else {
        return false;
    };
    !stem.is_empty()
        && stem.bytes().all(|b| b.is_ascii_lowercase())
        && (matches!(tail, "m" | "re" | "ve" | "ll" | "d") || (tail == "t" && stem.ends_with('n')))
}

/// Letters of a sample in words of the English lexicon, for the rules on short or
/// unsure Latin-script text.
#[derive(Debug, Default)]
struct LexiconWords {
    /// Letters in lowercase words and lexicon words of at least two letters (one-letter
    /// words are left out: "a", "i", "e", "y", "o" are words of many languages).
    letters: usize,
    /// Of those, letters in words of the lexicon or of [`ENGLISH_WORDS`], and in
    /// contractions.
    english_letters: usize,
    /// Words of at least three letters counted in `english_letters`.
    english: usize,
    /// Letters in capitalized words outside the lexicon, not counted in `letters`:
    /// mostly names ("Firebird", "Tom Cruise"), but also the words of another language
    /// at the start of a sentence, so only the prior leaves them out.
    name_letters: usize,
    /// A word has a non-ASCII letter (an accent, another script).
    foreign: bool,
}

impl LexiconWords {
    fn of(text: &str) -> LexiconWords {
        let mut c = LexiconWords::default();
        let (lexicon, curated) = (lexicon_keys(), english_keys());
        let apostrophe = |ch: char| ch == '\'' || ch == '\u{2019}';
        for token in text.split(|ch: char| !ch.is_alphabetic() && !apostrophe(ch)) {
            let token = token.trim_matches(apostrophe);
            if token.is_empty() {
                continue;
            }
            if token.chars().any(|ch| ch.is_alphabetic() && !ch.is_ascii()) {
                c.foreign = true;
                continue;
            }
            if is_contraction(token) {
                let n = token.bytes().filter(u8::is_ascii_alphabetic).count();
                c.letters += n;
                c.english_letters += n;
                c.english += 1;
                continue;
            }
            let word = token.split(apostrophe).next().unwrap_or_default();
            if word.len() < 2 {
                continue;
            }
            let known = word_key(word).is_some_and(|key| {
                lexicon.binary_search(&key).is_ok() || curated.binary_search(&key).is_ok()
            });
            if known {
                c.letters += word.len();
                c.english_letters += word.len();
                // Two-letter words ("hi", "go", "be") are words of other languages too.
                c.english += usize::from(word.len() >= 3);
            } else if word.as_bytes()[0].is_ascii_uppercase() {
                c.name_letters += word.len();
            } else {
                c.letters += word.len();
            }
        }
        c
    }

    /// English without a prior: at least two English words carrying at least half of
    /// the letters, and no accented word.
    fn is_english(&self) -> bool {
        !self.foreign
            && self.english >= 2
            && self.english_letters * 2 >= self.letters + self.name_letters
    }

    /// English under the English prior: one English word and a third of the letters,
    /// capitalized words outside the lexicon (names) left out.
    fn prior_fits(&self) -> bool {
        !self.foreign && self.english >= 1 && self.english_letters * 3 >= self.letters
    }
}

/// Frequent English words that are not also frequent words of another Latin-script
/// language: "a", "in", "is", "to", "on", "for", "die", "was", "of", "over", "want",
/// "net", "car", "place"... are left out because Dutch, German, Polish, Danish, French,
/// Spanish or Italian use them too; words written the same in those languages
/// ("problem", "idea", "final", "table") likewise. Sorted and unique
/// (checked by a test), at most 16 letters each.
const ENGLISH_WORDS: &[&str] = &[
    "able",
    "about",
    "above",
    "after",
    "again",
    "against",
    "ago",
    "all",
    "almost",
    "already",
    "always",
    "among",
    "and",
    "another",
    "any",
    "are",
    "aren",
    "around",
    "ask",
    "asked",
    "available",
    "away",
    "baby",
    "back",
    "bad",
    "be",
    "because",
    "been",
    "before",
    "began",
    "being",
    "believe",
    "below",
    "better",
    "between",
    "big",
    "billion",
    "body",
    "book",
    "both",
    "bought",
    "boy",
    "bring",
    "brother",
    "brought",
    "browser",
    "bug",
    "bugs",
    "build",
    "built",
    "business",
    "but",
    "button",
    "buy",
    "call",
    "called",
    "came",
    "can",
    "case",
    "change",
    "changed",
    "child",
    "children",
    "city",
    "clear",
    "click",
    "company",
    "continue",
    "corp",
    "could",
    "couldn",
    "country",
    "crash",
    "dad",
    "day",
    "days",
    "default",
    "didn",
    "different",
    "display",
    "dividend",
    "doesn",
    "don",
    "download",
    "during",
    "each",
    "early",
    "easy",
    "end",
    "error",
    "evening",
    "ever",
    "every",
    "eye",
    "fact",
    "family",
    "father",
    "feel",
    "felt",
    "few",
    "file",
    "files",
    "film",
    "find",
    "first",
    "five",
    "fix",
    "follow",
    "following",
    "food",
    "found",
    "four",
    "free",
    "friend",
    "friends",
    "from",
    "full",
    "game",
    "gave",
    "get",
    "gets",
    "getting",
    "girl",
    "give",
    "given",
    "go",
    "goes",
    "going",
    "gone",
    "good",
    "got",
    "government",
    "great",
    "group",
    "guy",
    "guys",
    "happen",
    "happened",
    "has",
    "hasn",
    "have",
    "haven",
    "head",
    "hear",
    "heard",
    "help",
    "here",
    "hey",
    "hi",
    "high",
    "him",
    "his",
    "home",
    "hour",
    "hours",
    "house",
    "how",
    "husband",
    "if",
    "important",
    "inc",
    "include",
    "including",
    "information",
    "install",
    "into",
    "isn",
    "it",
    "its",
    "just",
    "keep",
    "kept",
    "kid",
    "kids",
    "knew",
    "know",
    "known",
    "large",
    "last",
    "late",
    "law",
    "learn",
    "leave",
    "left",
    "less",
    "let",
    "life",
    "like",
    "liked",
    "likely",
    "link",
    "links",
    "little",
    "live",
    "lived",
    "ll",
    "local",
    "long",
    "look",
    "looked",
    "looking",
    "loss",
    "love",
    "loved",
    "ltd",
    "made",
    "make",
    "making",
    "many",
    "market",
    "may",
    "men",
    "menu",
    "might",
    "mind",
    "mom",
    "money",
    "month",
    "months",
    "more",
    "morning",
    "most",
    "mother",
    "move",
    "moved",
    "movie",
    "much",
    "music",
    "must",
    "my",
    "national",
    "need",
    "needed",
    "never",
    "new",
    "news",
    "next",
    "night",
    "not",
    "now",
    "number",
    "often",
    "oh",
    "oil",
    "okay",
    "old",
    "one",
    "only",
    "option",
    "options",
    "or",
    "other",
    "our",
    "own",
    "page",
    "paid",
    "pay",
    "people",
    "perhaps",
    "play",
    "played",
    "please",
    "point",
    "power",
    "price",
    "prices",
    "prior",
    "program",
    "public",
    "quarter",
    "read",
    "ready",
    "really",
    "remember",
    "report",
    "right",
    "room",
    "run",
    "said",
    "same",
    "saw",
    "say",
    "saying",
    "says",
    "school",
    "search",
    "see",
    "seem",
    "seemed",
    "seems",
    "seen",
    "sell",
    "send",
    "sent",
    "service",
    "services",
    "share",
    "shares",
    "she",
    "should",
    "shouldn",
    "show",
    "showed",
    "shows",
    "side",
    "since",
    "sister",
    "small",
    "social",
    "sold",
    "some",
    "sometimes",
    "soon",
    "sorry",
    "stay",
    "still",
    "story",
    "such",
    "support",
    "sure",
    "system",
    "take",
    "taken",
    "talk",
    "talked",
    "team",
    "tell",
    "text",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "thing",
    "things",
    "think",
    "this",
    "those",
    "thought",
    "three",
    "through",
    "time",
    "today",
    "together",
    "told",
    "tomorrow",
    "tonight",
    "too",
    "took",
    "toward",
    "town",
    "trade",
    "tried",
    "true",
    "try",
    "two",
    "understand",
    "until",
    "update",
    "us",
    "use",
    "used",
    "user",
    "users",
    "using",
    "ve",
    "very",
    "vs",
    "wait",
    "waited",
    "wanted",
    "wasn",
    "watch",
    "water",
    "way",
    "we",
    "went",
    "were",
    "weren",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whole",
    "why",
    "wife",
    "window",
    "with",
    "without",
    "woman",
    "women",
    "won",
    "word",
    "words",
    "work",
    "worked",
    "working",
    "works",
    "world",
    "would",
    "wouldn",
    "write",
    "written",
    "wrong",
    "wrote",
    "yeah",
    "year",
    "years",
    "yes",
    "yesterday",
    "yet",
    "you",
    "young",
    "your",
];

/// An ASCII word of at most 16 letters, lowercased and packed into an integer, so that
/// the look-up in [`ENGLISH_WORDS`] compares integers rather than strings.
fn word_key(word: &str) -> Option<u128> {
    if word.len() > 16 {
        return None;
    }
    let mut key = 0u128;
    for b in word.bytes() {
        key = (key << 8) | u128::from(b.to_ascii_lowercase());
    }
    Some(key)
}

/// [`ENGLISH_WORDS`] as sorted [`word_key`]s.
fn english_keys() -> &'static [u128] {
    static KEYS: std::sync::LazyLock<Vec<u128>> = std::sync::LazyLock::new(|| {
        let mut keys: Vec<u128> = ENGLISH_WORDS.iter().filter_map(|w| word_key(w)).collect();
        keys.sort_unstable();
        keys
    });
    &KEYS
}

/// Word counts of a sample for the English rules.
#[derive(Debug, Default)]
struct EnglishWords {
    /// Words made of ASCII letters.
    words: usize,
    /// Of those, words in [`ENGLISH_WORDS`].
    english: usize,
    /// Words with a non-ASCII letter (accents, other scripts).
    other: usize,
}

impl EnglishWords {
    fn of(text: &str) -> EnglishWords {
        let mut c = EnglishWords::default();
        let keys = english_keys();
        for word in text.split(|ch: char| !ch.is_alphanumeric()) {
            if word.is_empty() || word.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if !word.bytes().all(|b| b.is_ascii_alphabetic()) {
                c.other += usize::from(!word.is_ascii());
                continue;
            }
            c.words += 1;
            if let Some(key) = word_key(word) {
                c.english += usize::from(keys.binary_search(&key).is_ok());
            }
        }
        c
    }

    fn share(&self) -> f32 {
        self.english as f32 / self.words.max(1) as f32
    }

    /// At least `share` of the words are English, at least two of them, and (almost) no
    /// word carries an accent or another script.
    fn is_english(&self, share: f32) -> bool {
        self.english >= 2 && self.share() >= share && self.other * 50 <= self.words
    }
}

/// The CJK rule: `share` is the weighted share of CJK letters in the sample (>= 0.5).
fn cjk_detection(c: &ScriptCounts, share: f32) -> Detection {
    let cjk = c.cjk() as f32;
    // Korean may carry Hanja, Japanese is kanji and kana; Chinese pages borrow a few
    // kana ("の" in shop names), so Japanese needs kana to be a real part of the text.
    let (lang, script, purity) = if c.hangul as f32 >= 0.3 * cjk && c.hangul > c.kana {
        ("ko", "Kore", (c.hangul as f32 / cjk / 0.6).min(1.0))
    } else if c.kana as f32 >= 0.1 * (c.han + c.kana) as f32 {
        (
            "ja",
            "Jpan",
            (c.kana as f32 / (c.han + c.kana) as f32 / 0.2).min(1.0),
        )
    } else {
        let kana = c.kana as f32 / (c.han + c.kana).max(1) as f32;
        ("zh", "Hani", 1.0 - kana * 5.0)
    };
    Detection {
        lang: Some(lang),
        script: Some(script),
        confidence: (share * purity).clamp(0.0, 1.0),
    }
}

/// Han ideographs (with CJK radicals and the iteration marks 々 and 〇).
fn is_han(ch: char) -> bool {
    matches!(ch,
        '\u{4E00}'..='\u{9FFF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}'
        | '\u{2E80}'..='\u{2FDF}'
        | '\u{3005}'
        | '\u{3007}'
    )
}

/// Hiragana and Katakana (with the phonetic extensions and half-width Katakana).
fn is_kana(ch: char) -> bool {
    matches!(ch,
        '\u{3040}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}' | '\u{31F0}'..='\u{31FF}' | '\u{FF66}'..='\u{FF9F}'
    )
}

/// Hangul syllables and jamo (with half-width jamo, not the rest of the full-width block).
fn is_hangul(ch: char) -> bool {
    matches!(ch,
        '\u{AC00}'..='\u{D7AF}'
        | '\u{1100}'..='\u{11FF}'
        | '\u{3130}'..='\u{318F}'
        | '\u{A960}'..='\u{A97F}'
        | '\u{D7B0}'..='\u{D7FF}'
        | '\u{FFA0}'..='\u{FFDC}'
    )
}

/// The text, or for a text longer than `max_bytes`, `slices` pieces of it spread evenly
/// (the first at the start, the last at the end), joined by newlines. Pieces start after
/// a whitespace where one is near, so that words are not cut into false trigrams.
pub fn sample(text: &str, max_bytes: usize, slices: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let slices = slices.max(1);
    let piece = (max_bytes / slices).max(1);
    let span = text.len() - piece;
    let mut out = String::with_capacity(max_bytes + slices);
    for i in 0..slices {
        let mut start = if slices == 1 {
            0
        } else {
            span * i / (slices - 1)
        };
        start = floor_char_boundary(text, start);
        if start > 0 {
            // Look ahead a little for a word start; CJK text has none, and then the
            // char boundary is good enough.
            let ahead = &text.as_bytes()[start..(start + 32).min(text.len())];
            if let Some(p) = ahead.iter().position(|b| b.is_ascii_whitespace()) {
                start += p + 1;
            }
        }
        let end = floor_char_boundary(text, (start + piece).min(text.len()));
        if start < end {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&text[start..end]);
        }
    }
    Cow::Owned(out)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// ISO 639-1 code of a whatlang language where one exists, else its ISO 639-3 code.
pub fn lang_code(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
        Cym => "cy",
    }
}

/// ISO 15924 code of a whatlang script.
pub fn script_code(script: whatlang::Script) -> &'static str {
    use whatlang::Script::*;
    match script {
        Arabic => "Arab",
        Armenian => "Armn",
        Bengali => "Beng",
        Cyrillic => "Cyrl",
        Devanagari => "Deva",
        Ethiopic => "Ethi",
        Georgian => "Geor",
        Greek => "Grek",
        Gujarati => "Gujr",
        Gurmukhi => "Guru",
        Hangul => "Kore",
        Hebrew => "Hebr",
        Hiragana | Katakana => "Jpan",
        Kannada => "Knda",
        Khmer => "Khmr",
        Latin => "Latn",
        Malayalam => "Mlym",
        Mandarin => "Hani",
        Myanmar => "Mymr",
        Oriya => "Orya",
        Sinhala => "Sinh",
        Tamil => "Taml",
        Telugu => "Telu",
        Thai => "Thai",
    }
}

/// The output code for a configured code: ISO 639-1 codes the detector can produce are
/// taken as they are, ISO 639-3 codes are mapped to the 639-1 code the detector writes.
/// `None` for a code the detector never produces.
pub fn canonical_code(code: &str) -> Option<&'static str> {
    let code = code.trim().to_ascii_lowercase();
    whatlang::Lang::all().iter().find_map(|&l| {
        let out = lang_code(l);
        (out == code || l.code() == code || (code == "zho" && out == "zh")).then_some(out)
    })
}

/// The built `langid` stage.
#[derive(Debug)]
pub struct LangId {
    detector: Detector,
    /// Wanted languages (output codes); empty keeps all.
    languages: Vec<&'static str>,
    min_confidence: f32,
    by_lang: Vec<(&'static str, f32)>,
}

fn config_error(message: String) -> StageError {
    StageError::Config {
        kind: KIND,
        message,
    }
}

fn check_confidence(name: &str, v: f32) -> Result<(), StageError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(config_error(format!("{name} = {v} is not in 0..=1")))
    }
}

fn known_code(field: &str, code: &str) -> Result<&'static str, StageError> {
    canonical_code(code).ok_or_else(|| {
        config_error(format!(
            "{field}: unknown language code `{code}` (the detector knows {})",
            whatlang::Lang::all()
                .iter()
                .map(|&l| lang_code(l))
                .collect::<Vec<_>>()
                .join(" ")
        ))
    })
}

/// Builds the stage.
pub fn build(config: &Config) -> Result<LangId, StageError> {
    check_confidence("min_confidence", config.min_confidence)?;
    let mut languages = Vec::new();
    for code in &config.languages {
        languages.push(known_code("languages", code)?);
    }
    let mut by_lang = Vec::new();
    for (code, &v) in &config.min_confidence_by_lang {
        check_confidence(&format!("min_confidence_by_lang.{code}"), v)?;
        by_lang.push((known_code("min_confidence_by_lang", code)?, v));
    }
    let prior_english = match config.prior.as_deref().map(str::trim) {
        None => false,
        Some("en" | "eng") => true,
        Some(other) => {
            return Err(config_error(format!(
                "prior = `{other}`: only `en` is supported (the one language with a lexicon)"
            )));
        }
    };
    if config.sample_slices == 0 {
        return Err(config_error("sample_slices must be at least 1".into()));
    }
    if config.sample_bytes < 64 {
        return Err(config_error(format!(
            "sample_bytes = {} is too small to decide on (at least 64)",
            config.sample_bytes
        )));
    }
    Ok(LangId {
        detector: Detector::new(
            config.sample_bytes,
            config.sample_slices,
            config.min_letters,
        )
        .with_prior_english(prior_english),
        languages,
        min_confidence: config.min_confidence,
        by_lang,
    })
}

impl LangId {
    /// The detector this stage uses.
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The verdict for a detection, without touching a document.
    pub fn judge(&self, d: &Detection) -> Verdict {
        self.failure(d)
            .map_or(Verdict::Keep, |f| Verdict::Drop(f.reason))
    }

    /// The rule a detection fails, with what it measured, if any.
    pub fn failure(&self, d: &Detection) -> Option<Failure> {
        let Some(lang) = d.lang else {
            return Some(Failure::new(UNKNOWN_LANGUAGE, None));
        };
        let min = self
            .by_lang
            .iter()
            .find(|(l, _)| *l == lang)
            .map_or(self.min_confidence, |&(_, v)| v);
        if let Some(m) = Measure::below("confidence", f64::from(d.confidence), f64::from(min)) {
            let m = m.named(format!("confidence in {}", d.code()));
            Some(m.fails(LOW_CONFIDENCE.code()))
        } else if !self.languages.is_empty() && !self.languages.contains(&lang) {
            let detail = format!("{} not in {}", d.code(), self.languages.join(", "));
            Some(Failure::new(UNWANTED_LANGUAGE, Some(detail)))
        } else {
            None
        }
    }
}

impl Stage for LangId {
    fn process(&self, doc: &mut Document, _cx: &mut StageCx) -> Result<Verdict, StageError> {
        let d = self.detector.detect(&doc.text);
        doc.meta.lang = Some(d.code().to_string());
        doc.meta.lang_score = Some(d.confidence);
        match d.script {
            Some(s) => {
                doc.meta.extra.insert("script".into(), s.into());
            }
            None => {
                doc.meta.extra.remove("script");
            }
        }
        Ok(self.failure(&d).map_or(Verdict::Keep, |f| f.drop(doc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(text: &str) -> Detection {
        Detector::default().detect(text)
    }

    #[test]
    fn cjk_scripts_decide() {
        let zh = detect("我们今天去公园散步，天气很好。");
        assert_eq!((zh.lang, zh.script), (Some("zh"), Some("Hani")));
        assert!(zh.confidence > 0.9, "{zh:?}");
        let ja = detect("今日は公園を散歩しました。天気がとても良かったです。");
        assert_eq!((ja.lang, ja.script), (Some("ja"), Some("Jpan")));
        let ko = detect("오늘은 공원에서 산책했습니다. 날씨가 아주 좋았어요.");
        assert_eq!((ko.lang, ko.script), (Some("ko"), Some("Kore")));
        // Two Han characters are enough: the script settles it.
        assert_eq!(detect("中文").lang, Some("zh"));
    }

    #[test]
    fn chinese_with_english_words_and_full_width_punctuation_stays_chinese() {
        // Latin letters outnumber Han characters here; by weight Chinese dominates.
        let text = "这款iPhone手机壳质量很好（Apple original case），推荐购买！";
        let d = detect(text);
        assert_eq!(d.lang, Some("zh"), "{d:?}");
        assert!(d.confidence < 1.0);
        // One "の" in a Chinese shop name does not make the text Japanese.
        let d = detect("我在东京の小店买了很多很好看的衣服和一些吃的东西，价格也不贵。");
        assert_eq!(d.lang, Some("zh"), "{d:?}");
    }

    #[test]
    fn alphabetic_languages_and_codes() {
        let en = detect("The quick brown fox jumps over the lazy dog and keeps running.");
        assert_eq!((en.lang, en.script), (Some("en"), Some("Latn")));
        let ru = detect("Мы сегодня гуляли в парке, и погода была очень хорошей.");
        assert_eq!((ru.lang, ru.script), (Some("ru"), Some("Cyrl")));
        let fa = detect("امروز در پارک قدم زدیم و هوا بسیار خوب بود و همه خوشحال بودند");
        assert_eq!(fa.lang, Some("fa"));
    }

    #[test]
    fn nothing_to_decide_on_is_undecided() {
        for text in ["", "   ", "12345 !!! ???", "🙂🙂", "ok"] {
            let d = detect(text);
            assert_eq!(d.lang, None, "{text:?}: {d:?}");
            assert_eq!(d.code(), "und");
        }
        // A conclusive script decides even a short text.
        assert_eq!(detect("Καλημέρα").lang, Some("el"));
    }

    #[test]
    fn long_documents_are_sampled_across_the_text() {
        let header = "Mitgliederbereich Anmeldung Impressum Datenschutz Kontakt. ".repeat(3);
        let body = "This article explains how the city council decided to build a new \
                    library near the river, and why the residents supported it. "
            .repeat(200);
        let text = format!("{header}{body}");
        let s = sample(&text, 2048, 4);
        assert!(s.len() <= 2048 + 3, "{}", s.len());
        assert_eq!(detect(&text).lang, Some("en"));
        // The head alone would say German.
        assert_eq!(detect(&header).lang, Some("de"));
    }

    #[test]
    fn sample_respects_char_boundaries() {
        let text = "中文字符".repeat(1000);
        for slices in 1..6 {
            let s = sample(&text, 100, slices);
            assert!(s.len() <= 100 + slices);
            assert!(s.chars().all(|c| c == '\n' || "中文字符".contains(c)));
        }
    }

    #[test]
    fn filter_reasons() {
        let stage = build(&Config {
            languages: vec!["en".into(), "zho".into()],
            min_confidence_by_lang: [("eng".to_string(), 0.9)].into(),
            ..Config::default()
        })
        .unwrap();
        let mut cx = StageCx::default();
        let mut run = |text: &str| {
            let mut doc = Document::new("d", "s", text);
            let v = stage.process(&mut doc, &mut cx).unwrap();
            (v, doc)
        };
        let (v, doc) = run("这是一个关于语言识别的测试文档，内容是中文。");
        assert_eq!(v, Verdict::Keep);
        assert_eq!(doc.meta.lang.as_deref(), Some("zh"));
        assert_eq!(doc.meta.extra["script"], "Hani");
        let (v, _) = run("Dies ist ein deutscher Satz über das Wetter in der Stadt.");
        assert_eq!(v, Verdict::Drop(UNWANTED_LANGUAGE));
        let (v, doc) = run("1234 5678");
        assert_eq!(v, Verdict::Drop(UNKNOWN_LANGUAGE));
        assert_eq!(doc.meta.lang.as_deref(), Some("und"));
        let judged = stage.judge(&Detection {
            lang: Some("en"),
            script: Some("Latn"),
            confidence: 0.8,
        });
        assert_eq!(judged, Verdict::Drop(LOW_CONFIDENCE));
    }

    #[test]
    fn bad_configs_are_named() {
        let err = build(&Config {
            languages: vec!["english".into()],
            ..Config::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("english"), "{err}");
        let err = build(&Config {
            min_confidence: 1.5,
            ..Config::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("min_confidence"), "{err}");
    }

    #[test]
    fn english_words_are_sorted_lowercase_and_unique() {
        for pair in ENGLISH_WORDS.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        assert!(
            ENGLISH_WORDS
                .iter()
                .all(|w| w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        assert_eq!(english_keys().len(), ENGLISH_WORDS.len());
        assert_eq!(word_key("The"), word_key("the"));
        assert_eq!(word_key("abcdefghijklmnopq"), None);
    }

    #[test]
    fn short_english_lines_and_tables() {
        assert_eq!(detect("Girl: I don't know what you mean.").lang, Some("en"));
        let table = "FIRST BANK SYSTEM INC 1ST QTR NET\n\nShr 95 cts vs 80 cts\n    Net 57.4 mln vs 46.6 mln\n    Assets 28.39 billion vs 25.87 billion";
        assert_eq!(detect(table).lang, Some("en"));
        // Dutch and German share words with English, not enough to pass for it.
        assert_eq!(
            detect("Het is een mooie dag en wij gaan met de kinderen naar het strand.").lang,
            Some("nl")
        );
        assert_eq!(
            detect("Das ist ein schöner Tag, und wir gehen mit den Kindern an den Strand.").lang,
            Some("de")
        );
    }

    #[test]
    fn lexicon_decides_short_english_lines_whatlang_is_unsure_about() {
        // Labelled pt, fr, da... before the lexicon (nltk webtext bug titles).
        for text in [
            "PHP pages sometimes downloaded instead of viewed",
            "Firebird loses proxy settings on restart",
            "Queer: You're so ahead of me.",
        ] {
            assert_eq!(detect(text).lang, Some("en"), "{text:?}");
        }
        // Accented words and lines of another language are not English.
        for (text, not) in [
            ("Il a dit qu'il viendrait demain matin", "en"),
            ("Het weer is vandaag erg mooi geweest", "en"),
            ("search bar does not take accent é", "en"),
        ] {
            assert_ne!(detect(text).lang, Some(not), "{text:?}");
        }
        assert!(is_contraction("don't") && is_contraction("I\u{2019}m"));
        assert!(!is_contraction("l'homme") && !is_contraction("'s"));
    }

    #[test]
    fn english_prior_is_opt_in_and_needs_an_english_word() {
        let with = Detector::default().with_prior_english(true);
        for text in ["Girl: Ew.", "Woman #2: No.", "Autocomplete Fun"] {
            assert_ne!(detect(text).lang, Some("en"), "{text:?} without the prior");
            let d = with.detect(text);
            assert_eq!(d.lang, Some("en"), "{text:?}");
            assert!((0.5..=1.0).contains(&d.confidence), "{d:?}");
        }
        // No English word, an accent or another script: the prior does not apply.
        for text in ["Qwpx blorf", "Déjà vu", "Здравствуй", "1234"] {
            assert_ne!(with.detect(text).lang, Some("en"), "{text:?}");
        }
        let stage = build(&Config {
            prior: Some("en".into()),
            ..Config::default()
        })
        .unwrap();
        assert!(stage.detector().prior_english);
        let err = build(&Config {
            prior: Some("fr".into()),
            ..Config::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("prior"), "{err}");
    }

    #[test]
    fn lexicon_is_sorted_lowercase_and_loaded() {
        let words: Vec<&str> = ENGLISH_LEXICON.lines().collect();
        assert!(words.len() > 20_000, "{}", words.len());
        for pair in words.windows(2) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
        assert!(
            words
                .iter()
                .all(|w| (3..=16).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()))
        );
        assert_eq!(lexicon_keys().len(), words.len());
        // Words of other Latin-script languages are left out by the recipe.
        for w in ["die", "und", "son", "man"] {
            assert!(!words.contains(&w), "{w}");
        }
    }

    #[test]
    fn every_whatlang_language_has_a_code_that_maps_back() {
        for &l in whatlang::Lang::all() {
            let code = lang_code(l);
            assert_eq!(canonical_code(code), Some(code));
            assert_eq!(canonical_code(l.code()), Some(code));
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_confidence_is_bounded(text in "\\PC{0,300}") {
            let d = Detector::new(64, 3, 8).detect(&text);
            proptest::prop_assert!((0.0..=1.0).contains(&d.confidence));
            if d.lang.is_none() {
                proptest::prop_assert_eq!(d.confidence, 0.0);
            }
        }
    }
}
