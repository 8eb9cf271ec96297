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
use std::path::Path;

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
    /// Worker threads; 0 for one per core.
    pub threads: usize,
}

impl Default for LangidOptions {
    fn default() -> Self {
        LangidOptions {
            jsonl: false,
            text_field: "text".into(),
            min_confidence: 0.0,
            detector: Detector::default(),
            threads: 0,
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
    /// Bad flags (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// The input file could not be opened (exit code 2).
    #[error(transparent)]
    Open(#[from] crate::io::OpenError),
    /// Lines of JSONL input were not objects with a string text field (each still got
    /// an output line).
    #[error("{0}")]
    Invalid(String),
}

impl LangidError {
    /// True for errors of the command line rather than of a run.
    pub fn is_usage(&self) -> bool {
        matches!(self, LangidError::Usage(_) | LangidError::Open(_))
    }
}

/// The options of `corpus langid` from its flags, checked: the confidence in 0..=1,
/// the prior by the `langid` stage's own config validation (so `--prior` accepts what
/// `prior =` accepts).
pub fn options(
    jsonl: bool,
    text_field: String,
    min_confidence: f32,
    prior: Option<String>,
    threads: usize,
) -> Result<LangidOptions, LangidError> {
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(LangidError::Usage(format!(
            "--min-confidence {min_confidence} is not in 0..=1"
        )));
    }
    let stage = corpus_stages::langid::build(&corpus_stages::langid::Config {
        prior,
        ..Default::default()
    })
    .map_err(|e| LangidError::Usage(format!("--prior: {e}")))?;
    Ok(LangidOptions {
        jsonl,
        text_field,
        min_confidence,
        detector: stage.detector().clone(),
        threads,
    })
}

/// `corpus langid`: reads `file` (plain, gzip or zstd; standard input when None) and
/// writes to standard output. A closed pipe (`| head`) is how a reader says it has seen
/// enough: it ends the command without an error. Invalid JSONL lines are an error
/// after the whole input is written.
pub fn command(file: Option<&Path>, options: &LangidOptions) -> Result<(), LangidError> {
    let mut input: Box<dyn BufRead> = match file {
        Some(path) => crate::io::open_input(path)?,
        None => Box::new(std::io::stdin().lock()),
    };
    let mut output = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let summary = match run(&mut input, &mut output, options) {
        Ok(s) => s,
        Err(LangidError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if summary.invalid > 0 {
        return Err(LangidError::Invalid(format!(
            "{} of {} lines were not JSON objects with a string `{}` (written as und with an error field), e.g.:\n  {}",
            summary.invalid,
            summary.lines,
            options.text_field,
            summary.invalid_examples.join("\n  ")
        )));
    }
    Ok(())
}

const MAX_EXAMPLES: usize = 5;

/// Lines read before they are handed to the worker threads: large enough that the
/// threads have work, small enough that memory stays bounded (and output flows).
const BATCH_LINES: usize = 4096;
/// Bytes read at most per batch.
const BATCH_BYTES: usize = 8 << 20;

/// Reads `input` line by line and writes one result line per input line to `output`, in
/// input order.
pub fn run(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    options: &LangidOptions,
) -> Result<LangidSummary, LangidError> {
    let threads = crate::parallel::threads(options.threads);
    let mut summary = LangidSummary::default();
    // One batch: the lines back to back in `bytes`, line `i` at `ends[i - 1]..ends[i]`.
    let mut bytes = Vec::with_capacity(1 << 16);
    let mut ends: Vec<usize> = Vec::with_capacity(BATCH_LINES);
    loop {
        bytes.clear();
        ends.clear();
        let first_line = summary.lines;
        while ends.len() < BATCH_LINES && bytes.len() < BATCH_BYTES {
            let n = input
                .read_until(b'\n', &mut bytes)
                .map_err(|source| LangidError::Read {
                    line: first_line + ends.len() as u64 + 1,
                    source,
                })?;
            if n == 0 {
                break;
            }
            ends.push(bytes.len());
        }
        if ends.is_empty() {
            break;
        }
        let lines: Vec<&[u8]> = ends
            .iter()
            .enumerate()
            .map(|(i, &end)| &bytes[if i == 0 { 0 } else { ends[i - 1] }..end])
            .collect();
        // Small batches are not worth the threads.
        let threads = if lines.len() < 64 { 1 } else { threads };
        let mut outs = crate::parallel::map_chunks(&lines, threads, |offset, part| {
            process_lines(part, first_line + offset as u64, options)
        });
        for (out, part) in &mut outs {
            output.write_all(out).map_err(LangidError::Write)?;
            summary.lines += part.lines;
            summary.undecided += part.undecided;
            summary.invalid += part.invalid;
            let room = MAX_EXAMPLES.saturating_sub(summary.invalid_examples.len());
            summary
                .invalid_examples
                .extend(part.invalid_examples.drain(..).take(room));
        }
    }
    output.flush().map_err(LangidError::Write)?;
    Ok(summary)
}

/// Processes consecutive lines, the first of which is line `first + 1` of the input.
fn process_lines(lines: &[&[u8]], first: u64, options: &LangidOptions) -> (Vec<u8>, LangidSummary) {
    let mut summary = LangidSummary {
        lines: first,
        ..LangidSummary::default()
    };
    let mut out = Vec::with_capacity(lines.len() * 16);
    for line in lines {
        summary.lines += 1;
        let mut line: &[u8] = line;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        let text = String::from_utf8_lossy(line);
        if options.jsonl {
            jsonl_line(&text, options, &mut summary, &mut out);
        } else {
            let d = decide(&text, options);
            summary.undecided += u64::from(d.lang.is_none());
            // Writing into a Vec cannot fail.
            let _ = writeln!(out, "{}\t{:.3}", d.code(), d.confidence);
        }
    }
    summary.lines -= first;
    (out, summary)
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
        Err(e) => match crate::source::jsonl::replace_lone_surrogates(text) {
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
    fn threads_keep_input_order_and_line_numbers() {
        let mut input = String::new();
        for i in 0..10_000 {
            match i % 3 {
                0 => input.push_str("{\"text\": \"The weather is lovely today.\"}\n"),
                1 => input.push_str("{\"text\": \"今天天气很好。\"}\n"),
                _ => input.push_str("broken\n"),
            }
        }
        let one = LangidOptions {
            jsonl: true,
            threads: 1,
            ..LangidOptions::default()
        };
        let four = LangidOptions {
            threads: 4,
            ..one.clone()
        };
        let (a, sa) = run_str(&input, &one);
        let (b, sb) = run_str(&input, &four);
        assert_eq!(a, b);
        assert_eq!(sa, sb);
        assert_eq!(sa.lines, 10_000);
        assert_eq!(sa.invalid, 3333);
        assert_eq!(
            sa.invalid_examples[0],
            "line 3: invalid JSON: expected value at line 1 column 1"
        );
        // Line 9999 (0-based 9998) is the last broken one: its number crossed threads.
        let broken = b.lines().nth(9998).unwrap();
        assert!(broken.contains("\"line 9999: invalid JSON"), "{broken}");
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
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""a\ud800b""#),
            r#""a\ufffdb""#
        );
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""\udc00""#),
            r#""\ufffd""#
        );
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""\ud83d\ude00""#),
            r#""\ud83d\ude00""#
        );
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""\\ud800""#),
            r#""\\ud800""#
        );
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""\ud83d\ud83d\ude00\u0041""#),
            r#""\ufffd\ud83d\ude00\u0041""#
        );
        assert_eq!(
            crate::source::jsonl::replace_lone_surrogates(r#""trailing \ud8"#),
            r#""trailing \ud8"#
        );
    }
}
