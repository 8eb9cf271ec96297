//! The `corpus` command line: parses flags, builds a plan, calls the library. Exit codes:
//! 0 success, 1 runtime failure (including shards that failed), 2 bad usage or config.

use anyhow::Context;
mod cli;

use clap::Parser;
use cli::*;
use corpus::commands::reference::RefCmdError;
use corpus::config::{ConfigError, PipelineConfig};
use corpus::executor::{RunError, RunOptions, RunSummary};
use corpus::shard::TaskSpec;
use corpus_models::reflm::RefError;
use std::path::PathBuf;
use std::process::ExitCode;

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        Failure {
            code: if e.is_usage() { 2 } else { 1 },
            error: e.into(),
        }
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure {
            code: 2,
            error: e.into(),
        }
    }
}

/// The CPU backend's worker count: candle reads rayon's variable.
fn set_threads(threads: usize) {
    if threads > 0 {
        // SAFETY: called before any other thread of this process starts.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

fn reference(cmd: RefCommand) -> Result<(), RefCmdError> {
    use corpus::commands::reference as r;
    match cmd {
        RefCommand::Train(a) => {
            set_threads(a.threads);
            let s = r::train_cmd(&r::TrainArgs {
                shards: a.shards,
                val_shards: a.val_shards,
                config: a.config,
                out: a.out.clone(),
                device: a.device,
                stop_after: a.stop_after,
                verbose: !a.quiet,
                peak_tflops: a.peak_tflops,
            })?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s).expect("summary serializes")
            );
            if !a.quiet {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                let mut perf = format!(
                    "{}, {}: {:.0} tokens/s in optimizer steps, {:.3} TFLOP/s of model FLOPs",
                    s.device,
                    s.precision,
                    s.step_tokens_per_second,
                    s.flops_per_token * s.step_tokens_per_second / 1e12
                );
                match s.mfu {
                    Some(m) => perf += &format!(", MFU {:.1}%", m * 100.0),
                    None if s.device != "cpu" => perf += " (for MFU give --peak-tflops)",
                    None => {}
                }
                if let (Some(p), Some(t)) = (s.gpu_memory_peak_bytes, s.gpu_memory_total_bytes) {
                    perf += &format!("; GPU memory peak {:.2} of {:.2} GiB", gib(p), gib(t));
                }
                eprintln!("{perf}");
                eprintln!(
                    "trained {} steps ({} tokens, {:.0} tokens/s): validation perplexity {} (unigram baseline {}); summary in {}",
                    s.steps,
                    s.tokens,
                    s.tokens_per_second,
                    s.val_perplexity.map_or("-".into(), |p| format!("{p:.2}")),
                    s.unigram_perplexity
                        .map_or("-".into(), |p| format!("{p:.2}")),
                    a.out.join("summary.json").display()
                );
            }
        }
        RefCommand::Eval(a) => {
            set_threads(a.threads);
            let rep = r::eval_cmd(&r::EvalArgs {
                shards: a.shards,
                split: a.split,
                checkpoint: a.checkpoint,
                context: a.context,
                ntk: a.ntk,
                logn: a.logn,
                max_windows: a.max_windows,
                batch: a.batch,
                device: a.device,
            })?;
            let text = serde_json::to_string_pretty(&rep).expect("report serializes");
            println!("{text}");
            if let Some(p) = a.json {
                std::fs::write(&p, text + "\n")
                    .map_err(|source| RefCmdError::Io { path: p, source })?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Plan(args) => plan(args),
        Command::Dedup(args) => dedup(args),
        Command::Decontam(args) => decontam(args),
        Command::Extract(args) => extract(args),
        Command::Stages { json } => stages(json).map_err(|error| Failure { code: 1, error }),
        Command::Langid(args) => langid(args),
        Command::Vocab(VocabCommand::Build(args)) => vocab_build(args),
        Command::Vocab(VocabCommand::Compare(args)) => vocab_compare(args),
        Command::Export(cmd) => export(cmd).map_err(|e| Failure {
            code: if e.is_usage() { 2 } else { 1 },
            error: e.into(),
        }),
        Command::Tokens(cmd) => tokens(cmd).map_err(|e| Failure {
            code: if e.is_usage() { 2 } else { 1 },
            error: e.into(),
        }),
        Command::Scorer(ScorerCommand::Score(args)) => scorer_score(args),
        Command::Scorer(ScorerCommand::Features { input, output }) => {
            scorer_features(&input, &output)
        }
        Command::Report(args) => report(args),
        Command::Ref(cmd) => reference(cmd).map_err(|e| Failure {
            code: if matches!(
                e,
                RefCmdError::Usage(_)
                    | RefCmdError::Model(RefError::Config { .. } | RefError::Device(_))
            ) {
                2
            } else {
                1
            },
            error: e.into(),
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn load_config(path: &std::path::Path, set: &[String]) -> Result<PipelineConfig, Failure> {
    if !path.exists() && path == std::path::Path::new("configs/default.toml") {
        return Err(usage(
            "configs/default.toml not found: run from the repository root or pass a config path",
        ));
    }
    let config = PipelineConfig::load(path, set)?;
    for notice in &config.notices {
        eprintln!("warning: {notice}");
    }
    Ok(config)
}

fn run(args: RunArgs) -> Result<(), Failure> {
    let config = load_config(&args.config, &args.set)?;
    execute_pass(&config, args.output, &args.common, args.pass)
}

fn plan(args: PlanArgs) -> Result<(), Failure> {
    let config = load_config(&args.config, &args.set)?;
    let plan = corpus::plan::Plan::new(&config, None, corpus::plan::Mode::Scheduled)?;
    if args.json {
        println!("{}", plan.to_json());
    } else {
        print!("{}", plan.to_text());
    }
    Ok(())
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        error: anyhow::anyhow!("{message}"),
    }
}

fn dedup(args: DedupArgs) -> Result<(), Failure> {
    if args.fuzzy || args.explain || args.pass.is_some() {
        return fuzzy_dedup(args);
    }
    if !args.exact {
        return Err(usage("choose a dedup method: --exact or --fuzzy"));
    }
    if args.inputs.is_empty() {
        return Err(usage("no inputs given"));
    }
    let Some(output) = args.output.clone() else {
        return Err(usage("--output is required"));
    };
    use corpus::stages::exact_dedup::{Config, Key, Mode};
    let stage = Config {
        key: match args.key {
            KeyArg::Text => Key::Text,
            KeyArg::ExactText => Key::ExactText,
            KeyArg::Url => Key::Url,
        },
        mode: if args.bloom { Mode::Bloom } else { Mode::Exact },
        expected_docs: args.expected_docs,
        false_positive_rate: args.fp_rate,
    };
    let mut config = PipelineConfig::for_command(
        args.inputs,
        &output,
        vec![corpus::stages::StageConfig::ExactDedup(stage)],
    )?;
    config.output.dropped = args.dropped;
    config.output.format = match args.format {
        FormatArg::Jsonl => corpus::sink::OutputFormat::Jsonl,
        FormatArg::Parquet => corpus::sink::OutputFormat::Parquet,
    };
    execute(&config, None, &args.common)
}

fn fuzzy_dedup(args: DedupArgs) -> Result<(), Failure> {
    use corpus::fuzzy;
    use corpus::stages::minhash::{Action, Config, Keep, Method, Verify};
    let mut config = if args.exact {
        Config::exact()
    } else {
        Config {
            method: Method::Minhash,
            ngram: args.ngram,
            bands: args.bands,
            rows: args.rows,
            seed: args.seed,
            verify: match args.verify {
                VerifyArg::Off => Verify::Off,
                VerifyArg::Estimate => Verify::Estimate,
                VerifyArg::Exact => Verify::Exact,
            },
            threshold: args.threshold,
            keep: match args.keep {
                KeepArg::First => Keep::First,
                KeepArg::Longest => Keep::Longest,
                KeepArg::BestQualityScore => Keep::BestQualityScore,
            },
            action: Action::Drop,
            work_dir: PathBuf::new(),
        }
    };
    if args.annotate {
        config.action = Action::Annotate;
    }
    config.validate().map_err(usage)?;
    if args.explain {
        print!("{}", config.explain());
        return Ok(());
    }
    if args.inputs.is_empty() {
        return Err(usage("no inputs given"));
    }
    let needs_output = matches!(args.pass, None | Some(PassArg::Filter));
    let output = match (&args.output, needs_output) {
        (Some(o), _) => Some(o.clone()),
        (None, false) => None,
        (None, true) => return Err(usage("--output is required")),
    };
    let work = match (&args.work_dir, &output) {
        (Some(w), _) => w.clone(),
        (None, Some(o)) => o.join("minhash"),
        (None, None) => return Err(usage("--work-dir is required")),
    };
    config.work_dir = work.clone();
    let fail = |e: fuzzy::FuzzyError| Failure {
        code: if matches!(e, fuzzy::FuzzyError::Usage(_)) {
            2
        } else {
            1
        },
        error: e.into(),
    };
    let (input, files) = fuzzy::input_files(&args.inputs).map_err(fail)?;
    let task = TaskSpec::resolve(args.common.task_index, args.common.task_count, |k| {
        std::env::var(k).ok()
    })?;
    let threads = args
        .common
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let quiet = args.common.quiet;
    let report = |what: &str, s: &fuzzy::PassSummary| {
        if !quiet {
            let secs = s.elapsed.as_secs_f64().max(1e-9);
            eprintln!(
                "{what}: {} docs ({} signed, {} too short to shingle, {} corrupt records skipped), \
                 {} done, {} already complete, {:.1}s, {:.0} docs/s, {:.1} MB/s",
                s.docs,
                s.signed,
                s.too_short,
                s.corrupt,
                s.done,
                s.skipped,
                secs,
                s.docs as f64 / secs,
                s.text_bytes as f64 / secs / 1e6
            );
        }
    };
    let report_clusters = |c: &fuzzy::ClusterSummary| {
        if !quiet {
            eprintln!(
                "clusters: {} clusters of 2+ holding {} docs, {} to remove; {} buckets, {} pairs verified ({} rejected)",
                c.clusters, c.clustered, c.removed, c.buckets, c.pairs_verified, c.pairs_rejected
            );
        }
    };
    match args.pass {
        Some(PassArg::Signatures) => {
            let s =
                fuzzy::signatures(&files, &input, &config, &work, task, threads).map_err(fail)?;
            report("signatures", &s);
            return Ok(());
        }
        Some(PassArg::Buckets) => {
            let s = fuzzy::buckets(files.len(), &config, &work, task).map_err(fail)?;
            if !quiet {
                eprintln!(
                    "buckets: {} bands done, {} already complete, {:.1}s",
                    s.done,
                    s.skipped,
                    s.elapsed.as_secs_f64()
                );
            }
            return Ok(());
        }
        Some(PassArg::Cluster) => {
            if task.index != 0 {
                if !quiet {
                    eprintln!(
                        "cluster: runs as task 0 only; nothing to do for task {}",
                        task.index
                    );
                }
                return Ok(());
            }
            let c = fuzzy::cluster(&files, &input, &config, &work).map_err(fail)?;
            report_clusters(&c);
            return Ok(());
        }
        Some(PassArg::Filter) => {}
        None => {
            if task.count != 1 {
                return Err(usage(
                    "in-memory fuzzy dedup runs as one task; use --pass for multi-task runs",
                ));
            }
            if let Some(c) = fuzzy::finished_cluster(&files, &config, &work) {
                if !quiet {
                    eprintln!("clusters: reusing {}", work.display());
                }
                report_clusters(&c);
            } else {
                let (s, c) =
                    fuzzy::in_memory(&files, &input, &config, &work, threads).map_err(fail)?;
                report("signatures (in memory)", &s);
                report_clusters(&c);
            }
        }
    }
    let output = output.expect("checked above");
    let mut pipeline = PipelineConfig::for_command(
        args.inputs,
        &output,
        vec![corpus::stages::StageConfig::MinhashDedup(config)],
    )?;
    pipeline.output.dropped = args.dropped;
    pipeline.output.format = match args.format {
        FormatArg::Jsonl => corpus::sink::OutputFormat::Jsonl,
        FormatArg::Parquet => corpus::sink::OutputFormat::Parquet,
    };
    // The decisions are there (or the filter says which pass is missing): only the
    // filter pass runs.
    execute_pass(&pipeline, None, &args.common, Some("filter".into()))
}

fn decontam(args: DecontamArgs) -> Result<(), Failure> {
    use corpus::commands::decontam as dc;
    use corpus::stages::decontam::{Config, Policy};
    let fail = |e: dc::DecontamError| Failure {
        code: if e.is_usage() { 2 } else { 1 },
        error: e.into(),
    };
    if let Some(DecontamCommand::Index {
        benchmarks,
        output,
        ngrams,
        quiet,
    }) = args.command
    {
        let benchmarks = benchmarks
            .iter()
            .map(|b| dc::parse_benchmark(b))
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail)?;
        let s = dc::write_index(&benchmarks, ngrams.settings(), &output).map_err(fail)?;
        if !quiet {
            for b in &s.benchmarks {
                eprintln!(
                    "{}: {} examples ({} too short to match, {} fields matched whole) in {} files",
                    b.name,
                    b.examples,
                    b.too_short,
                    b.short_fields,
                    b.files.len()
                );
            }
            eprintln!(
                "{}: {} n-grams, {} whole fields, {} bytes; built in {:.2}s, written in {:.2}s",
                output.display(),
                s.ngrams,
                s.short_fields,
                s.bytes,
                s.build.as_secs_f64(),
                s.write.as_secs_f64()
            );
        }
        return Ok(());
    }
    let output = args.output.expect("clap requires it");
    // Benchmarks are indexed once, into OUT/decontam.index, which the stage loads.
    let index = match args.index {
        Some(index) => index,
        None => {
            let benchmarks = args
                .benchmarks
                .iter()
                .map(|b| dc::parse_benchmark(b))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?;
            let path = output.join("decontam.index");
            dc::write_index(&benchmarks, args.ngrams.settings(), &path).map_err(fail)?;
            path
        }
    };
    let stage = Config {
        index: Some(index.clone()),
        n: args.ngrams.n,
        max_examples_per_ngram: args.ngrams.max_examples_per_ngram,
        short_min_tokens: args.ngrams.short_min_tokens,
        min_matches: args.min_matches,
        policy: match args.policy {
            DecontamPolicyArg::Drop => Policy::Drop,
            DecontamPolicyArg::RemoveSpan => Policy::RemoveSpan,
        },
        window: args.window,
        min_piece_chars: args.min_piece_chars,
        max_pieces: args.max_pieces,
        ..Default::default()
    };
    let mut config = PipelineConfig::for_command(
        args.inputs,
        &output,
        vec![corpus::stages::StageConfig::Decontam(stage)],
    )?;
    config.output.dropped = args.dropped;
    execute(&config, None, &args.common)?;
    if let Some(path) = args.report {
        let stats = corpus::stages::decontam::Index::load(&index, None)
            .map(|i| i.stats)
            .map_err(|e| fail(e.into()))?;
        let report = dc::report(&output, Some(&stats)).map_err(fail)?;
        dc::write_report(&report, &path).map_err(fail)?;
    }
    Ok(())
}

/// Writes the HTML report of a run directory.
fn report(args: ReportRunArgs) -> Result<(), Failure> {
    let report = corpus::report::load(&args.run_dir).map_err(|e| Failure {
        code: if matches!(e, corpus::report::ReportError::Invalid { .. }) {
            2
        } else {
            1
        },
        error: e.into(),
    })?;
    corpus::commands::tokens::write_output(&args.output, corpus::report::html(&report).as_bytes())
        .map_err(|e| Failure {
            code: 1,
            error: e.into(),
        })
}

/// Runs a config with the shared flags and reports the outcome.
fn execute(
    config: &PipelineConfig,
    output: Option<PathBuf>,
    args: &CommonArgs,
) -> Result<(), Failure> {
    execute_pass(config, output, args, None)
}

/// [`execute`], for one pass of a multi-pass job.
fn execute_pass(
    config: &PipelineConfig,
    output: Option<PathBuf>,
    args: &CommonArgs,
    pass: Option<String>,
) -> Result<(), Failure> {
    let task = TaskSpec::resolve(args.task_index, args.task_count, |k| std::env::var(k).ok())?;
    let options = RunOptions {
        threads: args.threads,
        output_dir: output,
        task,
        resume: args.resume,
        overwrite: args.overwrite,
        progress: !args.quiet,
        max_warnings: if args.quiet { 0 } else { 20 },
        pass,
    };
    let summary = corpus::executor::run(config, &options)?;
    if !args.quiet {
        print_summary(&summary, task);
    }
    if !summary.failed.is_empty() {
        let list: Vec<String> = summary
            .failed
            .iter()
            .map(|(_, e)| format!("  {e}"))
            .collect();
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!(
                "{} shard(s) failed (rerun with --resume to retry them):\n{}",
                summary.failed.len(),
                list.join("\n")
            ),
        });
    }
    Ok(())
}

fn extract(args: ExtractArgs) -> Result<(), Failure> {
    use corpus::extract_cmd::{ExtractError, ExtractOptions};
    let options = ExtractOptions {
        inputs: args.inputs,
        output: args.output,
        threads: args.threads,
        config: Default::default(),
    };
    let summary = corpus::extract_cmd::run(&options).map_err(|e| Failure {
        code: if matches!(e, ExtractError::Usage(_)) {
            2
        } else {
            1
        },
        error: e.into(),
    })?;
    for failure in &summary.failed {
        eprintln!("warning: skipped: {failure}");
    }
    if !args.quiet {
        let secs = summary.elapsed.as_secs_f64().max(1e-9);
        let work = summary.extract_time.as_secs_f64().max(1e-9);
        let drops: Vec<String> = summary
            .dropped
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        eprintln!(
            "corpus extract: {} pages, {} written, dropped: [{}], {:.2}s ({:.1} pages/s); \
             extraction {:.2}s of worker time ({:.1} pages/s per thread)",
            summary.pages,
            summary.written,
            drops.join(" "),
            secs,
            summary.pages as f64 / secs,
            work,
            summary.pages as f64 / work
        );
    }
    if !summary.failed.is_empty() {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!(
                "{} input(s) or record(s) could not be read",
                summary.failed.len()
            ),
        });
    }
    Ok(())
}

fn print_summary(s: &RunSummary, task: TaskSpec) {
    for note in &s.notes {
        eprintln!("{note}");
    }
    if s.shards == 0 && !s.notes.is_empty() {
        return;
    }
    let st = &s.stats;
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let task_note = if task.count > 1 {
        format!(" (task {} of {})", task.index, task.count)
    } else {
        String::new()
    };
    eprintln!(
        "corpus: {} shard(s){task_note}: {} done, {} skipped as complete, {} failed, in {:.2}s",
        s.shards,
        st.shards,
        s.skipped,
        s.failed.len(),
        secs
    );
    eprintln!(
        "  input: {} records, {} documents, {:.1} MB read ({:.1} MB/s){}{}",
        st.input.records,
        st.input.docs,
        st.input.bytes as f64 / 1e6,
        st.input.bytes as f64 / 1e6 / secs,
        fmt_counts(" skipped", &st.input.skipped),
        fmt_counts(" corrupt", &st.input.corrupt),
    );
    for stage in &st.stages {
        eprintln!(
            "  {:<12} {:>10} in {:>10} out{}",
            stage.kind,
            stage.docs_in,
            stage.docs_out,
            fmt_counts("", &stage.drops)
        );
    }
    if let Some(mix) = corpus::commands::mix::upsample_mix(&s.total) {
        eprint!("{}", corpus::commands::mix::mix_table(&mix));
    }
    eprintln!(
        "  output: {} documents, {:.1} MB of text -> {}",
        st.docs_out,
        st.bytes_out as f64 / 1e6,
        s.output_dir.display()
    );
}

fn fmt_counts(label: &str, counts: &std::collections::BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let items: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(";{label} {}", items.join(" "))
}

fn langid(args: LangidArgs) -> Result<(), Failure> {
    let usage = |error| Failure { code: 2, error };
    if !(0.0..=1.0).contains(&args.min_confidence) {
        return Err(usage(anyhow::anyhow!(
            "--min-confidence {} is not in 0..=1",
            args.min_confidence
        )));
    }
    // The stage's own config check, so `--prior` accepts what `prior =` accepts.
    let stage = corpus::stages::langid::build(&corpus::stages::langid::Config {
        prior: args.prior,
        ..Default::default()
    })
    .context("--prior")
    .map_err(usage)?;
    let options = corpus::commands::langid::LangidOptions {
        jsonl: args.jsonl,
        text_field: args.field,
        min_confidence: args.min_confidence,
        detector: stage.detector().clone(),
        threads: args.threads,
    };
    let stdin = std::io::stdin();
    let mut input: Box<dyn std::io::BufRead> = match &args.file {
        Some(path) => Box::new(
            corpus::io::open_decompressed(path)
                .with_context(|| format!("opening {}", path.display()))
                .map_err(usage)?
                .0,
        ),
        None => Box::new(stdin.lock()),
    };
    let mut output = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let summary = match corpus::commands::langid::run(&mut input, &mut output, &options) {
        Ok(s) => s,
        // A closed pipe (`| head`) is how a reader says it has seen enough.
        Err(corpus::commands::langid::LangidError::Write(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            return Ok(());
        }
        Err(e) => {
            return Err(Failure {
                code: 1,
                error: e.into(),
            });
        }
    };
    if summary.invalid > 0 {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!(
                "{} of {} lines were not JSON objects with a string `{}` (written as und with an error field), e.g.:\n  {}",
                summary.invalid,
                summary.lines,
                options.text_field,
                summary.invalid_examples.join("\n  ")
            ),
        });
    }
    Ok(())
}

fn stages(json: bool) -> anyhow::Result<()> {
    let catalog = corpus::stages::catalog();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&catalog).context("serializing the catalog")?
        );
        return Ok(());
    }
    for info in catalog {
        println!("{}: {}", info.kind, info.about);
        for (name, default, doc) in info.fields {
            println!("    {name} = {default}\n        {doc}");
        }
    }
    Ok(())
}

fn vocab_failure(e: corpus::commands::vocab::VocabCmdError) -> Failure {
    use corpus::commands::vocab::VocabCmdError;
    let code = match &e {
        VocabCmdError::Usage(_) => 2,
        VocabCmdError::Source(corpus::source::SourceError::Config(_)) => 2,
        _ => 1,
    };
    Failure {
        code,
        error: e.into(),
    }
}

fn vocab_build(args: VocabBuildArgs) -> Result<(), Failure> {
    let usage = |error| Failure { code: 2, error };
    if args.base != "cl100k" && args.base != "cl100k_base" {
        return Err(usage(anyhow::anyhow!(
            "--base {}: only cl100k is supported",
            args.base
        )));
    }
    let mut lang_weights = Vec::new();
    for spec in &args.weights {
        let parsed = spec
            .split_once('=')
            .and_then(|(l, w)| Some((l.to_string(), w.parse::<u64>().ok()?)));
        match parsed {
            Some(lw) => lang_weights.push(lw),
            None => {
                return Err(usage(anyhow::anyhow!(
                    "--weight {spec}: expected LANG=N with a whole number N"
                )));
            }
        }
    }
    let command = std::iter::once("corpus".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let options = corpus::commands::vocab::BuildOptions {
        corpus: args.corpus,
        output: args.output,
        pattern: args.pattern,
        vocab_size: args.size,
        min_frequency: args.min_frequency,
        max_token_bytes: args.max_token_bytes,
        holdout: args.holdout,
        lang_weights,
        extra_tokens: args.extra_tokens,
        threads: args.threads,
        progress: !args.quiet,
        command,
    };
    let s = corpus::commands::vocab::build(&options).map_err(vocab_failure)?;
    if !args.quiet {
        let side = &s.sidecar;
        let t = &side.training;
        eprintln!(
            "corpus vocab build: {} documents trained on ({} held out), {} distinct words; \
             read {:.1}s, counted {:.1}s, trained {:.1}s",
            t.documents,
            s.heldout_docs,
            t.distinct_words,
            s.times[0].as_secs_f64(),
            s.times[1].as_secs_f64(),
            s.times[2].as_secs_f64()
        );
        eprintln!(
            "  {} ordinary tokens = {} of cl100k_base ({} multi-digit tokens removed) + {} new \
             (stopped: {}, last count {}); {} special tokens; n_vocab {}",
            side.ordinary_tokens,
            side.base_tokens,
            side.removed_multi_digit,
            side.new_tokens,
            t.stop,
            t.last_count,
            side.special_tokens.len(),
            side.n_vocab
        );
        eprintln!(
            "  tiktoken check: {} of {} training words and {} of {} sampled documents \
             encode differently from the trained segmentation",
            t.mismatched_words, t.distinct_words, s.check.0, s.check.1
        );
        eprintln!(
            "  wrote {} (sha256 {}) and {}",
            options.output.display(),
            side.sha256,
            s.sidecar_path.display()
        );
    }
    if s.sidecar.training.mismatched_words > 0 || s.check.0 > 0 {
        return Err(Failure {
            code: 1,
            error: anyhow::anyhow!(
                "the vocabulary does not reproduce its trained segmentation under tiktoken \
                 (a bug; the files were written for inspection)"
            ),
        });
    }
    Ok(())
}

fn vocab_compare(args: VocabCompareArgs) -> Result<(), Failure> {
    let mut encoders = Vec::new();
    for spec in &args.vocabs {
        encoders.push(
            corpus::commands::vocab::Encoder::open(spec, &args.pattern).map_err(vocab_failure)?,
        );
    }
    let cmp = corpus::commands::vocab::compare(
        &encoders,
        &args.inputs,
        args.holdout,
        &args.langs,
        args.threads,
    )
    .map_err(vocab_failure)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&cmp).expect("serializable")
        );
    } else {
        print!("{}", cmp.to_markdown());
    }
    Ok(())
}

fn tokens(cmd: TokensCommand) -> Result<(), corpus::commands::tokens::TokensError> {
    use corpus::commands::{pack, tokens};
    match cmd {
        TokensCommand::Encode(args) => {
            let tokenizer = args.tokenizer.spec().load()?;
            let files = tokens::expand(&args.inputs)?;
            let start = std::time::Instant::now();
            let summary =
                match tokens::encode_to_path(&files, &tokenizer, args.threads, &args.output) {
                    // A closed pipe (`| head`) is how a reader says it has seen enough.
                    Err(tokens::TokensError::Write(e))
                        if e.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        return Ok(());
                    }
                    r => r?,
                };
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "corpus tokens encode: {} documents, {} tokens, {:.1} MB of text in {:.2}s ({:.2} M tokens/s, {:.1} MB/s)",
                summary.docs,
                summary.tokens,
                summary.bytes as f64 / 1e6,
                secs,
                summary.tokens as f64 / 1e6 / secs,
                summary.bytes as f64 / 1e6 / secs
            );
            Ok(())
        }
        TokensCommand::Pack(args) => {
            let tokenizer = args.tokenizer.spec().load()?;
            let config = pack::PackConfig {
                seq_len: args.seq_len,
                val_fraction: args.val_fraction,
                seed: args.seed,
                format: match args.format {
                    ShardFormatArg::Parquet => pack::ShardFormat::Parquet,
                    ShardFormatArg::Arrow => pack::ShardFormat::Arrow,
                },
                shard_sequences: args.shard_sequences,
            };
            let start = std::time::Instant::now();
            let summary = pack::pack(
                &args.inputs,
                &tokenizer,
                &config,
                &args.output,
                args.threads,
            )?;
            if !args.quiet {
                if summary.skipped {
                    eprintln!(
                        "corpus tokens pack: {} is complete for these inputs and settings; nothing to do",
                        args.output.display()
                    );
                }
                for (name, s) in &summary.manifest.splits {
                    eprintln!(
                        "  {name:<10} {:>9} docs {:>12} tokens {:>8} sequences of {} in {} shard(s)",
                        s.docs,
                        s.tokens,
                        s.sequences,
                        config.seq_len,
                        s.shards.len()
                    );
                }
                if !summary.skipped {
                    eprintln!(
                        "corpus tokens pack: wrote {} in {:.2}s",
                        args.output.display(),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            Ok(())
        }
        TokensCommand::Report(args) => {
            let dir = std::path::Path::new(&args.inputs[0]);
            let report = if args.inputs.len() == 1 && dir.join(pack::MANIFEST).is_file() {
                pack::report(dir)?
            } else {
                let Some(vocab) = args.vocab else {
                    return Err(tokens::TokensError::Usage(
                        "documents need --vocab (or give a pack output directory)".into(),
                    ));
                };
                let spec = tokens::TokenizerSpec {
                    vocab,
                    pattern: args.pattern,
                    extras: corpus_models::tokenizer::QWEN_EXTRA_TOKENS,
                };
                let tokenizer = spec.load()?;
                let files = tokens::expand(&args.inputs)?;
                tokens::report_documents(&files, &tokenizer, args.threads)?
            };
            if let Some(path) = &args.html {
                tokens::write_output(path, tokens::report_html(&report).as_bytes())?;
            }
            if args.json {
                let mut json = serde_json::to_vec_pretty(&report)
                    .map_err(|e| tokens::TokensError::Usage(e.to_string()))?;
                json.push(b'\n');
                tokens::write_output(std::path::Path::new("-"), &json)
            } else {
                tokens::write_output(
                    std::path::Path::new("-"),
                    tokens::report_table(&report).as_bytes(),
                )
            }
        }
        TokensCommand::VocabDump { vocab, output } => {
            let tokenizer = corpus_models::tokenizer::Tokenizer::load(
                &corpus_models::tokenizer::VocabSource::parse(&vocab),
                &corpus_models::tokenizer::Pattern::Cl100k,
                0,
            )?;
            tokens::write_output(&output, &tokenizer.to_tiktoken())
        }
    }
}

fn export(cmd: ExportCommand) -> Result<(), corpus::commands::tokens::TokensError> {
    use corpus::commands::export;
    match cmd {
        ExportCommand::Megatron { dir, output, split } => {
            let s = export::megatron(&dir, &split, &output)?;
            eprintln!(
                "corpus export megatron: {} documents, {} tokens (dtype code {}) -> {}.bin/.idx",
                s.docs,
                s.tokens,
                s.dtype_code,
                output.display()
            );
        }
        ExportCommand::Docs {
            inputs,
            output,
            fields,
            format,
        } => {
            let format = match format {
                FormatArg::Jsonl => export::DocFormat::Jsonl,
                FormatArg::Parquet => export::DocFormat::Parquet,
            };
            let n = export::documents(&inputs, &fields, format, &output)?;
            eprintln!("corpus export docs: {n} documents -> {}", output.display());
        }
    }
    Ok(())
}

/// Calls `f` with the `text` of every JSON line of `path`; errors name the line.
fn for_each_text(
    path: &std::path::Path,
    mut f: impl FnMut(String) -> anyhow::Result<()>,
) -> Result<(), Failure> {
    use std::io::BufRead;
    let (reader, _) = corpus::io::open_decompressed(path)
        .with_context(|| format!("opening {}", path.display()))
        .map_err(|error| Failure { code: 2, error })?;
    let bad = |error: anyhow::Error| Failure { code: 1, error };
    for (n, line) in reader.lines().enumerate() {
        let line = line
            .with_context(|| format!("{}: line {}", path.display(), n + 1))
            .map_err(bad)?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not JSON", path.display(), n + 1))
            .map_err(bad)?;
        let Some(text) = value.get("text").and_then(|t| t.as_str()) else {
            return Err(bad(anyhow::anyhow!(
                "{}: line {}: no string field `text`",
                path.display(),
                n + 1
            )));
        };
        f(text.to_string()).map_err(bad)?;
    }
    Ok(())
}

fn scorer_features(input: &std::path::Path, output: &std::path::Path) -> Result<(), Failure> {
    use corpus_models::features;
    use std::io::Write;
    let fail = |error: anyhow::Error| Failure { code: 1, error };
    let file = corpus::io::AtomicFile::new(output);
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(file.tmp_path())
            .with_context(|| format!("creating {}", output.display()))
            .map_err(fail)?,
    );
    features::write_header(&mut out)
        .context("writing features")
        .map_err(fail)?;
    for_each_text(input, |text| {
        features::write_record(&mut out, &features::extract(&text)).context("writing features")
    })?;
    out.flush().context("writing features").map_err(fail)?;
    drop(out);
    file.commit()
        .with_context(|| format!("writing {}", output.display()))
        .map_err(fail)
}

fn scorer_score(args: ScoreArgs) -> Result<(), Failure> {
    use corpus_models::scorer::{Backend, Scorer};
    use std::io::Write;
    let backend = match args.backend.as_str() {
        "tract" => Backend::Tract,
        "onnxruntime" => Backend::OnnxRuntime {
            library: args.library.clone().ok_or_else(|| {
                usage("--backend onnxruntime needs --library PATH (or CORPUS_ONNXRUNTIME_LIB)")
            })?,
        },
        other => {
            return Err(usage(format!(
                "unknown backend `{other}`: tract or onnxruntime"
            )));
        }
    };
    let model = corpus_models::scorer::model_path(&args.model);
    let scorer = Scorer::load(&model, &backend, 1).map_err(|e| Failure {
        code: 2,
        error: e.into(),
    })?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut batch = Vec::with_capacity(args.batch_size.max(1));
    let mut flush = |batch: &mut Vec<String>| -> anyhow::Result<()> {
        for s in scorer.score_texts(batch)? {
            writeln!(out, "{s}")?;
        }
        batch.clear();
        Ok(())
    };
    for_each_text(&args.input, |text| {
        batch.push(text);
        if batch.len() >= args.batch_size.max(1) {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch).map_err(|error| Failure { code: 1, error })
}
