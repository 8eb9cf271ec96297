use super::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/warc")
        .join(name)
}

#[test]
fn dump_samples() {
    for f in std::fs::read_dir(data("")).unwrap() {
        let p = f.unwrap().path();
        if !p.to_string_lossy().ends_with(".gz") {
            continue;
        }
        let mut src = WarcSource::open(&p, &WarcOptions::default(), "web").unwrap();
        let mut n = 0;
        loop {
            match src.next_doc() {
                Ok(Some(d)) => {
                    n += 1;
                    if n <= 2 {
                        eprintln!("{:?} {:?}", d.id, d.meta);
                    }
                }
                Ok(None) => break,
                Err(e) => eprintln!("ERR {e}"),
            }
        }
        eprintln!("{} {n} {:?}", p.display(), src.stats());
    }
}
