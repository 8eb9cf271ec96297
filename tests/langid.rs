//! Language identification on real multilingual text (tests/data/langid, see its
//! SOURCE.md): the detector against plain whatlang on sentences of 75 languages, en/zh
//! documents, the `langid` stage built from a TOML config, and the `corpus langid` CLI.

use crate::common;
use common::testing::assert_mentions;

use corpus::stages::langid::{Detector, lang_code, whatlang};
use corpus::stages::{StageConfig, StageCx, Verdict, build_stage};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn lines(name: &str) -> Vec<Value> {
    std::fs::read_to_string(data(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn sentences_at_least_as_accurate_as_whatlang() {
    let sentences = lines("langid/sentences-sample.jsonl");
    assert_eq!(sentences.len(), 449);
    let known: Vec<&str> = whatlang::Lang::all()
        .iter()
        .map(|&l| lang_code(l))
        .collect();
    let detector = Detector::default();
    let (mut n, mut ours, mut theirs) = (0, 0, 0);
    let mut per_lang: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for s in &sentences {
        let lang = s["lang"].as_str().unwrap();
        let text = s["text"].as_str().unwrap();
        if !known.contains(&lang) {
            continue;
        }
        n += 1;
        let right = detector.detect(text).lang == Some(lang);
        ours += usize::from(right);
        theirs += usize::from(whatlang::detect(text).map(|i| lang_code(i.lang())) == Some(lang));
        let e = per_lang.entry(lang.to_string()).or_default();
        e.0 += 1;
        e.1 += usize::from(right);
    }
    assert!(n > 300, "{n}");
    assert!(ours >= theirs, "langid {ours}/{n} < whatlang {theirs}/{n}");
    assert!(ours * 100 >= n * 92, "langid {ours}/{n}");
    // Scripts that settle the language are never wrong.
    for lang in ["zh", "ja", "ko", "el", "th", "ka", "hy"] {
        let (count, right) = per_lang[lang];
        assert_eq!(right, count, "{lang}");
    }
}

#[test]
fn english_and_chinese_documents() {
    let detector = Detector::default();
    let mut docs = lines("langid/documents-sample.jsonl");
    docs.extend(lines("jsonl/movie_reviews-sample.jsonl"));
    assert_eq!(docs.len(), 39);
    for doc in &docs {
        let d = detector.detect(doc["text"].as_str().unwrap());
        assert_eq!(d.lang, doc["lang"].as_str(), "{}: {d:?}", doc["id"]);
        assert!(d.confidence >= 0.5, "{}: {d:?}", doc["id"]);
    }
}

#[test]
fn mixed_script_text_is_not_forced() {
    let detector = Detector::default();
    // A Chinese document quoting English keeps its label with a lower confidence.
    let zh = lines("langid/documents-sample.jsonl")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let mixed = format!("{zh} Read more at https://example.com/news/today and share it.");
    let d = detector.detect(&mixed);
    assert_eq!(d.lang, Some("zh"));
    assert!(d.confidence < detector.detect(&zh).confidence);
    // A long English page with a Chinese navigation header stays English.
    let en = lines("jsonl/movie_reviews-sample.jsonl")[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    let d = detector.detect(&format!("首页 新闻 体育 娱乐 登录 注册\n{en}"));
    assert_eq!(d.lang, Some("en"), "{d:?}");
    // Nothing but digits, symbols and emoji has no language.
    assert_eq!(detector.detect("2024-01-01 12:00 💯🔥 +++").lang, None);
}

#[test]
fn stage_from_config_filters_languages() {
    let config: StageConfig = toml::from_str(
        r#"
kind = "langid"
languages = ["en", "zh"]
min_confidence = 0.5
min_confidence_by_lang = { zh = 0.8 }
"#,
    )
    .unwrap();
    let stage = build_stage(&config).unwrap();
    let stage = stage.as_doc().unwrap();
    let mut cx = StageCx::default();
    let mut verdicts: BTreeMap<String, usize> = BTreeMap::new();
    for s in lines("langid/sentences-sample.jsonl") {
        let mut doc = corpus::stages::Document::new("d", "s", s["text"].as_str().unwrap());
        let v = stage.process(&mut doc, &mut cx).unwrap();
        let lang = doc.meta.lang.clone().unwrap();
        let key = match v {
            Verdict::Keep => {
                assert!(lang == "en" || lang == "zh", "{lang} kept");
                format!("keep {lang}")
            }
            Verdict::Drop(r) => r.code().to_string(),
        };
        *verdicts.entry(key).or_default() += 1;
        assert!(doc.meta.extra.contains_key("script") || lang == "und");
    }
    assert_eq!(verdicts["keep zh"], 6, "{verdicts:?}");
    assert!(verdicts["keep en"] >= 6, "{verdicts:?}");
    assert!(verdicts["unwanted_language"] > 300, "{verdicts:?}");
    let config: Result<StageConfig, _> = toml::from_str("kind = \"langid\"\nlanguage = [\"en\"]");
    assert!(config.unwrap_err().to_string().contains("language"));
}

#[test]
fn cli_plain_and_jsonl() {
    let run = |args: &[&str], input: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corpus"))
            .arg("langid")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let sentences = lines("langid/sentences-sample.jsonl");
    let plain: String = sentences
        .iter()
        .map(|s| format!("{}\n", s["text"].as_str().unwrap()))
        .collect();
    let out = run(&[], &plain);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let labels: Vec<&str> = stdout.lines().collect();
    assert_eq!(labels.len(), sentences.len());
    for (label, s) in labels.iter().zip(&sentences) {
        let (lang, conf) = label.split_once('\t').unwrap();
        let conf: f32 = conf.parse().unwrap();
        assert!((0.0..=1.0).contains(&conf));
        if s["lang"] == "zh" {
            assert_eq!(lang, "zh");
        }
    }

    // JSONL from a file, the same labels as plain text.
    let out = Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["langid", "--jsonl"])
        .arg(data("langid/sentences-sample.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for ((line, s), label) in stdout.lines().zip(&sentences).zip(&labels) {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["text"], s["text"]);
        assert_eq!(v["line"], s["line"]);
        assert_eq!(Some(v["lang"].as_str().unwrap()), label.split('\t').next());
    }

    // The English prior: short lines the default leaves undecided become en; any other
    // prior is a usage error.
    let out = run(&[], "Girl: Ew.\nWoman #2: No.\n");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "und\t0.000\nund\t0.000\n"
    );
    let out = run(&["--prior", "en"], "Girl: Ew.\nWoman #2: No.\nDéjà vu\n");
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let langs: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(langs[..2], ["en", "en"]);
    assert_ne!(langs[2], "en");
    let out = run(&["--prior", "fr"], "Bonjour\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_mentions(&stderr, &["--prior", "`fr`"]);

    // A bad line is reported and keeps its place; the exit status says so.
    let out = run(
        &["--jsonl"],
        "{\"text\": \"Hello there, how are you doing today?\"}\n[1]\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}
