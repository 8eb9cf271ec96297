//! Tokenizer throughput: `corpus_models::tokenizer::Tokenizer::encode` over every document
//! of a folder of JSONL documents, on 1 thread and on N threads (each with its own clone
//! of the tokenizer, documents dealt round-robin), best of R runs. Texts are read into
//! memory first; only encoding is timed, as in the Python peer (benches/peers/tiktoken_peer.py).
//!
//! `cargo bench --bench tokenize -- --vocab cl100k|FILE --pattern qwen|cl100k
//!  [--data DIR] [--threads N] [--runs R]` (or `-- --dump-cl100k PATH` to write the
//! built-in cl100k_base in tiktoken's format for the peer); prints one `corpus threads=T tokens=...` line
//! per thread count. Run by benches/tokenize.sh.

use corpus_models::tokenizer::{Pattern, Tokenizer, VocabSource};
use std::path::PathBuf;
use std::time::Instant;

/// CPU time of this process so far (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field
    // of the line, the 12th after the closing parenthesis.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    f.iter().sum::<f64>() / 100.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut vocab, mut pattern) = ("cl100k".to_string(), "qwen".to_string());
    let mut data = PathBuf::from("../shared/data/corpus");
    let (mut threads, mut runs) = (2usize, 3usize);
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("a value after the flag");
        match a.as_str() {
            "--vocab" => vocab = val(),
            "--pattern" => pattern = val(),
            "--data" => data = val().into(),
            "--threads" => threads = val().parse().expect("a number"),
            "--runs" => runs = val().parse().expect("a number"),
            "--dump-cl100k" => {
                let path = val();
                std::fs::write(&path, corpus_models::tokenizer::cl100k_file_bytes())
                    .expect("writing the cl100k dump");
                return;
            }
            "--bench" => {}
            other => panic!("unknown flag {other}"),
        }
    }
    let tok = Tokenizer::load(&VocabSource::parse(&vocab), &Pattern::parse(&pattern), 205)
        .expect("the vocabulary loads");
    let files = corpus::commands::tokens::expand(&[data.display().to_string()]).expect("inputs");
    let mut texts = Vec::new();
    for f in &files {
        let mut src = corpus::source::open(f, &Default::default()).expect("open");
        while let Some(d) = src.next_doc().expect("a document") {
            texts.push(d.text);
        }
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut counts = Vec::new();
    for t in [1, threads] {
        let mut best = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut tokens = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let cpu = cpu_seconds();
            tokens = std::thread::scope(|s| {
                let handles: Vec<_> = (0..t)
                    .map(|k| {
                        let tok = tok.clone();
                        let texts = &texts;
                        s.spawn(move || {
                            let mut n = 0;
                            let mut ids = Vec::new();
                            for text in texts.iter().skip(k).step_by(t) {
                                ids.clear();
                                tok.encode_into(text, &mut ids).expect("encodes");
                                n += ids.len();
                            }
                            n
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .sum::<usize>()
            });
            best = best.min(start.elapsed().as_secs_f64());
            best_cpu = best_cpu.min(cpu_seconds() - cpu);
        }
        counts.push(tokens);
        println!(
            "corpus threads={t} docs={} tokens={tokens} bytes={bytes} seconds={best:.3} cpu_seconds={best_cpu:.2} tokens_per_s={:.0} mb_per_s={:.2}",
            texts.len(),
            tokens as f64 / best,
            bytes as f64 / 1e6 / best
        );
    }
    assert!(
        counts.windows(2).all(|w| w[0] == w[1]),
        "token counts differ"
    );
}
