//! Object storage against real servers on loopback: a plain HTTP server, one that drops
//! every connection part-way through the body, one that answers 503 a few times (all
//! three in tests/object_store/http_server.rs), and an S3-compatible server (`moto` in server
//! mode, from PyPI). Every run over remote input must give the same bytes as the run
//! over the local files.
//!
//! moto: `python3 -m pip install "moto[server]==5.2.1"` (.ci/run does). Without it the S3
//! tests fail when `CI` is set, and are skipped with a message otherwise.

use crate::common;
#[path = "object_store/http_server.rs"]
mod http_server;
use common::testing::assert_mentions;

use http_server::{Behavior, HttpServer};

use object_store::ObjectStoreExt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

const WARC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/warc");

/// The sample WARC/WET files, by name.
fn samples() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(WARC_DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".gz"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(files.len() >= 3, "sample WARCs missing from {WARC_DIR}");
    files
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

/// A `warc.paths.gz` listing: one relative key per line, as Common Crawl publishes.
fn listing(prefix: &str, names: &[String]) -> Vec<u8> {
    let lines: Vec<String> = names.iter().map(|n| format!("{prefix}{n}\n")).collect();
    gzip(&lines.concat())
}

/// A pipeline config over `input` (TOML lines for `[input]`) writing to `out`.
fn config(dir: &Path, name: &str, input: &str, out: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            r#"
[input]
{input}

[output]
dir = "{out}"
dropped = true

[executor]
batch_docs = 16

[[stages]]
kind = "extract"

[[stages]]
kind = "langid"
languages = []

[[stages]]
kind = "quality"
"#
        ),
    )
    .unwrap();
    path
}

fn corpus(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_corpus"));
    cmd.args(args);
    // (`corpus report` prints nothing but errors and has no --quiet.)
    if !args.contains(&"--resume") && args.first() != Some(&"report") {
        cmd.arg("--quiet");
    }
    cmd
        // Fast retries in tests: the servers misbehave on purpose.
        .env("CORPUS_REMOTE_BACKOFF_MS", "10")
        .env("CORPUS_REMOTE_RETRIES", "8")
        // Never an AWS credential or endpoint of the machine running the tests.
        .env("HOME", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "corpus failed: {stderr}");
    stderr
}

/// The document files of an output directory: name -> bytes.
fn outputs(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for sub in ["docs", "dropped"] {
        let mut names: Vec<PathBuf> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        names.sort();
        for p in names {
            let name = format!("{sub}/{}", p.file_name().unwrap().to_string_lossy());
            files.push((name, std::fs::read(&p).unwrap()));
        }
    }
    files
}

/// The input counters of a run's merged statistics.
fn input_stats(root: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("stats.json")).unwrap()).unwrap();
    v["input"].clone()
}

/// Runs the pipeline over the local sample files: the reference output.
fn local_run(dir: &Path) -> PathBuf {
    let cfg = config(
        dir,
        "local.toml",
        &format!("paths = [\"{WARC_DIR}\"]"),
        "local",
    );
    ok(&corpus(&["run", cfg.to_str().unwrap()], &[]));
    let root = dir.join("local");
    let docs = outputs(&root);
    assert_eq!(docs.len(), 2 * samples().len());
    assert!(
        docs.iter()
            .any(|(n, b)| n.starts_with("docs/") && b.len() > 100),
        "the reference run kept no document"
    );
    root
}

fn assert_same_outputs(reference: &Path, other: &Path) {
    let a = outputs(reference);
    let b = outputs(other);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs from the run over local files");
    }
    assert_eq!(input_stats(reference), input_stats(other));
}

fn serve_samples(behavior: Behavior) -> HttpServer {
    let server = HttpServer::start(behavior);
    let names: Vec<String> = samples().iter().map(|(n, _)| n.clone()).collect();
    for (name, bytes) in samples() {
        server.put(&format!("/crawl-data/x/{name}"), bytes);
    }
    server.put(
        "/crawl-data/warc.paths.gz",
        listing("crawl-data/x/", &names),
    );
    server
}

fn http_input(server: &HttpServer) -> String {
    format!(
        "list = \"{0}/crawl-data/warc.paths.gz\"\nlist_base = \"{0}/\"",
        server.url()
    )
}

#[test]
fn http_listing_input_matches_local_files() {
    let dir = tempfile::tempdir().unwrap();
    let reference = local_run(dir.path());
    let server = serve_samples(Behavior::Plain);
    let cfg = config(dir.path(), "http.toml", &http_input(&server), "http");
    ok(&corpus(&["run", cfg.to_str().unwrap()], &[]));
    assert_same_outputs(&reference, &dir.path().join("http"));

    // Two tasks of an array job split the listing and fill one output directory.
    let cfg = config(dir.path(), "tasks.toml", &http_input(&server), "tasks");
    for i in ["0", "1"] {
        let out = corpus(
            &[
                "run",
                cfg.to_str().unwrap(),
                "--task-index",
                i,
                "--task-count",
                "2",
            ],
            &[],
        );
        ok(&out);
    }
    assert_same_outputs(&reference, &dir.path().join("tasks"));
}

#[test]
fn downloads_resume_after_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let reference = local_run(dir.path());
    // Every answer stops after 20,000 bytes of body and closes the connection.
    let server = serve_samples(Behavior::DropAfter(20_000));
    let cfg = config(dir.path(), "drop.toml", &http_input(&server), "drop");
    ok(&corpus(&["run", cfg.to_str().unwrap()], &[]));
    assert_same_outputs(&reference, &dir.path().join("drop"));
    // The largest sample took several ranged requests, each from where the last broke.
    let (name, bytes) = samples().into_iter().max_by_key(|(_, b)| b.len()).unwrap();
    let starts = server.range_starts(&format!("/crawl-data/x/{name}"));
    let expected: Vec<u64> = (0..bytes.len() as u64).step_by(20_000).collect();
    assert_eq!(starts, expected);
}

#[test]
fn requests_are_retried_after_503() {
    let dir = tempfile::tempdir().unwrap();
    let reference = local_run(dir.path());
    // The first three requests to each object are answered 503.
    let server = serve_samples(Behavior::Unavailable(3));
    let cfg = config(dir.path(), "busy.toml", &http_input(&server), "busy");
    ok(&corpus(&["run", cfg.to_str().unwrap()], &[]));
    assert_same_outputs(&reference, &dir.path().join("busy"));
    for (name, _) in samples() {
        let path = format!("/crawl-data/x/{name}");
        assert_eq!(server.statuses(&path), [503, 503, 503, 200], "{path}");
    }
}

#[test]
fn a_failing_input_is_recorded_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_samples(Behavior::Plain);
    let mut names: Vec<String> = samples().iter().map(|(n, _)| n.clone()).collect();
    names.push("missing.warc.gz".into());
    // A file that always breaks before its first byte: retried, then given up.
    server.put_broken("/crawl-data/x/zz-broken.warc.gz");
    names.push("zz-broken.warc.gz".into());
    server.put("/crawl-data/bad.paths.gz", listing("crawl-data/x/", &names));
    let input = format!(
        "list = \"{0}/crawl-data/bad.paths.gz\"\nlist_base = \"{0}/\"",
        server.url()
    );
    let cfg = config(dir.path(), "bad.toml", &input, "bad");
    let out = corpus(&["run", cfg.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("2 shard(s) failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("{}/crawl-data/x/missing.warc.gz", server.url())),
        "{stderr}"
    );
    assert_mentions(&stderr, &["zz-broken.warc.gz", "at byte 0"]);
    // The good shards are complete, and match a local run.
    let reference = local_run(dir.path());
    let good = outputs(&dir.path().join("bad"));
    assert_eq!(good, outputs(&reference));
}

#[test]
fn reader_streams_seeks_and_resumes() {
    let server = HttpServer::start(Behavior::DropAfter(1000));
    let data: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    server.put("/blob.bin", data.clone());
    let url = format!("{}/blob.bin", server.url());
    let options = corpus::remote::RemoteOptions {
        backoff: std::time::Duration::from_millis(1),
        queue_chunks: 2,
        ..Default::default()
    };
    let mut r = corpus::remote::RemoteReader::open_with(&url, options).unwrap();
    assert_eq!(r.size(), data.len() as u64);
    let mut got = Vec::new();
    r.read_to_end(&mut got).unwrap();
    assert!(got == data, "the bytes read differ from the object");
    r.seek(SeekFrom::Start(12_345)).unwrap();
    let mut part = vec![0u8; 3000];
    r.read_exact(&mut part).unwrap();
    assert_eq!(part, data[12_345..15_345]);
    r.seek(SeekFrom::End(-10)).unwrap();
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, data[data.len() - 10..]);

    let missing = corpus::remote::RemoteReader::open(&format!("{}/nope", server.url()));
    let err = missing.unwrap_err().to_string();
    assert_mentions(&err, &["/nope", "no such object"]);
}

// ---- S3 (moto) ----

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto, or returns `None` (skip) when it is not installed and `CI` is unset.
    fn start() -> Option<Moto> {
        let installed = Command::new("python3")
            .args(["-c", "import moto.server, flask, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            let msg = "moto is not installed: python3 -m pip install \"moto[server]==5.2.1\"";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipped: {msg}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // Wait until it accepts connections (it imports for a few seconds).
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto did not start on port {port}");
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A client of `bucket`, created on the server.
    fn bucket(&self, bucket: &str) -> Arc<dyn object_store::ObjectStore> {
        // Buckets are made with a plain PUT (moto accepts unsigned requests).
        let status = raw_request("PUT", &self.endpoint, &format!("/{bucket}"));
        assert!(status == 200 || status == 409, "creating bucket: {status}");
        corpus::remote::install_crypto();
        Arc::new(
            object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(bucket)
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .with_region("us-east-1")
                .build()
                .unwrap(),
        )
    }
}

/// Sends a bodiless HTTP/1.1 request; returns the status code.
fn raw_request(method: &str, endpoint: &str, path: &str) -> u16 {
    use std::io::Write;
    let host = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn put(store: &Arc<dyn object_store::ObjectStore>, key: &str, bytes: Vec<u8>) {
    block_on(store.put(&key.into(), bytes.into())).unwrap();
}

fn get(store: &Arc<dyn object_store::ObjectStore>, key: &str) -> Option<Vec<u8>> {
    match block_on(async { store.get(&key.into()).await?.bytes().await }) {
        Ok(b) => Some(b.to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{key}: {e}"),
    }
}

/// Downloads `prefix` (docs/, dropped/, stats.json) into a local directory.
fn download(store: &Arc<dyn object_store::ObjectStore>, prefix: &str, to: &Path) {
    use futures_util::StreamExt;
    let keys: Vec<String> = block_on(async {
        store
            .list(Some(&prefix.into()))
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await
    });
    for key in keys {
        let rel = key.strip_prefix(prefix).unwrap().trim_start_matches('/');
        let path = to.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, get(store, &key).unwrap()).unwrap();
    }
}

#[test]
fn s3_input_and_output_match_local_files_and_resume() {
    let Some(moto) = Moto::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let reference = local_run(dir.path());
    let store = moto.bucket("crawl");
    let names: Vec<String> = samples().iter().map(|(n, _)| n.clone()).collect();
    for (name, bytes) in samples() {
        put(&store, &format!("crawl-data/x/{name}"), bytes);
    }
    put(
        &store,
        "crawl-data/warc.paths.gz",
        listing("crawl-data/x/", &names),
    );

    let input = "list = \"s3://crawl/crawl-data/warc.paths.gz\"\nlist_base = \"s3://crawl/\"";
    let cfg = config(dir.path(), "s3.toml", input, "s3://crawl/out/run1");
    ok(&corpus(&["run", cfg.to_str().unwrap()], &moto.env()));
    let local = dir.path().join("from-s3");
    download(&store, "out/run1", &local);
    assert_same_outputs(&reference, &local);
    // `corpus sample` reads the remote run as the local one.
    let sample = |run: &str| {
        let out = corpus(&["sample", run, "--jsonl", "--seed", "5"], &moto.env());
        ok(&out);
        out.stdout
    };
    let remote = sample("s3://crawl/out/run1");
    assert!(!remote.is_empty());
    assert_eq!(remote, sample(reference.to_str().unwrap()));
    // So does `corpus report`: the same page but for the directory's name (up to the
    // times, which are each run's own).
    let report = |run: &str| {
        let page = dir.path().join("report.html");
        let out = corpus(&["report", run, "-o", page.to_str().unwrap()], &moto.env());
        ok(&out);
        let html = std::fs::read_to_string(&page).unwrap().replace(run, "RUN");
        html.split("<h2>Time per stage").next().unwrap().to_string()
    };
    let remote = report("s3://crawl/out/run1");
    assert!(remote.contains("RUN"), "{remote}");
    assert_eq!(remote, report(reference.to_str().unwrap()));
    // Markers live next to the outputs: a resumed run (on any machine) skips it all.
    assert!(get(&store, "out/run1/done/part-00000.json").is_some());
    let stderr = ok(&corpus(
        &["run", cfg.to_str().unwrap(), "--resume"],
        &moto.env(),
    ));
    let n = samples().len();
    assert!(
        stderr.contains(&format!("{n} shard(s): 0 done, {n} skipped as complete")),
        "{stderr}"
    );
    let again = corpus(&["run", cfg.to_str().unwrap()], &moto.env());
    assert_eq!(
        again.status.code(),
        Some(2),
        "a used output must be refused"
    );

    // A shard whose marker is gone is redone on resume, to the same bytes.
    let docs0 = get(&store, "out/run1/docs/part-00000.jsonl.gz").unwrap();
    block_on(store.delete(&"out/run1/done/part-00000.json".into())).unwrap();
    let stderr = ok(&corpus(
        &["run", cfg.to_str().unwrap(), "--resume"],
        &moto.env(),
    ));
    assert!(stderr.contains("1 done"), "{stderr}");
    assert!(get(&store, "out/run1/done/part-00000.json").is_some());
    assert_eq!(
        get(&store, "out/run1/docs/part-00000.jsonl.gz").unwrap(),
        docs0
    );
}

#[test]
fn s3_uploads_appear_only_when_committed() {
    let Some(moto) = Moto::start() else { return };
    let store = moto.bucket("uploads");
    let object = |key: &str| corpus::remote::Object {
        store: store.clone(),
        path: key.into(),
        url: format!("s3://uploads/{key}"),
    };
    // 13 MiB: a multipart upload of several parts, some sent while writing goes on.
    let data: Vec<u8> = (0..13u32 << 20).map(|i| (i % 253) as u8).collect();
    let upload = corpus::remote::Upload::to_object(object("big.bin"));
    let mut w = upload.writer();
    for chunk in data.chunks(1 << 20) {
        std::io::Write::write_all(&mut w, chunk).unwrap();
    }
    drop(w);
    assert_eq!(get(&store, "big.bin"), None, "visible before commit");
    upload.commit().unwrap();
    assert!(get(&store, "big.bin").unwrap() == data);

    // Abandoned (dropped without commit): nothing under the key.
    let upload = corpus::remote::Upload::to_object(object("abandoned.bin"));
    let mut w = upload.writer();
    std::io::Write::write_all(&mut w, &data).unwrap();
    drop((w, upload));
    assert_eq!(get(&store, "abandoned.bin"), None);

    // And a download of it through the resumable reader.
    let mut r = corpus::remote::RemoteReader::from_object(
        object("big.bin"),
        corpus::remote::RemoteOptions::default(),
    )
    .unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).unwrap();
    assert!(back == data);
}
