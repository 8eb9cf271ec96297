//! Adversarial Unicode through the pipeline: lone surrogate escapes in JSONL input,
//! combining marks, full-width forms, RTL text and controls, emoji ZWJ sequences, CRLF,
//! through the `normalize` and `langid` stages of a real `corpus run`.

use crate::common;
use common::{gunzip, write_file};

use corpus::source::Source;
use corpus::source::jsonl::{JsonlOptions, JsonlSource};
use corpus::stages::normalize::{Config, Form, dedup_key, key_tokens, normalize};
use std::process::Command;

#[test]
fn jsonl_source_replaces_lone_surrogates_and_counts_the_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "surrogates.jsonl",
        concat!(
            "{\"id\": \"a\", \"text\": \"before\"}\n",
            "{\"id\": \"b\", \"text\": \"lone high \\ud800 here\"}\n",
            "{\"id\": \"c\", \"text\": \"lone low \\udc00\"}\n",
            "{\"id\": \"d\", \"text\": \"pair \\ud83d\\ude00 ok\"}\n",
            "{\"id\": \"e\", \"text\": \"high at the end \\ud83d\"}\n",
            "{\"id\": \"f\", \"text\": \"after\"}\n",
        ),
    );
    let mut src = JsonlSource::open(&path, &JsonlOptions::default(), "t").unwrap();
    let mut ids = Vec::new();
    let mut corrupt = 0;
    loop {
        match src.next_doc() {
            Ok(Some(doc)) => {
                ids.push(doc.id.clone());
                match doc.id.as_str() {
                    "b" => assert_eq!(doc.text, "lone high \u{fffd} here"),
                    "c" => assert_eq!(doc.text, "lone low \u{fffd}"),
                    "d" => assert_eq!(doc.text, "pair 😀 ok"),
                    "e" => assert_eq!(doc.text, "high at the end \u{fffd}"),
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(corpus::source::SourceError::Corrupt { .. }) => corrupt += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ids, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(corrupt, 0);
    assert_eq!(src.stats().repaired.get("lone_surrogate"), Some(&3));
}

#[test]
fn cli_replaces_lone_surrogates() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        "in.jsonl",
        "{\"text\": \"\\ud800今天天气很好，我们一起去公园散步吧。\\udfff\"}\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["langid", "--jsonl"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lang"], "zh");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with('\u{FFFD}') && text.ends_with('\u{FFFD}'),
        "{text}"
    );
}

/// Adversarial documents: (id, text, expected NFC text, expected language).
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "combining",
        "We had dinner at the cafe\u{301} near the station last night. The cre\u{300}me bru\u{302}le\u{301}e was\u{200B} perfect, and the service was friendly and fast.",
        "We had dinner at the café near the station last night. The crème brûlée was perfect, and the service was friendly and fast.",
        "en",
    ),
    (
        "zalgo",
        "H\u{336}\u{34f}\u{327}e\u{35c}\u{321}llo  world\u{301}\u{301}\u{301} this is what the text looks like when marks pile up",
        // Marks of different combining classes are put in canonical order (202 before 233).
        "H\u{336}\u{34f}\u{327}e\u{321}\u{35c}llo world\u{301}\u{301}\u{301} this is what the text looks like when marks pile up",
        "en",
    ),
    (
        "fullwidth",
        "ＡＢＣ公司发布了新产品，价格为１２３元。\r\n\r\n\r\n欢迎大家购买！\u{3000}\u{3000}",
        "ＡＢＣ公司发布了新产品，价格为１２３元。\n\n欢迎大家购买！",
        "zh",
    ),
    (
        "rtl",
        "\u{202B}مرحبا بكم في موقعنا، نحن سعداء بزيارتكم اليوم ونتمنى لكم وقتا ممتعا.\u{202C}\u{200F} يقدم الموقع أخبار المدينة والرياضة والثقافة، ويمكنكم التواصل معنا عبر البريد الإلكتروني في أي وقت.",
        "مرحبا بكم في موقعنا، نحن سعداء بزيارتكم اليوم ونتمنى لكم وقتا ممتعا. يقدم الموقع أخبار المدينة والرياضة والثقافة، ويمكنكم التواصل معنا عبر البريد الإلكتروني في أي وقت.",
        "ar",
    ),
    (
        "emoji",
        "\u{FEFF}Our family 👨\u{200D}👩\u{200D}👧\u{200D}👦 went to the beach and the kids loved it \u{200D}\t\u{1F3C4}\u{1F3FD}\u{200D}\u{2640}\u{FE0F}",
        "Our family 👨\u{200D}👩\u{200D}👧\u{200D}👦 went to the beach and the kids loved it \u{1F3C4}\u{1F3FD}\u{200D}\u{2640}\u{FE0F}",
        "en",
    ),
];

#[test]
fn adversarial_text_normalizes_to_a_fixed_point() {
    let nfc = Config::default();
    let nfkc = Config {
        form: Form::Nfkc,
        ..Config::default()
    };
    for (id, text, expected, _) in CASES {
        let once = normalize(text, &nfc);
        assert_eq!(&once, expected, "{id}");
        assert_eq!(normalize(&once, &nfc), once, "{id}");
        let k = normalize(text, &nfkc);
        assert_eq!(normalize(&k, &nfkc), k, "{id}");
        let mut key = String::new();
        dedup_key(text, &mut key);
        let mut again = String::new();
        dedup_key(&key, &mut again);
        assert_eq!(again, key, "{id}");
    }
    // NFKC folds full-width forms; the dedup key sees through width, case and punctuation.
    assert_eq!(
        normalize(CASES[2].1, &nfkc),
        "ABC公司发布了新产品,价格为123元。\n\n欢迎大家购买!"
    );
    let mut a = String::new();
    let mut b = String::new();
    dedup_key(CASES[2].1, &mut a);
    dedup_key("abc公司发布了新产品 价格为999元 欢迎大家购买", &mut b);
    assert_eq!(a, b);
    assert_eq!(
        key_tokens(&a).take(3).collect::<Vec<_>>(),
        ["abc", "公", "司"]
    );
}

#[test]
fn pipeline_run_normalizes_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let mut lines = String::new();
    for (id, text, _, _) in CASES {
        lines.push_str(&serde_json::json!({"id": id, "text": text}).to_string());
        lines.push('\n');
    }
    lines.push_str("{\"id\": \"invisible\", \"text\": \"\\u200b\\u200e \\r\\n\\ufeff\"}\n");
    lines.push_str("{\"id\": \"surrogate\", \"text\": \"\\ud800\"}\n");
    std::fs::write(input.join("adversarial.jsonl"), lines).unwrap();
    let config = write_file(
        dir.path(),
        "p.toml",
        r#"
[input]
paths = ["in"]

[output]
dir = "out"
dropped = true

[[stages]]
kind = "normalize"

[[stages]]
kind = "langid"
"#,
    );
    let out = Command::new(env!("CARGO_BIN_EXE_corpus"))
        .args(["run", config.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = gunzip(&dir.path().join("out/docs/part-00000.jsonl.gz"));
    let kept: Vec<serde_json::Value> = kept
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept.len(), CASES.len());
    for (doc, (id, _, expected, lang)) in kept.iter().zip(CASES) {
        assert_eq!(doc["id"], *id);
        assert_eq!(doc["text"], *expected, "{id}");
        assert_eq!(doc["meta"]["lang"], *lang, "{id}");
        assert!(doc["meta"]["lang_score"].as_f64().unwrap() >= 0.5, "{id}");
    }
    let dropped = gunzip(&dir.path().join("out/dropped/part-00000.jsonl.gz"));
    let dropped: Vec<serde_json::Value> = dropped
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dropped.len(), 2);
    assert_eq!(dropped[0]["id"], "invisible");
    assert_eq!(dropped[0]["drop"]["stage"], "normalize");
    assert_eq!(dropped[0]["drop"]["reason"], "empty");
    // The lone surrogate became U+FFFD: read, not lost, and no language in it.
    assert_eq!(dropped[1]["id"], "surrogate");
    assert_eq!(dropped[1]["text"], "\u{fffd}");
    assert_eq!(dropped[1]["drop"]["stage"], "langid");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["input"]["repaired"]["lone_surrogate"], 1, "{stats}");
    assert_eq!(
        stats["input"]["corrupt"].as_object().map(|m| m.len()),
        Some(0),
        "{stats}"
    );
}
