//! The `corpus` command line: parses flags, builds a plan, calls the library. Exit codes:
//! 0 success, 1 runtime failure (including shards that failed), 2 bad usage or config.

mod cli;

use clap::Parser;
use cli::*;
use corpus::commands::{self, pack, tokens};
use corpus::config::{ConfigError, PipelineConfig};
use corpus::executor::RunError;
use corpus::shard::TaskSpec;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An error with the exit code it deserves.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Self {
        Failure::new(e.is_usage(), e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::new(true, e)
    }
}

impl Failure {
    /// Exit code 2 for `usage`, else 1.
    fn new(usage: bool, e: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: if usage { 2 } else { 1 },
            error: e.into(),
        }
    }
}

/// Exit code 2 for errors of the command line (the library's `is_usage`), else 1.
macro_rules! by_kind {
    () => {
        |e| Failure::new(e.is_usage(), e)
    };
}

fn usage(message: impl std::fmt::Display) -> Failure {
    Failure::new(true, anyhow::anyhow!("{message}"))
}

fn runtime(message: impl std::fmt::Display) -> Failure {
    Failure::new(false, anyhow::anyhow!("{message}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Plan(args) => plan(args),
        Command::Dedup(args) => dedup(args),
        Command::Decontam(args) => decontam(args),
        Command::Extract(args) => extract(args),
        Command::Stages { json } => {
            print!("{}", commands::stages_text(json));
            Ok(())
        }
        Command::Langid(a) => {
            commands::langid::options(a.jsonl, a.field, a.min_confidence, a.prior, a.threads)
                .and_then(|options| commands::langid::command(a.file.as_deref(), &options))
                .map_err(by_kind!())
        }
        Command::Vocab(VocabCommand::Build(args)) => vocab_build(args),
        Command::Vocab(VocabCommand::Compare(args)) => vocab_compare(args),
        Command::Export(cmd) => export(cmd).map_err(by_kind!()),
        Command::Tokens(cmd) => tokens(cmd).map_err(by_kind!()),
        Command::Scorer(ScorerCommand::Score(a)) => {
            commands::scorer::backend(&a.backend, a.library)
                .and_then(|b| commands::scorer::score(&a.input, &a.model, &b, a.batch_size))
                .map_err(by_kind!())
        }
        Command::Scorer(ScorerCommand::Features { input, output }) => {
            commands::scorer::features(&input, &output).map_err(by_kind!())
        }
        Command::Report(a) => corpus::report::command(&a.run_dir, &a.output)
            .map_err(|e| Failure::new(e.is_invalid(), e)),
        Command::Sample(a) => a
            .options()
            .and_then(|o| {
                commands::sample::command(&a.run_dir, &o, a.output.as_deref(), a.jsonl, a.quiet)
            })
            .map_err(by_kind!()),
        Command::Ref(cmd) => reference(cmd).map_err(by_kind!()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {}", message(&error));
            ExitCode::from(code)
        }
    }
}

/// An error with its causes, each once: many errors already end with their cause's
/// text (`{path}: {source}`), which the chain would repeat.
fn message(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn load_config(path: &Path, set: &[String]) -> Result<PipelineConfig, Failure> {
    if !path.exists() && path == Path::new("configs/default.toml") {
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
    execute(&config, args.output, &args.common, args.pass)
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

/// Runs a config (one pass of it with `pass`) with the shared flags and reports the
/// outcome.
fn execute(
    config: &PipelineConfig,
    output: Option<PathBuf>,
    args: &CommonArgs,
    pass: Option<String>,
) -> Result<(), Failure> {
    let task = TaskSpec::resolve(args.task_index, args.task_count, |k| std::env::var(k).ok())?;
    let summary = corpus::plan::run(config, &args.options(task, output, pass))?;
    if !args.quiet {
        eprint!("{}", commands::run::summary_text(&summary, task));
    }
    match commands::run::failed_shards(&summary) {
        Some(message) => Err(runtime(message)),
        None => Ok(()),
    }
}

fn dedup(args: DedupArgs) -> Result<(), Failure> {
    if args.fuzzy || args.explain || args.pass.is_some() {
        let config = args.minhash();
        config.validate().map_err(usage)?;
        if args.explain {
            print!("{}", config.explain());
            return Ok(());
        }
        let (pipeline, pass) =
            commands::dedup::fuzzy(config, &args.fuzzy_options()).map_err(by_kind!())?;
        return execute(&pipeline, None, &args.common, pass);
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
    let stage = args.exact_stage();
    let config = commands::run::command_config(
        args.inputs,
        &output,
        stage,
        args.dropped,
        Some(args.format.into()),
    )?;
    execute(&config, None, &args.common, None)
}

fn decontam(args: DecontamArgs) -> Result<(), Failure> {
    use commands::decontam as dc;
    if let Some(DecontamCommand::Index {
        benchmarks,
        output,
        ngrams,
        quiet,
    }) = &args.command
    {
        let benchmarks = dc::parse_benchmarks(benchmarks).map_err(by_kind!())?;
        let s = dc::write_index(&benchmarks, ngrams.settings(), output).map_err(by_kind!())?;
        if !quiet {
            eprint!("{}", s.to_text(output));
        }
        return Ok(());
    }
    let output = args.output.clone().expect("clap requires it");
    // Benchmarks are indexed once, into OUT/decontam.index, which the stage loads.
    let index = dc::run_index(
        &args.benchmarks,
        args.index.clone(),
        args.ngrams.settings(),
        &output,
    )
    .map_err(by_kind!())?;
    let stage = args.stage(index.clone());
    let config =
        commands::run::command_config(args.inputs.clone(), &output, stage, args.dropped, None)?;
    execute(&config, None, &args.common, None)?;
    if let Some(path) = &args.report {
        dc::write_run_report(&index, &output, path).map_err(by_kind!())?;
    }
    Ok(())
}

fn extract(args: ExtractArgs) -> Result<(), Failure> {
    let options = corpus::extract_cmd::ExtractOptions {
        inputs: args.inputs,
        output: args.output,
        threads: args.threads,
        config: Default::default(),
        progress: !args.quiet,
    };
    let summary = corpus::extract_cmd::run(&options).map_err(by_kind!())?;
    for failure in &summary.failed {
        eprintln!("warning: skipped: {failure}");
    }
    if !args.quiet {
        eprintln!("{}", summary.to_text());
    }
    match summary.failed.len() {
        0 => Ok(()),
        n => Err(runtime(format!("{n} input(s) could not be read"))),
    }
}

fn vocab_build(args: VocabBuildArgs) -> Result<(), Failure> {
    use commands::vocab;
    let weights = vocab::parse_base_and_weights(&args.base, &args.weights).map_err(by_kind!())?;
    let quiet = args.quiet;
    let options = args.options(weights);
    let s = vocab::build(&options).map_err(by_kind!())?;
    if !quiet {
        eprint!("{}", s.to_text(&options.output));
    }
    if !s.reproduces_training() {
        return Err(runtime(
            "the vocabulary does not reproduce its trained segmentation under tiktoken \
             (a bug; the files were written for inspection)",
        ));
    }
    Ok(())
}

fn vocab_compare(args: VocabCompareArgs) -> Result<(), Failure> {
    use commands::vocab;
    let encoders = args
        .vocabs
        .iter()
        .map(|spec| vocab::Encoder::open(spec, &args.pattern))
        .collect::<Result<Vec<_>, _>>()
        .map_err(by_kind!())?;
    let cmp = vocab::compare(
        &encoders,
        &args.inputs,
        args.holdout,
        &args.langs,
        args.threads,
    )
    .map_err(by_kind!())?;
    print!("{}", cmp.to_text(args.json));
    Ok(())
}

fn tokens(cmd: TokensCommand) -> Result<(), tokens::TokensError> {
    match cmd {
        TokensCommand::Encode(a) => {
            let spec = a.tokenizer.spec();
            if let Some(line) = tokens::encode_command(&spec, &a.inputs, a.threads, &a.output)? {
                eprintln!("{line}");
            }
            Ok(())
        }
        TokensCommand::Pack(a) => {
            let config = a.config();
            let start = std::time::Instant::now();
            let spec = a.tokenizer.spec();
            let progress = !a.quiet;
            let summary =
                pack::pack_inputs(&a.inputs, &spec, &config, &a.output, a.threads, progress)?;
            if !a.quiet {
                let text = pack::summary_text(&summary, config.seq_len, &a.output, start.elapsed());
                eprint!("{text}");
            }
            Ok(())
        }
        TokensCommand::Report(a) => pack::report_command(
            &a.inputs,
            a.vocab,
            a.pattern,
            a.threads,
            a.json,
            a.html.as_deref(),
        ),
        TokensCommand::VocabDump { vocab, output } => {
            use corpus_models::tokenizer::{Pattern, Tokenizer, VocabSource};
            let tokenizer = Tokenizer::load(&VocabSource::parse(&vocab), &Pattern::Cl100k, 0)?;
            tokens::write_output(&output, &tokenizer.to_tiktoken())
        }
    }
}

fn export(cmd: ExportCommand) -> Result<(), tokens::TokensError> {
    use commands::export;
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
            let n = export::documents(&inputs, &fields, format.into(), &output)?;
            eprintln!("corpus export docs: {n} documents -> {}", output.display());
        }
    }
    Ok(())
}

/// The CPU backend's worker count: candle reads rayon's variable.
fn set_threads(threads: usize) {
    if threads > 0 {
        // SAFETY: called before any other thread of this process starts.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
    }
}

fn reference(cmd: RefCommand) -> Result<(), commands::reference::RefCmdError> {
    use commands::reference as r;
    match cmd {
        RefCommand::Train(a) => {
            set_threads(a.threads);
            let s = r::train_cmd(&a.options())?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s).expect("summary serializes")
            );
            if !a.quiet {
                eprint!("{}", r::train_summary_text(&s, &a.out));
            }
        }
        RefCommand::Eval(a) => {
            set_threads(a.threads);
            let rep = r::eval_cmd(&a.options())?;
            let text = serde_json::to_string_pretty(&rep).expect("report serializes");
            println!("{text}");
            if let Some(path) = a.json {
                std::fs::write(&path, text + "\n")
                    .map_err(|source| r::RefCmdError::Io { path, source })?;
            }
        }
    }
    Ok(())
}
