//! `corpus langid`: the language of every input line.
//!
//! Plain text: each line is one item; the output has one line per input line,
//! `LANG<TAB>CONFIDENCE` (`und` and `0.000` when undecided). Invalid UTF-8 is read with
//! replacement characters.
//!
//! JSONL (`--jsonl`): each line is a JSON object whose text field (default `text`) is
//! detected; the output line is the object with `lang` and `lang_score` added (keys in
//! sorted order). A lone UTF-16 surrogate escape (`"\ud800"`), which serde_json rejects,
//! is read as U+FFFD. A line that is not an object or has no string text field still
//! gets one output line, `{"lang":"und","lang_score":0.0,"error":"..."}`, so output
//! lines stay aligned with input lines; such lines are counted in
//! [`LangidSummary::invalid`].
//!
//! Detection is [`corpus_stages::langid::Detector`], the same as the `langid` stage.

use corpus_stages::langid::{Detection, Detector};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::{BufRead, Write};

/// Options of `corpus langid`.
#[derive(Debug, Clone)]
pub struct LangidOptions {
    /// Read and write JSONL instead of plain lines.
    pub jsonl: bool,
    /// The text field of JSONL input.
    pub text_field: String,
    /// Below this confidence a line is reported as `und`.
    pub min_confidence: f32,
    /// The detector.
    pub detector: Detector,
}

impl Default for LangidOptions {
    fn default() -> Self {
        LangidOptions {
            jsonl: false,
            text_field: "text".into(),
            min_confidence: 0.0,
            detector: Detector::default(),
        }
    }
}

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LangidSummary {
    /// Input lines read (one output line each).
    pub lines: u64,
    /// Lines reported as `und`.
    pub undecided: u64,
    /// JSONL lines that were not an object with a string text field.
    pub invalid: u64,
    /// The first few invalid lines, as `line N: message`.
    pub invalid_examples: Vec<String>,
}

/// What stopped a run.
#[derive(Debug, thiserror::Error)]
pub enum LangidError {
    /// Reading the input failed.
    #[error("reading line {line}: {source}")]
    Read {
        /// 1-based number of the line being read.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the output failed (a closed pipe included).
    #[error("writing output: {0}")]
    Write(#[source] std::io::Error),
}

const MAX_EXAMPLES: usize = 5;

/// Reads `input` line by line and writes one result line per input line to `output`.
pub fn run(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    options: &LangidOptions,
) -> Result<LangidSummary, LangidError> {
    let mut summary = LangidSummary::default();
    let mut line = Vec::with_capacity(1 << 12);
    let mut out = Vec::with_capacity(1 << 12);
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|source| LangidError::Read {
                line: summary.lines + 1,
                source,
            })?;
        if n == 0 {
            break;
        }
        summary.lines += 1;
        while let [rest @ .., b'\n' | b'\r'] = line.as_slice() {
            let len = rest.len();
            line.truncate(len);
        }
        let text = String::from_utf8_lossy(&line);
        out.clear();
        if options.jsonl {
            jsonl_line(&text, options, &mut summary, &mut out);
        } else {
            let d = decide(&text, options);
            summary.undecided += u64::from(d.lang.is_none());
            // Writing into a Vec cannot fail.
            let _ = writeln!(out, "{}\t{:.3}", d.code(), d.confidence);
        }
        output.write_all(&out).map_err(LangidError::Write)?;
    }
    output.flush().map_err(LangidError::Write)?;
    Ok(summary)
}

fn decide(text: &str, options: &LangidOptions) -> Detection {
    let d = options.detector.detect(text);
    if d.lang.is_some() && d.confidence < options.min_confidence {
        Detection {
            lang: None,
            confidence: 0.0,
            ..d
        }
    } else {
        d
    }
}

fn jsonl_line(text: &str, options: &LangidOptions, summary: &mut LangidSummary, out: &mut Vec<u8>) {
    let parsed = match serde_json::from_str::<Map<String, Value>>(text) {
        // serde_json words the error differently by the surrogate's position, so any
        // failure is retried once when the line has a lone surrogate to replace.
        Err(e) => match replace_lone_surrogates(text) {
            Cow::Owned(fixed) => serde_json::from_str::<Map<String, Value>>(&fixed),
            Cow::Borrowed(_) => Err(e),
        },
        ok => ok,
    };
    let error = match parsed {
        Ok(mut object) => match object.get(&options.text_field) {
            Some(Value::String(t)) => {
                let d = decide(t, options);
                summary.undecided += u64::from(d.lang.is_none());
                object.insert("lang".into(), d.code().into());
                object.insert("lang_score".into(), rounded(d.confidence));
                // Serializing a Map of JSON values into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, &object);
                out.push(b'\n');
                return;
            }
            _ => format!("no string field `{}`", options.text_field),
        },
        Err(e) => format!("invalid JSON: {e}"),
    };
    summary.invalid += 1;
    summary.undecided += 1;
    let message = format!("line {}: {error}", summary.lines);
    let record = serde_json::json!({"lang": "und", "lang_score": 0.0, "error": message});
    let _ = serde_json::to_writer(&mut *out, &record);
    out.push(b'\n');
    if summary.invalid_examples.len() < MAX_EXAMPLES {
        summary.invalid_examples.push(message);
    }
}

/// A confidence as a JSON number with three decimals (f32 printed as f64 would show
/// digits that mean nothing).
fn rounded(confidence: f32) -> Value {
    let v = (f64::from(confidence) * 1000.0).round() / 1000.0;
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// Replaces the `\uXXXX` escapes of lone UTF-16 surrogates in JSON text by `\ufffd`,
/// leaving valid surrogate pairs and everything else as it is. JSON written by
/// JavaScript or Python from broken UTF-16 carries such escapes; serde_json rejects them.
pub fn replace_lone_surrogates(json: &str) -> Cow<'_, str> {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    }
    let b = json.as_bytes();
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(b, i) {
            Some(0xD800..=0xDBFF) => {
                if matches!(escape_at(b, i + 6), Some(0xDC00..=0xDFFF)) {
                    i += 12;
                } else {
                    out.push_str(&json[copied..i]);
                    out.push_str("\\ufffd");
                    i += 6;
                    copied = i;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.push_str(&json[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape, `\\` included, is two bytes or a complete `\uXXXX`;
            // skipping the escaped byte keeps `\\ud800` (a literal backslash) intact.
            _ => i += 2,
        }
    }
    if copied == 0 {
        return Cow::Borrowed(json);
    }
    out.push_str(&json[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_str(input: &str, options: &LangidOptions) -> (String, LangidSummary) {
        let mut out = Vec::new();
        let summary = run(&mut input.as_bytes(), &mut out, options).unwrap();
        (String::from_utf8(out).unwrap(), summary)
    }

    #[test]
    fn plain_lines_one_result_each() {
        let input = "The weather is lovely today and we are going for a walk.\r\n\n这是一个中文句子。\n12345";
        let (out, summary) = run_str(input, &LangidOptions::default());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("en\t"), "{out}");
        assert_eq!(lines[1], "und\t0.000");
        assert_eq!(lines[2], "zh\t1.000");
        assert_eq!(lines[3], "und\t0.000");
        assert_eq!(summary.lines, 4);
        assert_eq!(summary.undecided, 2);
    }

    #[test]
    fn min_confidence_turns_weak_answers_into_und() {
        let options = LangidOptions {
            min_confidence: 1.0,
            ..LangidOptions::default()
        };
        let (out, _) = run_str("Hello there my friend", &options);
        let (plain, _) = run_str("Hello there my friend", &LangidOptions::default());
        let conf: f32 = plain.trim().split('\t').nth(1).unwrap().parse().unwrap();
        if conf < 1.0 {
            assert_eq!(out.trim(), "und\t0.000");
        } else {
            assert_eq!(out, plain);
        }
    }

    #[test]
    fn jsonl_adds_fields_and_keeps_lines_aligned() {
        let options = LangidOptions {
            jsonl: true,
            ..LangidOptions::default()
        };
        let input = concat!(
            "{\"id\": 1, \"text\": \"Das Wetter ist heute sehr schön und wir gehen spazieren.\"}\n",
            "not json\n",
            "{\"id\": 3, \"body\": \"x\"}\n",
            "{\"id\": 4, \"text\": \"\\ud800 今天天气很好，我们去散步吧。\"}\n",
        );
        let (out, summary) = run_str(input, &options);
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["lang"], "de");
        assert_eq!(lines[0]["id"], 1);
        assert!(lines[0]["lang_score"].as_f64().unwrap() > 0.5);
        assert_eq!(lines[1]["lang"], "und");
        assert!(
            lines[1]["error"]
                .as_str()
                .unwrap()
                .starts_with("line 2: invalid JSON")
        );
        assert!(lines[2]["error"].as_str().unwrap().contains("text"));
        assert_eq!(lines[3]["lang"], "zh");
        assert!(lines[3]["text"].as_str().unwrap().starts_with('\u{FFFD}'));
        assert_eq!(summary.invalid, 2);
        assert_eq!(summary.invalid_examples.len(), 2);
    }

    #[test]
    fn lone_surrogates_are_replaced_pairs_and_escaped_backslashes_kept() {
        assert_eq!(replace_lone_surrogates(r#""a\ud800b""#), r#""a\ufffdb""#);
        assert_eq!(replace_lone_surrogates(r#""\udc00""#), r#""\ufffd""#);
        assert_eq!(
            replace_lone_surrogates(r#""\ud83d\ude00""#),
            r#""\ud83d\ude00""#
        );
        assert_eq!(replace_lone_surrogates(r#""\\ud800""#), r#""\\ud800""#);
        assert_eq!(
            replace_lone_surrogates(r#""\ud83d\ud83d\ude00\u0041""#),
            r#""\ufffd\ud83d\ude00\u0041""#
        );
        assert_eq!(
            replace_lone_surrogates(r#""trailing \ud8"#),
            r#""trailing \ud8"#
        );
    }
}
