//! Scale-out on a real scheduler: starts a one-node Slurm cluster on loopback (munged,
//! slurmctld and slurmd as this user, state in a temporary directory, no systemd or
//! cgroups), submits configs/cc-job.toml with an `exact_dedup` stage added (two
//! barriers: exact dedup across tasks, then MinHash) with configs/cc-job-slurm.sh, which
//! chains one array job per pass of `corpus plan`, and checks that the documents written
//! are byte-identical to a one-process run of the same config.
//!
//! Needs Debian's `slurmctld slurmd slurm-client munge` (22.05). Without them the test
//! says so and passes, unless `CORPUS_SLURM_TEST=1` (set by .ci/run), where it fails.

use crate::common;
use common::testing::assert_mentions;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn corpus_bin() -> &'static str {
    env!("CARGO_BIN_EXE_corpus")
}

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// A one-node cluster; dropping it shuts the daemons down (only those it started).
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let dir = dir.to_path_buf();
        for sub in ["state", "spool", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let host = run_tool(Command::new("hostname").arg("-s"))
            .trim()
            .to_string();
        let key = dir.join("munge.key");
        run_tool(Command::new("mungekey").arg("-c").arg("-k").arg(&key));
        let socket = dir.join("munge.sock");
        // --force: munged refuses a socket directory others may write to (/tmp) otherwise.
        run_tool(
            Command::new("munged")
                .arg("--force")
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
                .arg(format!(
                    "--log-file={}",
                    dir.join("log/munged.log").display()
                ))
                .arg(format!("--seed-file={}", dir.join("munge.seed").display())),
        );
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf = dir.join("slurm.conf");
        std::fs::write(
            &conf,
            format!(
                "ClusterName=corpustest\n\
                 SlurmctldHost={host}(127.0.0.1)\n\
                 SlurmUser=root\n\
                 SlurmdUser=root\n\
                 AuthType=auth/munge\n\
                 CredType=cred/munge\n\
                 AuthInfo=socket={d}/munge.sock\n\
                 StateSaveLocation={d}/state\n\
                 SlurmdSpoolDir={d}/spool\n\
                 SlurmctldPidFile={d}/slurmctld.pid\n\
                 SlurmdPidFile={d}/slurmd.pid\n\
                 SlurmctldPort={}\n\
                 SlurmdPort={}\n\
                 SlurmctldLogFile={d}/log/slurmctld.log\n\
                 SlurmdLogFile={d}/log/slurmd.log\n\
                 ProctrackType=proctrack/linuxproc\n\
                 TaskPlugin=task/none\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\n\
                 MpiDefault=none\n\
                 MailProg=/bin/true\n\
                 ReturnToService=2\n\
                 SchedulerParameters=sched_min_interval=100000\n\
                 NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
                 PartitionName=main Nodes={host} Default=YES MaxTime=INFINITE State=UP\n",
                free_port(),
                free_port()
            ),
        )
        .unwrap();
        let cluster = Cluster {
            dir: dir.clone(),
            conf: conf.clone(),
        };
        run_tool(Command::new("slurmctld").arg("-f").arg(&conf));
        run_tool(Command::new("slurmd").arg("-f").arg(&conf));
        // The node registers within a second or so; give a loaded machine a minute.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = cluster
                .tool("sinfo")
                .args(["-h", "-o", "%t"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            if state == "idle" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the node is `{state}`, not idle:\n{}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// A Slurm client command talking to this cluster.
    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for name in ["slurmctld.log", "slurmd.log", "munged.log"] {
            let text = std::fs::read_to_string(self.dir.join("log").join(name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            all.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                all.push_str(line);
                all.push('\n');
            }
        }
        all
    }

    /// Waits until no job is queued or running (the cluster runs only this test's
    /// jobs), then returns the state of every job and array task of `jobs`.
    fn wait(&self, jobs: &[String]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let out = self
                .tool("squeue")
                .args(["-h", "-o", "%i %j %T %r"])
                .output()
                .unwrap();
            let queue = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.success() && queue.trim().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still queued after 10 minutes:\n{queue}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut states = Vec::new();
        for job in jobs {
            let out = run_tool(self.tool("scontrol").args(["-o", "show", "job", job]));
            for line in out.lines() {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|f| f.strip_prefix(name))
                        .unwrap_or("?")
                        .to_string()
                };
                states.push(format!(
                    "{} {} {}",
                    field("JobName="),
                    field("JobId="),
                    field("JobState=")
                ));
            }
        }
        states
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Only the daemons this cluster started, by the pids they wrote.
        for name in ["slurmd.pid", "slurmctld.pid", "munged.pid"] {
            if let Ok(pid) = std::fs::read_to_string(self.dir.join(name)) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

/// Every file under `dir/sub` for each sub, relative path -> bytes.
fn files(dir: &Path, subs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in subs {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let e = e.unwrap();
            out.push((
                format!("{sub}/{}", e.file_name().to_string_lossy()),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

/// The lines of every dropped-document file of a run (every pass's), sorted.
fn dropped_lines(dir: &Path) -> Vec<String> {
    use std::io::Read;
    let mut lines = Vec::new();
    for (_, bytes) in files(dir, &["dropped"]) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

/// The merged statistics of a run without timings (they differ between runs).
fn counts(dir: &Path) -> corpus::stats::RunStats {
    let mut stats = corpus::report::load(dir).unwrap().stats;
    stats.seconds = 0.0;
    stats.stages.iter_mut().for_each(|s| {
        s.seconds = 0.0;
        s.cpu_seconds = 0.0;
    });
    stats
}

#[test]
fn cc_job_as_chained_slurm_arrays_matches_one_process() {
    let required = std::env::var("CORPUS_SLURM_TEST").is_ok_and(|v| v == "1");
    let missing: Vec<&str> = ["slurmctld", "slurmd", "sbatch", "munged", "mungekey"]
        .into_iter()
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        assert!(
            !required,
            "CORPUS_SLURM_TEST=1 but {missing:?} not installed (apt-get install slurmctld slurmd slurm-client munge)"
        );
        eprintln!("skipped: {missing:?} not installed (set CORPUS_SLURM_TEST=1 to require)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Input: the Common Crawl samples and a copy of each under another name, so that
    // shards 4..8 repeat shards 0..4; with 3 tasks, shard i and its copy i + 4 belong to
    // different tasks, so only dedup across tasks finds them.
    let samples = Path::new(ROOT).join("tests/data/warc");
    let mut list = String::new();
    for copy in ["a", "b"] {
        std::fs::create_dir_all(dir.join("in").join(copy)).unwrap();
        for name in [
            "CC-MAIN-20200808165417-20200808195417-00395.sample.warc.gz",
            "cc-main-2024-22-whirlwind.warc.gz",
            "cc-main-2024-22-whirlwind.warc.wet.gz",
            "dolma-sample-0000.warc.gz",
        ] {
            let to = dir.join("in").join(copy).join(name);
            std::fs::copy(samples.join(name), &to).unwrap();
            list.push_str(&format!("{}\n", to.display()));
        }
    }
    std::fs::write(dir.join("paths.txt"), list).unwrap();
    // configs/cc-job.toml with exact dedup across every task before MinHash.
    let cc_job = std::fs::read_to_string(Path::new(ROOT).join("configs/cc-job.toml")).unwrap();
    let with_exact = cc_job
        .replacen(
            "[[stages]]\nkind = \"minhash_dedup\"",
            "[[stages]]\nkind = \"exact_dedup\"\n\n[[stages]]\nkind = \"minhash_dedup\"",
            1,
        )
        .replace("\"../tests/data/", &format!("\"{ROOT}/tests/data/"));
    assert_ne!(with_exact, cc_job);
    let set_list = format!("input.list={}", dir.join("paths.txt").display());
    let config = dir.join("two-barriers.toml");
    std::fs::write(&config, with_exact).unwrap();
    let plan = common::ok(Command::new(corpus_bin()).arg("plan").arg(&config).args([
        "--json",
        "--set",
        set_list.as_str(),
    ]));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let passes = plan["passes"].as_array().unwrap();
    assert_eq!(passes.len(), 7, "{plan}");

    // The reference: every pass in one process.
    let one = dir.join("one");
    let out = Command::new(corpus_bin())
        .arg("run")
        .arg(&config)
        .args([
            "-q",
            "-o",
            one.to_str().unwrap(),
            "--set",
            set_list.as_str(),
            "--set",
        ])
        .arg(format!("minhash_dedup.work_dir={}/one-work", dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "one-process run: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The same job as four Slurm jobs, three of them 3-task arrays.
    let cluster = Cluster::start(&dir.join("slurm"));
    let jobs_out = dir.join("jobs");
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let submit = cluster
        .tool(&format!("{ROOT}/configs/cc-job-slurm.sh"))
        .current_dir(dir)
        .env("CORPUS", corpus_bin())
        .env(
            "SBATCH_FLAGS",
            format!("--output={}/logs/%x-%A_%a.out", dir.display()),
        )
        .args(["-n", "3"])
        .arg(&config)
        .args([
            "--",
            "-o",
            jobs_out.to_str().unwrap(),
            "--set",
            set_list.as_str(),
            "--set",
        ])
        .arg(format!(
            "minhash_dedup.work_dir={}/jobs-work",
            dir.display()
        ))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(submit.status.success(), "submitting failed");
    let jobs: Vec<String> = String::from_utf8_lossy(&submit.stdout)
        .split_whitespace()
        .map(|j| j.split(';').next().unwrap_or(j).to_string())
        .collect();
    assert_eq!(jobs.len(), passes.len(), "a job per pass: {jobs:?}");
    let states = cluster.wait(&jobs);
    let mut logs = String::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        let e = e.unwrap();
        logs.push_str(&format!(
            "--- {}\n{}",
            e.file_name().to_string_lossy(),
            std::fs::read_to_string(e.path()).unwrap_or_default()
        ));
    }
    // Exact dedup: 3 signature tasks, 1 bucket task (one band), 1 cluster job; MinHash:
    // 3 signature tasks, 3 bucket tasks, 1 cluster job, 3 filter tasks.
    assert_eq!(states.len(), 15, "{states:#?}\n{logs}");
    assert!(
        states.iter().all(|s| s.ends_with(" COMPLETED")),
        "{states:#?}\n{logs}\n{}",
        cluster.logs()
    );
    drop(cluster);

    // Documents kept and dropped: byte for byte the one-process run's, in every pass.
    // (The last pass's dropped files; `dropped/` also holds each earlier pass's drops, in
    // files named after the barrier they came before, compared below.)
    let last_pass = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        files(dir, &["docs", "dropped"])
            .into_iter()
            .filter(|(name, _)| !name.contains(".before-"))
            .collect()
    };
    let reference = last_pass(&one);
    assert_eq!(reference.len(), 16, "8 shards, kept and dropped");
    assert_eq!(last_pass(&jobs_out), reference);
    assert_eq!(
        files(&jobs_out.join("minhash/pre"), &["docs"]),
        files(&one.join("minhash/pre"), &["docs"])
    );
    // One process runs exact dedup as an ordered stage in the first pass; the jobs cut
    // it into passes of its own: the same documents are dropped, by the same stages, in
    // other files of `dropped/`.
    let all = dropped_lines(&jobs_out);
    assert_eq!(all, dropped_lines(&one));
    assert!(all.iter().any(|l| l.contains("\"stage\":\"exact_dedup\"")));
    assert!(all.iter().any(|l| l.contains("\"stage\":\"langid\"")));
    let stats = counts(&jobs_out);
    assert_eq!(stats, counts(&one));
    // Dedup crossed tasks: the copies in shards 4..8 are exact duplicates of 0..4.
    let dedup = stats
        .stages
        .iter()
        .find(|s| s.kind == "exact_dedup")
        .expect("an exact_dedup stage in the funnel");
    let dups = dedup.drops.get("duplicate").copied().unwrap_or(0);
    assert!(
        dups * 2 >= dedup.docs_in && dups > 0,
        "the copies are duplicates: {dedup:?}"
    );
    assert!(
        stats.stages.iter().any(|s| s.kind == "minhash_dedup"),
        "{stats:?}"
    );

    // The report reads the job's statistics.
    let html = dir.join("report.html");
    let out = Command::new(corpus_bin())
        .arg("report")
        .arg(&jobs_out)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert_mentions(&page, &["duplicate", "Fuzzy dedup"]);
}
