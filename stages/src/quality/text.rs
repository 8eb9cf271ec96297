//! Text measures shared by the rules: words (CJK characters count as words), lines and
//! paragraphs.

use crate::normalize::is_cjk_token_char;

/// A text split into what the rules count.
#[derive(Debug)]
pub struct Analysis<'a> {
    /// The text.
    pub text: &'a str,
    /// Words: whitespace-separated runs, with every CJK character a word of its own.
    pub words: Vec<&'a str>,
    /// Non-empty lines, trimmed.
    pub lines: Vec<&'a str>,
    /// Paragraphs (separated by blank lines), trimmed, non-empty.
    pub paragraphs: Vec<&'a str>,
    /// Words that are single CJK characters.
    pub cjk_words: usize,
}

impl<'a> Analysis<'a> {
    /// Splits `text`.
    pub fn new(text: &'a str) -> Analysis<'a> {
        let mut words = Vec::new();
        let mut cjk_words = 0;
        for run in text.split_whitespace() {
            let mut start = 0;
            for (i, c) in run.char_indices() {
                if is_cjk_token_char(c) {
                    if start < i {
                        words.push(&run[start..i]);
                    }
                    words.push(&run[i..i + c.len_utf8()]);
                    cjk_words += 1;
                    start = i + c.len_utf8();
                }
            }
            if start < run.len() {
                words.push(&run[start..]);
            }
        }
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let paragraphs = split_paragraphs(text);
        Analysis {
            text,
            words,
            lines,
            paragraphs,
            cjk_words,
        }
    }

    /// True when most words are CJK characters (mean word length and similar
    /// space-language measures do not apply).
    pub fn is_cjk(&self) -> bool {
        self.cjk_words * 2 > self.words.len()
    }

    /// The share of the lines for which `matches` holds (0 for a text without lines):
    /// the form of most line rules' thresholds.
    pub fn line_share(&self, matches: impl Fn(&str) -> bool) -> f64 {
        let n = self.lines.iter().filter(|l| matches(l)).count();
        n as f64 / self.lines.len().max(1) as f64
    }
}

fn split_paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut last_end = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        if blank {
            if let Some(s) = start.take() {
                out.push(text[s..last_end].trim());
            }
        } else {
            if start.is_none() {
                start = Some(offset);
            }
            last_end = offset + line.len();
        }
        offset += line.len();
    }
    if let Some(s) = start {
        out.push(text[s..last_end].trim());
    }
    out
}

/// Does the line end with sentence-final punctuation (Latin or CJK)?
pub fn ends_with_terminal_punct(line: &str) -> bool {
    line.trim_end().ends_with([
        '.', '!', '?', '"', '\'', '。', '！', '？', '”', '」', '』', '…', '．',
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_lines_and_paragraphs() {
        let a = Analysis::new("Hello world\n\n中文很好 ok\n  \nlast line.\nmore");
        assert_eq!(
            a.words,
            [
                "Hello", "world", "中", "文", "很", "好", "ok", "last", "line.", "more"
            ]
        );
        assert_eq!(a.cjk_words, 4);
        assert!(!a.is_cjk());
        assert_eq!(
            a.lines,
            ["Hello world", "中文很好 ok", "last line.", "more"]
        );
        assert_eq!(
            a.paragraphs,
            ["Hello world", "中文很好 ok", "last line.\nmore"]
        );
        assert!(Analysis::new("这是一个中文句子。").is_cjk());
        assert!(ends_with_terminal_punct("好的。"));
        assert!(!ends_with_terminal_punct("Menu"));
    }
}
