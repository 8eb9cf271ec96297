//! The `corpus` command line: parses flags, builds a plan, calls the library. Exit codes:
//! 0 success, 1 runtime failure (including shards that failed), 2 bad usage or config.

use anyhow::Context;
use clap::{Parser, Subcommand};
use corpus::commands::reference::RefCmdError;
use corpus::config::{ConfigError, PipelineConfig};
use corpus::executor::{RunError, RunOptions, RunSummary};
use corpus::shard::TaskSpec;
use corpus_models::reflm::RefError;
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
    /// Print the passes a config runs as: its stages cut at the barriers (exact and
    /// MinHash dedup, tokenize), each pass with its sharding, in execution order.
    Plan(PlanArgs),
    /// Deduplicate inputs on their own: `--exact` drops documents whose text (or URL)
    /// was seen earlier, keeping the first occurrence in input order.
    Dedup(DedupArgs),
    /// Drop documents that share n-grams with benchmark test sets.
    Decontam(DecontamArgs),
    /// Extract the main text of web pages (WARC or HTML files) into JSON lines.
    Extract(ExtractArgs),
    /// List the stage kinds with their config fields and defaults.
    Stages {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the language of each input line: `LANG<TAB>CONFIDENCE` (`und` when
    /// undecided), or with --jsonl the JSON object with `lang` and `lang_score` added.
    Langid(LangidArgs),
    /// Tokenize documents: encode to ids, pack training shards, report token counts.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Export for trainers: token shards to Megatron `.bin`/`.idx`, documents to
    /// JSONL/Parquet with chosen fields.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Build and compare tokenizer vocabularies.
    #[command(subcommand)]
    Vocab(VocabCommand),
    /// Run the text classifiers (quality, safety) on JSON lines.
    #[command(subcommand)]
    Scorer(ScorerCommand),
    /// Write a self-contained HTML report of a run (funnel, drops, language and source
    /// mix, score histograms, dedup, tokens) from the statistics files it wrote.
    Report(ReportRunArgs),
    /// The reference language model (Qwen architecture): train it on token shards and
    /// report validation perplexity.
    #[command(subcommand)]
    Ref(RefCommand),
}

#[derive(Subcommand)]
enum RefCommand {
    /// Train on the `train` split of token shards; checkpoints (safetensors with Hugging
    /// Face Qwen2 names + config.json) and metrics.jsonl go to --out. Rerunning with the
    /// same --out resumes from the latest checkpoint.
    Train(RefTrainArgs),
    /// Loss and perplexity of a checkpoint on a split of token shards, optionally at a
    /// longer context with NTK-aware RoPE and LogN scaling.
    Eval(RefEvalArgs),
}

#[derive(clap::Args)]
struct RefTrainArgs {
    /// Token shard directory (`corpus tokens pack` output); its `train` split is used.
    #[arg(long)]
    shards: PathBuf,
    /// Shard directory whose `validation` split is used for validation (default: --shards).
    #[arg(long)]
    val_shards: Option<PathBuf>,
    /// Model and training config (TOML with [model] and [train]).
    #[arg(long, default_value = "configs/ref-tiny.toml")]
    config: PathBuf,
    /// Output directory for checkpoints and metrics.
    #[arg(long)]
    out: PathBuf,
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`, docs/cuda.md).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Dense peak TFLOP/s of the device in the config's precision, for the model FLOPs
    /// utilization (MFU) in the summary (default: known for H100, H200 and A100 by name).
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Worker threads for the CPU backend (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
    /// Stop after this many steps in total, with a checkpoint (the schedule is unchanged;
    /// rerun to go on).
    #[arg(long)]
    stop_after: Option<u64>,
    /// No progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Args)]
struct RefEvalArgs {
    /// Token shard directory to score.
    #[arg(long)]
    shards: PathBuf,
    /// Split to score.
    #[arg(long, default_value = "validation")]
    split: String,
    /// Checkpoint directory, or a training --out directory (its latest checkpoint).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Context length of the scored windows (default: the training context).
    #[arg(long, default_value_t = 0)]
    context: usize,
    /// NTK-aware RoPE interpolation beyond the training context.
    #[arg(long)]
    ntk: bool,
    /// LogN attention scaling beyond the training context.
    #[arg(long)]
    logn: bool,
    /// Score at most this many windows (0: all).
    #[arg(long, default_value_t = 0)]
    max_windows: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Write the result as JSON to this file too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`, docs/cuda.md).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Worker threads for the CPU backend (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
struct ReportRunArgs {
    /// The output directory of `corpus run`.
    run_dir: PathBuf,
    /// The HTML file to write (`-`: standard output).
    #[arg(long, short = 'o', default_value = "report.html")]
    output: PathBuf,
}

#[derive(Subcommand)]
enum ScorerCommand {
    /// Print one score per input document (JSONL with a `text` field), in input order.
    Score(ScoreArgs),
    /// Write the hashed n-gram feature vectors of the documents of a JSONL file in the
    /// dump format the training recipe reads (models/recipes/train_classifiers.py).
    #[command(hide = true)]
    Features {
        /// JSONL (plain or compressed) with a `text` field.
        input: PathBuf,
        /// Output file.
        #[arg(long, short = 'o')]
        output: PathBuf,
    },
}

#[derive(clap::Args)]
struct ScoreArgs {
    /// JSONL (plain or compressed) with a `text` field.
    input: PathBuf,
    /// `quality`, `safety` (the shipped models) or the path of an ONNX model.
    #[arg(long, default_value = "quality")]
    model: String,
    /// Inference backend: tract (pure Rust) or onnxruntime (needs --library).
    #[arg(long, default_value = "tract")]
    backend: String,
    /// Path of libonnxruntime.so for --backend onnxruntime.
    #[arg(long, env = "CORPUS_ONNXRUNTIME_LIB")]
    library: Option<PathBuf>,
    /// Documents per inference call.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

#[derive(Subcommand)]
enum VocabCommand {
    /// Extend cl100k_base as Qwen did: drop its multi-digit number tokens and continue
    /// byte-level BPE training on corpus text until --size ordinary tokens. Writes
    /// FILE (tiktoken format, gzip when it ends in .gz) and a sidecar NAME.json.
    Build(VocabBuildArgs),
    /// Bytes per token of vocabularies on the documents of JSONL/Parquet files, by
    /// language (the `lang` field), as a Markdown table (or JSON).
    Compare(VocabCompareArgs),
}

#[derive(clap::Args)]
struct VocabBuildArgs {
    /// Base vocabulary (only cl100k is supported).
    #[arg(long, default_value = "cl100k")]
    base: String,
    /// Corpus files, directories or globs (JSONL or Parquet documents with `text`).
    #[arg(long, required = true, num_args = 1..)]
    corpus: Vec<PathBuf>,
    /// Ordinary tokens wanted (Qwen: 151643).
    #[arg(long, default_value_t = corpus_models::vocab_build::QWEN_ORDINARY_TOKENS)]
    size: usize,
    /// Pre-tokenization pattern: qwen, cl100k or a regex.
    #[arg(long, default_value = "qwen")]
    pattern: String,
    /// Output vocabulary file (.tiktoken or .tiktoken.gz).
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Stop when the best new token would occur fewer times than this.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Never add a token longer than this many bytes (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_token_bytes: usize,
    /// Hold out this fraction of documents (by a hash of their text) from training.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// Count the documents of a language this many times, e.g. `--weight zh=2`
    /// (0 leaves them out). Repeatable.
    #[arg(long = "weight", value_name = "LANG=N")]
    weights: Vec<String>,
    /// Reserved <|extra_N|> special tokens after <|endoftext|>, <|im_start|>, <|im_end|>.
    #[arg(long, default_value_t = corpus_models::tokenizer::QWEN_EXTRA_TOKENS)]
    extra_tokens: u32,
    /// Worker threads for counting (0: one per core); the result does not depend on it.
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
    /// No progress bars and no summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Subcommand)]
enum ExportCommand {
    /// A split of a `tokens pack` output as Megatron-LM's indexed dataset
    /// (PREFIX.bin + PREFIX.idx, one sequence per document with its <|endoftext|>).
    Megatron {
        /// The `tokens pack` output directory.
        dir: PathBuf,
        /// Output prefix (writes PREFIX.bin and PREFIX.idx).
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Which split.
        #[arg(long, default_value = "train")]
        split: String,
    },
    /// Documents (JSONL/Parquet) with only the chosen fields: `id`, `text`, `source`,
    /// any meta field (`lang`, `url`...), input fields kept in meta.extra, or dotted paths
    /// (`scores.quality`).
    Docs {
        /// JSONL or Parquet documents: files, directories or globs.
        #[arg(required = true)]
        inputs: Vec<String>,
        /// Output file (`-`: standard output, JSONL only).
        #[arg(long, short = 'o')]
        output: PathBuf,
        /// Fields, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "id,text")]
        fields: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: FormatArg,
    },
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Write `{"id": ..., "ids": [...]}` per document (no special tokens), in input order.
    Encode(EncodeArgs),
    /// Pack documents into shuffled sequences of token ids (Parquet or Arrow shards with
    /// document boundaries, a document table and manifest.json), split train/validation.
    Pack(PackArgs),
    /// Token counts by source, language and shard: of a pack output directory, or of
    /// documents (JSONL/Parquet, with --vocab).
    Report(ReportArgs),
    /// Write a vocabulary (`cl100k` or a file) in tiktoken's file format.
    VocabDump {
        /// `cl100k` or a tiktoken-format file (plain or gzip).
        vocab: String,
        /// Output file, `-` for standard output.
        #[arg(long, short = 'o', default_value = "-")]
        output: PathBuf,
    },
}

/// Tokenizer flags.
#[derive(clap::Args)]
struct TokenizerArgs {
    /// Vocabulary: `cl100k` (built in) or a tiktoken-format file (`BASE64TOKEN RANK` lines,
    /// plain or gzip), such as Qwen's qwen.tiktoken or models/assets/corpus152k.tiktoken.gz.
    #[arg(long)]
    vocab: String,
    /// Pre-tokenization: `qwen` (digits one by one), `cl100k`, or a regex.
    #[arg(long, default_value = "qwen")]
    pattern: String,
    /// Reserved `<|extra_N|>` tokens after `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
    #[arg(long, default_value_t = corpus_models::tokenizer::QWEN_EXTRA_TOKENS)]
    extra_tokens: u32,
}

impl TokenizerArgs {
    fn spec(&self) -> corpus::commands::tokens::TokenizerSpec {
        corpus::commands::tokens::TokenizerSpec {
            vocab: self.vocab.clone(),
            pattern: self.pattern.clone(),
            extras: self.extra_tokens,
        }
    }
}

#[derive(clap::Args)]
struct EncodeArgs {
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// JSONL or Parquet documents: files, directories or globs.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output JSONL file, `-` for standard output.
    #[arg(long, short = 'o', default_value = "-")]
    output: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
struct PackArgs {
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// JSONL or Parquet documents: files, directories or globs.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output directory.
    #[arg(long, short = 'o')]
    output: PathBuf,
    /// Tokens per sequence (context length).
    #[arg(long, default_value_t = 2048)]
    seq_len: usize,
    /// Share of documents (by hash of id) in the validation split.
    #[arg(long, default_value_t = 0.01)]
    val_fraction: f64,
    /// Shuffle seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Shard format.
    #[arg(long, value_enum, default_value = "parquet")]
    format: ShardFormatArg,
    /// Sequences per shard file.
    #[arg(long, default_value_t = 8192)]
    shard_sequences: usize,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
    /// No summary.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(clap::Args)]
struct VocabCompareArgs {
    /// A vocabulary: `cl100k` (built in) or `[LABEL=]PATH` of a tiktoken file (its
    /// pattern from the sidecar NAME.json when there is one, else --pattern). The first
    /// is the reference of the ratios. Repeatable.
    #[arg(long = "vocab", required = true)]
    vocabs: Vec<String>,
    /// Pattern for vocabulary files without a sidecar.
    #[arg(long, default_value = "qwen")]
    pattern: String,
    /// Measure only on the documents held out by `vocab build --holdout F`.
    #[arg(long, default_value_t = 0.0)]
    holdout: f64,
    /// Only these languages (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    langs: Vec<String>,
    /// JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
    /// Documents: JSONL/Parquet files, directories or globs.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ShardFormatArg {
    Parquet,
    Arrow,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// A pack output directory (with manifest.json), or JSONL/Parquet documents.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Vocabulary for documents: `cl100k` or a tiktoken file (plain or gzip).
    #[arg(long)]
    vocab: Option<String>,
    /// Pre-tokenization for documents: `qwen`, `cl100k` or a regex.
    #[arg(long, default_value = "qwen")]
    pattern: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML page with SVG charts of the mix.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
struct LangidArgs {
    /// Input file (plain, gzip or zstd); standard input when absent.
    file: Option<PathBuf>,
    /// Read JSON lines and write them back with `lang` and `lang_score`.
    #[arg(long)]
    jsonl: bool,
    /// The text field of JSONL input.
    #[arg(long, default_value = "text")]
    field: String,
    /// Report `und` below this confidence (0..=1).
    #[arg(long, default_value_t = 0.0)]
    min_confidence: f32,
    /// A language the input is known to be mostly in (`en`, the one language with a
    /// lexicon): short or unsure unaccented Latin lines with an English word are labelled
    /// `en` instead of `und` (the `langid` stage's `prior`).
    #[arg(long, value_name = "LANG")]
    prior: Option<String>,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    threads: usize,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Pipeline config (TOML).
    #[arg(default_value = "configs/default.toml")]
    config: PathBuf,
    /// Output directory (default: output.dir of the config, relative to the config file).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Override a config value, e.g. `--set length.min_chars=200`,
    /// `--set stages.0.max_chars=0`, `--set output.format=parquet`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run one pass of the config's plan for this task (the names `corpus plan CONFIG`
    /// lists; with one dedup stage also signatures, buckets, cluster, filter; see
    /// configs/cc-job.toml). Without it, every pass runs here.
    #[arg(long, value_name = "NAME")]
    pass: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// Pipeline config (TOML).
    #[arg(default_value = "configs/default.toml")]
    config: PathBuf,
    /// Override a config value, as for `corpus run`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print `{"passes": [{"name", "sharding", "tasks"}]}` instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct DedupArgs {
    /// Input files, directories or globs (WARC, JSONL, Parquet). Every pass of a
    /// multi-pass run must get the same inputs.
    inputs: Vec<String>,
    /// Output directory (the survivors; not needed by --pass signatures/buckets/cluster).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Exact dedup (hash of the dedup key, the exact text or the URL).
    #[arg(long, conflicts_with = "fuzzy")]
    exact: bool,
    /// MinHash/LSH near-duplicate dedup. Without --pass, all passes run here with the
    /// signatures in memory.
    #[arg(long)]
    fuzzy: bool,
    /// Run one pass of multi-pass dedup (sharded with --task-index/--task-count where
    /// it says): signatures (by input file), buckets (by band), cluster (one task),
    /// filter (by input file). With --exact: exact dedup across all tasks' inputs
    /// through the same passes.
    #[arg(long, value_enum, requires = "work_dir")]
    pass: Option<PassArg>,
    /// Work directory of fuzzy dedup's intermediate files (default: OUT/minhash).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Fuzzy: tokens per shingle (words; each CJK character is a token).
    #[arg(long, default_value_t = 5)]
    ngram: usize,
    /// Fuzzy: LSH bands.
    #[arg(long, default_value_t = 14)]
    bands: usize,
    /// Fuzzy: hashes per band.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Fuzzy: seed of the hash permutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fuzzy: join a candidate pair only when its Jaccard similarity reaches this.
    #[arg(long, default_value_t = 0.8)]
    threshold: f64,
    /// Fuzzy: how candidate pairs are checked against --threshold: exact (Jaccard of
    /// the shingle sets; the candidates are read again), estimate (from the
    /// signatures, no second read, less precise) or off (join every candidate pair, as
    /// FineWeb does).
    #[arg(long, value_enum, default_value = "exact")]
    verify: VerifyArg,
    /// Fuzzy: which document of a cluster survives.
    #[arg(long, value_enum, default_value = "first")]
    keep: KeepArg,
    /// Fuzzy: keep every document and write meta.extra.minhash (cluster, size,
    /// survivor) instead of dropping.
    #[arg(long)]
    annotate: bool,
    /// Fuzzy: print the threshold curve of the settings and exit.
    #[arg(long)]
    explain: bool,
    /// What exact dedup compares.
    #[arg(long, value_enum, default_value = "text")]
    key: KeyArg,
    /// Remember seen keys in a Bloom filter of fixed size instead of a hash set.
    #[arg(long)]
    bloom: bool,
    /// Bloom filter: distinct documents it is sized for.
    #[arg(long, default_value_t = 10_000_000)]
    expected_docs: u64,
    /// Bloom filter: false-positive rate at --expected-docs.
    #[arg(long, default_value_t = 1e-5)]
    fp_rate: f64,
    /// Also write dropped documents under OUT/dropped.
    #[arg(long)]
    dropped: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: FormatArg,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct DecontamArgs {
    #[command(subcommand)]
    command: Option<DecontamCommand>,
    /// Input files, directories or globs (WARC, JSONL, Parquet).
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Output directory.
    #[arg(long, short = 'o', required = true)]
    output: Option<PathBuf>,
    /// A benchmark as NAME=PATH (a .jsonl/.json/.csv file, optionally .gz, or a
    /// directory of them). Repeatable. The index is built once and written to
    /// OUT/decontam.index.
    #[arg(
        long = "benchmark",
        value_name = "NAME=PATH",
        required_unless_present = "index",
        conflicts_with = "index"
    )]
    benchmarks: Vec<String>,
    /// An index file written by `corpus decontam index`, instead of --benchmark.
    #[arg(long)]
    index: Option<PathBuf>,
    #[command(flatten)]
    ngrams: DecontamNgramArgs,
    /// drop: drop contaminated documents; remove-span: cut each matched n-gram out with
    /// --window characters on each side (GPT-3).
    #[arg(long, value_enum, default_value = "drop")]
    policy: DecontamPolicyArg,
    /// remove-span: characters removed on each side of a matched n-gram.
    #[arg(long, default_value_t = 200)]
    window: usize,
    /// remove-span: pieces shorter than this many characters are discarded.
    #[arg(long, default_value_t = 200)]
    min_piece_chars: usize,
    /// remove-span: documents cut into more pieces than this are dropped.
    #[arg(long, default_value_t = 10)]
    max_pieces: usize,
    /// Distinct matching n-grams that make a document contaminated.
    #[arg(long, default_value_t = 1)]
    min_matches: usize,
    /// Write a JSON report: per benchmark, contaminated documents, matched examples and
    /// sample n-grams.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Also write dropped documents under OUT/dropped.
    #[arg(long)]
    dropped: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(clap::Args)]
struct DecontamNgramArgs {
    /// n-gram length in tokens.
    #[arg(long, default_value_t = 13)]
    n: usize,
    /// n-grams in more test examples than this are ignored.
    #[arg(long, default_value_t = 10)]
    max_examples_per_ngram: usize,
    /// Fields of a test example shorter than n tokens but with at least this many are
    /// matched whole (0: never).
    #[arg(long, default_value_t = 8)]
    short_min_tokens: usize,
}

impl DecontamNgramArgs {
    fn settings(&self) -> corpus::stages::decontam::IndexSettings {
        corpus::stages::decontam::IndexSettings {
            n: self.n,
            max_examples_per_ngram: self.max_examples_per_ngram,
            short_min_tokens: self.short_min_tokens,
        }
    }
}

#[derive(Subcommand)]
enum DecontamCommand {
    /// Build the n-gram index of benchmarks once into a file that runs load
    /// (`--index`, or `index = "PATH"` in the decontam stage).
    Index {
        /// A benchmark as NAME=PATH. Repeatable.
        #[arg(long = "benchmark", value_name = "NAME=PATH", required = true)]
        benchmarks: Vec<String>,
        /// The index file to write.
        #[arg(long, short = 'o')]
        output: PathBuf,
        #[command(flatten)]
        ngrams: DecontamNgramArgs,
        /// No summary.
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum DecontamPolicyArg {
    Drop,
    RemoveSpan,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PassArg {
    Signatures,
    Buckets,
    Cluster,
    Filter,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum VerifyArg {
    Off,
    Estimate,
    Exact,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeepArg {
    First,
    Longest,
    BestQualityScore,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeyArg {
    Text,
    ExactText,
    Url,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Jsonl,
    Parquet,
}

/// Flags shared by commands that run the executor.
#[derive(clap::Args)]
struct CommonArgs {
    /// Worker threads (default: one per core).
    #[arg(long, short = 't')]
    threads: Option<usize>,
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
