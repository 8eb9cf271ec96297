//! HTML extraction end to end: real annotated pages, charset cases, hostile inputs, the
//! `corpus extract` command and the stage inside `corpus run`.

use crate::common;
use common::{testing::assert_mentions, write_file};

use corpus::stages::extract::{self, Extract};
use corpus::stages::{Document, Stage, StageCx, Verdict};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

const HTML_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/html");
const WARC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/warc");

fn corpus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corpus"))
}

fn stage() -> Extract {
    extract::build(&extract::Config::default()).unwrap()
}

fn norm(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn run_stage(raw: Vec<u8>, charset: Option<&str>, url: Option<&str>) -> (Verdict, Document) {
    let mut doc = Document::new("d", "web", "");
    doc.raw = Some(raw);
    doc.meta.charset = charset.map(str::to_string);
    doc.meta.url = url.map(str::to_string);
    let verdict = stage().process(&mut doc, &mut StageCx::default()).unwrap();
    (verdict, doc)
}

fn annotations() -> Vec<serde_json::Value> {
    std::fs::read_to_string(Path::new(HTML_DIR).join("annotations.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn annotated_pages_keep_main_text_and_drop_boilerplate() {
    let pages = annotations();
    assert_eq!(pages.len(), 7);
    for page in pages {
        let id = page["id"].as_str().unwrap();
        let raw = gunzip(&Path::new(HTML_DIR).join(format!("{id}.html.gz")));
        let (verdict, doc) = run_stage(raw, None, page["url"].as_str());
        assert_eq!(verdict, Verdict::Keep, "{id}");
        let text = norm(&doc.text);
        for s in page["with"].as_array().unwrap() {
            let s = norm(s.as_str().unwrap());
            assert!(text.contains(&s), "{id}: missing {s:?} in\n{}", doc.text);
        }
        for s in page["without"].as_array().unwrap() {
            let s = norm(s.as_str().unwrap());
            assert!(
                !text.contains(&s),
                "{id}: boilerplate {s:?} in\n{}",
                doc.text
            );
        }
        assert!(doc.meta.title.is_some(), "{id}: no title");
    }
}

const ZH: &str = "北京是中华人民共和国的首都，也是全国的政治中心、文化中心和国际交往中心。这座城市有三千多年的建城史和八百多年的建都史，名胜古迹众多。";
const JA: &str = "東京は日本の首都であり、政治や経済の中心地です。多くの人々が暮らし、毎日たくさんの電車が走っています。観光客にも人気があります。";
const TW: &str = "臺北是臺灣的政治、經濟與文化中心，擁有豐富的歷史古蹟與美食，每年吸引許多來自世界各地的旅客前來參觀。";
const FR: &str = "Le café crème est servi à la française : déjà très apprécié, il accompagne un croissant doré et une brioche légère, préparés à l'aube.";

fn article(title: &str, meta: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head>{meta}<title>{title}</title></head><body>\
         <nav><a href=/>Home</a> <a href=/a>News</a></nav>\
         <article><h1>{title}</h1><p>{body}</p><p>{body}</p></article>\
         <footer>Copyright 2024</footer></body></html>"
    )
}

/// (encoding, body, meta declaration, HTTP charset, URL, what it tests)
type CharsetCase = (
    &'static encoding_rs::Encoding,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

#[test]
fn charsets_decode_right() {
    let cases: [CharsetCase; 7] = [
        (
            encoding_rs::GBK,
            ZH,
            "<meta charset=gbk>",
            None,
            None,
            "declared GBK",
        ),
        (
            encoding_rs::GBK,
            ZH,
            "",
            None,
            Some("http://news.example.cn/a"),
            "undeclared GBK",
        ),
        (
            encoding_rs::GBK,
            ZH,
            "<meta charset=gb2312>",
            Some("utf-8"),
            None,
            "HTTP says UTF-8, bytes are GBK",
        ),
        (
            encoding_rs::SHIFT_JIS,
            JA,
            "",
            None,
            Some("http://example.jp/"),
            "undeclared Shift_JIS",
        ),
        (
            encoding_rs::BIG5,
            TW,
            "<meta http-equiv=Content-Type content='text/html; charset=big5'>",
            None,
            None,
            "http-equiv Big5",
        ),
        (
            encoding_rs::WINDOWS_1252,
            FR,
            "",
            None,
            Some("http://example.fr/"),
            "undeclared windows-1252",
        ),
        (
            encoding_rs::UTF_8,
            ZH,
            "<meta charset=iso-8859-1>",
            Some("iso-8859-1"),
            None,
            "UTF-8 labelled Latin-1",
        ),
    ];
    for (enc, body, meta, http, url, what) in cases {
        let html = article("Title", meta, body);
        let (bytes, _, unmappable) = enc.encode(&html);
        assert!(!unmappable, "{what}: test text not encodable");
        let (verdict, doc) = run_stage(bytes.into_owned(), http, url);
        assert_eq!(verdict, Verdict::Keep, "{what}");
        assert!(doc.text.contains(body), "{what}: got {:?}", doc.text);
        assert!(!doc.text.contains("Copyright"), "{what}");
    }
}

#[test]
fn cjk_page_keeps_text_without_spaces() {
    let html = format!(
        "<html><body><div class=sidebar><ul><li><a href=/1>热门文章一</a></li>\
         <li><a href=/2>热门文章二</a></li></ul></div><div id=content>\
         <p>{ZH}</p><p>上海是中国的<b>经济</b>中心，<a href=/sh>上海</a>港是世界上最繁忙的港口之一，每天都有大量的货物进出。</p>\
         <ul><li>故宫</li><li>长城</li></ul></div>\
         <div class=share>分享到微博</div></body></html>"
    );
    let (verdict, doc) = run_stage(html.into_bytes(), None, None);
    assert_eq!(verdict, Verdict::Keep);
    assert!(doc.text.contains(ZH));
    assert!(
        doc.text
            .contains("上海是中国的经济中心，上海港是世界上最繁忙的港口之一")
    );
    assert!(doc.text.contains("故宫\n长城"), "{}", doc.text);
    for junk in ["热门文章", "分享到"] {
        assert!(!doc.text.contains(junk), "{junk} in {}", doc.text);
    }
}

#[test]
fn malformed_html_still_yields_text() {
    let html = "<html><body><div><p>Unclosed paragraph with enough words to count as the text \
                of the page, and more words<p>Another <b><i>misnested</b></i> paragraph, also \
                long enough to be kept as content of the page.<table><tr><td>cell<div></span>\
                </body></html></html><p>after the end";
    let (verdict, doc) = run_stage(html.as_bytes().to_vec(), None, None);
    assert_eq!(verdict, Verdict::Keep);
    assert!(doc.text.contains("Unclosed paragraph with enough words"));
    assert!(
        doc.text.contains("Another misnested paragraph"),
        "{}",
        doc.text
    );
}

#[test]
fn hostile_inputs_are_bounded() {
    // Deep nesting, far past `max_depth`: flattened, text kept.
    let text = "<p>Deeply nested text that should still come out of the page, with words.</p>";
    let deep = format!("{}{text}", "<div>".repeat(5_000));
    let (verdict, doc) = run_stage(deep.into_bytes(), None, None);
    assert_eq!(verdict, Verdict::Keep);
    assert!(doc.text.contains("Deeply nested text"));

    // Pathological nesting (1.5 MB of `<div>`, and spans closed at the end): the
    // parser is never given more than `PARSE_DEPTH` open elements, so its scope checks
    // stay cheap and the page is parsed with its text (0.01 s in a release build:
    // benches/README.md). The time budget here is a minute, not the default 5 s: this
    // test checks the result, not the speed, and an unoptimized build on a loaded
    // machine must not time out.
    let patient = extract::build(&extract::Config {
        timeout_ms: 60_000,
        ..Default::default()
    })
    .unwrap();
    for (open, close) in [("<div>", ""), ("<span><b>", "</b></span>")] {
        let mut doc = Document::new("d", "web", "");
        doc.raw =
            Some(format!("{}{text}{}", open.repeat(150_000), close.repeat(150_000)).into_bytes());
        let verdict = patient.process(&mut doc, &mut StageCx::default()).unwrap();
        assert_eq!(verdict, Verdict::Keep);
        assert!(doc.text.contains("Deeply nested text"));
    }

    // A large page under the byte limit: 4 MB of paragraphs.
    let para = "<p>A paragraph of ordinary prose, repeated many times to make a large page.</p>";
    let big = format!(
        "<html><body><article>{}</article></body></html>",
        para.repeat(50_000)
    );
    let mut doc = Document::new("d", "web", "");
    doc.raw = Some(big.into_bytes());
    let verdict = patient.process(&mut doc, &mut StageCx::default()).unwrap();
    assert_eq!(verdict, Verdict::Keep);
    assert!(doc.text.len() > 3_000_000);

    // Over the byte limit: dropped without parsing.
    let huge = vec![b'a'; 10_000_001];
    let (verdict, doc) = run_stage(huge, None, None);
    assert_eq!(verdict, Verdict::Drop(extract::TOO_LARGE));
    assert!(doc.raw.is_none() && doc.text.is_empty());

    // Binary junk served as HTML.
    let junk: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (verdict, _) = run_stage(junk, None, None);
    assert_eq!(verdict, Verdict::Drop(extract::BINARY));

    // A parse time budget of zero drops a page that needs more than one chunk.
    let slow = extract::build(&extract::Config {
        timeout_ms: 0,
        ..Default::default()
    })
    .unwrap();
    let mut doc = Document::new("t", "web", "");
    doc.raw = Some(para.repeat(5_000).into_bytes());
    let verdict = slow.process(&mut doc, &mut StageCx::default()).unwrap();
    assert_eq!(verdict, Verdict::Drop(extract::TIMEOUT));

    // Too many nodes.
    let few = extract::build(&extract::Config {
        max_nodes: 1000,
        ..Default::default()
    })
    .unwrap();
    let mut doc = Document::new("n", "web", "");
    doc.raw = Some("<span>x</span>".repeat(2000).into_bytes());
    let verdict = few.process(&mut doc, &mut StageCx::default()).unwrap();
    assert_eq!(verdict, Verdict::Drop(extract::TOO_MANY_NODES));
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn cli_extracts_html_files_and_warc_in_input_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let warc =
        Path::new(WARC_DIR).join("CC-MAIN-20200808165417-20200808195417-00395.sample.warc.gz");
    let page = Path::new(HTML_DIR).join("3c7cf7509d38b392.html.gz");
    let plain = write_file(dir.path(), "Plain Page.html", article("Plain", "", FR));
    let status = corpus()
        .args(["extract", "-t", "2", "-q", "-o"])
        .arg(&out)
        .arg(&page)
        .arg(&warc)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let lines = read_jsonl(&out);
    assert_eq!(lines[0]["id"], "3c7cf7509d38b392");
    assert_eq!(
        lines[0]["title"],
        "Copy & paste from tmux to system clipboard"
    );
    assert!(
        lines[0]["text"]
            .as_str()
            .unwrap()
            .contains("As usual, StackOverflow")
    );
    let last = lines.last().unwrap();
    assert_eq!(last["id"], "Plain Page");
    assert!(last["text"].as_str().unwrap().contains(FR));
    let warc_lines = &lines[1..lines.len() - 1];
    assert!(warc_lines.len() >= 10, "{} WARC pages", warc_lines.len());
    for l in warc_lines {
        assert!(l["id"].as_str().unwrap().starts_with("urn:uuid:"), "{l}");
        assert!(l["url"].as_str().unwrap().starts_with("http"));
        assert!(!l["text"].as_str().unwrap().is_empty());
    }
    // Same output with one thread: order does not depend on scheduling.
    let out1 = dir.path().join("out1.jsonl");
    let status = corpus()
        .args(["extract", "-t", "1", "-q", "-o"])
        .arg(&out1)
        .arg(&page)
        .arg(&warc)
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&out1).unwrap());
}

#[test]
fn cli_reports_bad_inputs_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // A gzip header followed by garbage.
    let bad = write_file(
        dir.path(),
        "broken.html.gz",
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xfe, 0x00, 0x13],
    );
    let missing = dir.path().join("missing.html");
    let good = Path::new(HTML_DIR).join("e3ace56ad8fd3032.html.gz");
    let out = dir.path().join("out.jsonl");
    let result = corpus()
        .args(["extract", "-o"])
        .arg(&out)
        .arg(&bad)
        .arg(&missing)
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("broken.html.gz"), "{stderr}");
    assert!(stderr.contains("missing.html"), "{stderr}");
    let lines = read_jsonl(&out);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["id"], "e3ace56ad8fd3032");

    let usage = corpus()
        .args(["extract", "-o"])
        .arg(dir.path().join("x.jsonl"))
        .arg(dir.path().join("notes.txt"))
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let no_output = corpus().args(["extract", "a.html"]).output().unwrap();
    assert_eq!(no_output.status.code(), Some(2));
}

#[test]
fn cli_resumes_after_a_failed_input() {
    let dir = tempfile::tempdir().unwrap();
    let good = Path::new(HTML_DIR).join("e3ace56ad8fd3032.html.gz");
    let bad = write_file(
        dir.path(),
        "b.html.gz",
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff],
    );
    let out = dir.path().join("out.jsonl");
    let work = dir.path().join("out.jsonl.work");
    let extract = || {
        corpus()
            .args(["extract", "-t", "1", "-o"])
            .arg(&out)
            .arg(&good)
            .arg(&bad)
            .output()
            .unwrap()
    };
    let first = extract();
    assert_eq!(first.status.code(), Some(1));
    // The run is kept for the rerun: the good page's shard is complete.
    assert!(
        work.join("done").read_dir().unwrap().count() == 1,
        "{work:?}"
    );
    assert_eq!(read_jsonl(&out).len(), 1);
    std::fs::write(&bad, article("Second", "", FR)).unwrap();
    let second = extract();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("1 input file(s) done by an earlier run"),
        "{stderr}"
    );
    let lines = read_jsonl(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "e3ace56ad8fd3032");
    assert_eq!(lines[1]["id"], "b");
    assert!(
        !work.exists(),
        "the run directory is removed once the output is written"
    );
}

#[test]
fn html_files_are_an_input_format_of_corpus_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pages")).unwrap();
    write_file(dir.path(), "pages/one.html", article("One", "", FR));
    let config = write_file(
        dir.path(),
        "pipeline.toml",
        "[input]\npaths = [\"pages\"]\n\n[output]\ndir = \"out\"\n\n[[stages]]\nkind = \"extract\"\n",
    );
    let status = corpus().args(["run", "-q"]).arg(&config).status().unwrap();
    assert!(status.success());
    let text = String::from_utf8(gunzip(&dir.path().join("out/docs/part-00000.jsonl.gz"))).unwrap();
    let doc: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(doc["id"], "one");
    assert_eq!(doc["source"], "html");
    assert!(doc["text"].as_str().unwrap().contains(FR), "{doc}");
}

#[test]
fn extract_stage_runs_inside_corpus_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_file(
        dir.path(),
        "pipeline.toml",
        format!(
            "[input]\npaths = [{:?}]\n\n[output]\ndir = \"out\"\n\n\
             [[stages]]\nkind = \"extract\"\n\n[[stages]]\nkind = \"length\"\nmin_chars = 1\n",
            Path::new(WARC_DIR)
                .join("cc-main-2024-22-whirlwind.warc.gz")
                .display()
                .to_string()
        ),
    );
    let status = corpus().args(["run", "-q"]).arg(&config).status().unwrap();
    assert!(status.success());
    let out: Vec<PathBuf> = std::fs::read_dir(dir.path().join("out/docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        .collect();
    assert_eq!(out.len(), 1, "{out:?}");
    let text = String::from_utf8(gunzip(&out[0])).unwrap();
    let doc: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    // The Aragonese Wikipedia page of the whirlwind sample.
    assert!(
        doc["meta"]["title"].as_str().unwrap().contains("Escopete"),
        "{doc}"
    );
    let body = doc["text"].as_str().unwrap();
    // A paragraph of the article body, past the maintenance notice and the infobox.
    assert!(
        body.contains("Relaciones Topográficas de los pueblos de Espanya"),
        "{body}"
    );
    assert!(!body.contains("<div"), "{body}");
}

/// Main text of an HTML page written here.
fn text_of(html: &str) -> String {
    let (verdict, doc) = run_stage(html.as_bytes().to_vec(), None, None);
    assert_eq!(verdict, Verdict::Keep, "{html}");
    doc.text
}

const EN: &str = "The river rose by two metres overnight, and the town council opened the old school as a shelter for the families whose houses stood closest to the bank.";
const EN2: &str = "By noon the water had started to fall again, and volunteers were clearing mud from the streets while engineers checked the bridge for damage.";

#[test]
fn cookie_dialog_is_dropped_however_long_its_text() {
    let notice = "This website uses cookies to give you the most relevant experience by remembering your preferences and repeat visits. Some of them are necessary for the site to work.";
    let html = format!(
        "<html><body><article><h1>Flood</h1><p>{EN}</p></article>\
         <div id=cookie-settings class=privacy-modal><h2>Privacy overview</h2>\
         <p>{notice}</p><p>{notice} Others help us understand how visitors use it.</p>\
         <p>{notice} You can switch them off in the settings.</p></div></body></html>"
    );
    let text = text_of(&html);
    assert!(text.contains(EN), "{text}");
    assert!(!text.contains("This website uses cookies"), "{text}");
    assert!(!text.contains("Privacy overview"), "{text}");
    // A wrapper named after a dialog or a consent layer that holds the article is
    // the page, not an overlay.
    let html = format!(
        "<html><body><div class='consent-layer-open main-canvas'><main><p>{EN}</p>\
         <p>{EN2}</p></main></div></body></html>"
    );
    let text = text_of(&html);
    assert_mentions(&text, &[EN, EN2]);
}

#[test]
fn image_legends_and_photo_credits_are_dropped() {
    let html = format!(
        "<html><body><article><h1>Flood</h1><p>{EN}</p>\
         <div class=media><img src=a.jpg><div class=legend>Volunteers carry sandbags to the \
         old school on Tuesday evening, after the council opened it as a shelter.</div>\
         <span class=image-credits>Photo: Jane Doe / Example Agency</span></div>\
         <p>{EN2}</p></article></body></html>"
    );
    let text = text_of(&html);
    assert_mentions(&text, &[EN, EN2]);
    assert!(!text.contains("sandbags"), "{text}");
    assert!(!text.contains("Jane Doe"), "{text}");
}

#[test]
fn heading_that_ends_the_text_is_dropped() {
    let html = format!(
        "<html><body><article><h1>Flood</h1><p>{EN}</p><p>{EN2}</p>\
         <h3>More stories from the valley</h3>\
         <div><a href=/a><img src=a.jpg></a><a href=/b><img src=b.jpg></a></div>\
         </article></body></html>"
    );
    let text = text_of(&html);
    assert!(text.starts_with("Flood\n"), "{text}");
    assert!(text.ends_with(EN2), "{text}");
    // A page that is only a heading keeps it.
    let text = text_of("<html><body><h1>Closed for the holidays</h1></body></html>");
    assert_eq!(text, "Closed for the holidays");
}

#[test]
fn donation_disclaimer_and_affiliate_boxes_are_dropped() {
    let html = format!(
        "<html><body><article><h1>Flood</h1>\
         <p class=affiliate-notice>This article contains affiliate links: we earn a small \
         commission when you buy through them.</p><p>{EN}</p><p>{EN2}</p>\
         <div class=donation-box><p>Independent local news needs your support: give what you \
         can today and help us keep reporting.</p></div>\
         <p class=legal-disclaimer>The information in this article is provided without any \
         warranty and does not replace professional advice.</p></article></body></html>"
    );
    let text = text_of(&html);
    assert_mentions(&text, &[EN, EN2]);
    for junk in ["affiliate links", "your support", "without any warranty"] {
        assert!(!text.contains(junk), "{junk} in {text}");
    }
}
