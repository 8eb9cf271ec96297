//! The `corpus` command line: parses flags, builds a plan, calls the library. Exit codes:
//! 0 success, 1 runtime failure (including shards that failed), 2 bad usage or config.

use anyhow::Context;
use clap::{Parser, Subcommand};
use corpus::config::{ConfigError, PipelineConfig};
use corpus::executor::{RunError, RunOptions, RunSummary};
use corpus::shard::TaskSpec;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "corpus",
    version,
    about = "Turn raw web crawls into a clean, deduplicated, tokenized pretraining corpus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline config over its inputs.
    Run(RunArgs),
    /// Extract the main text of web pages (WARC or HTML files) into JSON lines.
    Extract(ExtractArgs),
    /// List the stage kinds with their config fields and defaults.
    Stages {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Pipeline config (TOML).
    #[arg(default_value = "configs/default.toml")]
    config: PathBuf,
    /// Worker threads (default: executor.threads, or one per core).
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// Output directory (default: output.dir of the config, relative to the config file).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Override a config value, e.g. `--set length.min_chars=200`,
    /// `--set stages.0.max_chars=0`, `--set output.format=parquet`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0).
    #[arg(long)]
    task_index: Option<usize>,
    /// Number of tasks (default: SLURM_ARRAY_TASK_COUNT or CORPUS_TASK_COUNT, else 1).
    #[arg(long)]
    task_count: Option<usize>,
    /// Skip shards already completed in the output directory; redo the rest.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Redo this task's shards even if the output directory holds results.
    #[arg(long)]
    overwrite: bool,
    /// No progress bar and no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Args)]
struct ExtractArgs {
    /// WARC files, HTML files (.html, .html.gz) or directories holding HTML files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output JSONL file, `-` for standard output.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long, short = 't')]
    threads: Option<usize>,
    /// No summary on standard error.
    #[arg(long, short = 'q')]
    quiet: bool,
}

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Extract(args) => extract(args),
        Command::Stages { json } => stages(json).map_err(|error| Failure { code: 1, error }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

fn run(args: RunArgs) -> Result<(), Failure> {
    if !args.config.exists() && args.config == std::path::Path::new("configs/default.toml") {
        return Err(Failure {
            code: 2,
            error: anyhow::anyhow!(
                "configs/default.toml not found: run from the repository root or pass a config path"
            ),
        });
    }
    let config = PipelineConfig::load(&args.config, &args.set)?;
    let task = TaskSpec::resolve(args.task_index, args.task_count, |k| std::env::var(k).ok())?;
    let options = RunOptions {
        threads: args.threads,
        output_dir: args.output,
        task,
        resume: args.resume,
        overwrite: args.overwrite,
        progress: !args.quiet,
        max_warnings: if args.quiet { 0 } else { 20 },
    };
    let summary = corpus::executor::run(&config, &options)?;
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
