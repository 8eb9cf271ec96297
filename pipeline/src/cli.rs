//! The clap definitions of the `corpus` command line (flags, help texts, defaults) and
//! their translation into the library's option types. Binary-only: the library takes
//! typed options, not clap structs.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "corpus",
    version,
    about = "Turn raw web crawls into a clean, deduplicated, tokenized pretraining corpus"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Write a stratified random sample of a run's kept and dropped documents as a
    /// self-contained HTML page to review by eye (or JSON lines with --jsonl).
    Sample(SampleArgs),
    /// The reference language model (Qwen architecture): train it on token shards and
    /// report validation perplexity.
    #[command(subcommand)]
    Ref(RefCommand),
}

#[derive(Subcommand)]
pub(crate) enum RefCommand {
    /// Train on the `train` split of token shards; checkpoints (safetensors with Hugging
    /// Face Qwen2 names + config.json) and metrics.jsonl go to --out. Rerunning with the
    /// same --out resumes from the latest checkpoint.
    Train(RefTrainArgs),
    /// Loss and perplexity of a checkpoint on a split of token shards, optionally at a
    /// longer context with NTK-aware RoPE and LogN scaling.
    Eval(RefEvalArgs),
}

#[derive(clap::Args)]
pub(crate) struct RefTrainArgs {
    /// Token shard directory (`corpus tokens pack` output); its `train` split is used.
    #[arg(long)]
    pub(crate) shards: PathBuf,
    /// Shard directory whose `validation` split is used for validation (default: --shards).
    #[arg(long)]
    pub(crate) val_shards: Option<PathBuf>,
    /// Model and training config (TOML with [model] and [train]).
    #[arg(long, default_value = "configs/ref-tiny.toml")]
    pub(crate) config: PathBuf,
    /// Output directory for checkpoints and metrics.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`, docs/cuda.md).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Dense peak TFLOP/s of the device in the config's precision, for the model FLOPs
    /// utilization (MFU) in the summary (default: known for H100, H200 and A100 by name).
    #[arg(long)]
    pub(crate) peak_tflops: Option<f64>,
    /// Worker threads for the CPU backend (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
    /// Stop after this many steps in total, with a checkpoint (the schedule is unchanged;
    /// rerun to go on).
    #[arg(long)]
    pub(crate) stop_after: Option<u64>,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(clap::Args)]
pub(crate) struct RefEvalArgs {
    /// Token shard directory to score.
    #[arg(long)]
    pub(crate) shards: PathBuf,
    /// Split to score.
    #[arg(long, default_value = "validation")]
    pub(crate) split: String,
    /// Checkpoint directory, or a training --out directory (its latest checkpoint).
    #[arg(long)]
    pub(crate) checkpoint: PathBuf,
    /// Context length of the scored windows (default: the training context).
    #[arg(long, default_value_t = 0)]
    pub(crate) context: usize,
    /// NTK-aware RoPE interpolation beyond the training context.
    #[arg(long)]
    pub(crate) ntk: bool,
    /// LogN attention scaling beyond the training context.
    #[arg(long)]
    pub(crate) logn: bool,
    /// Score at most this many windows (0: all).
    #[arg(long, default_value_t = 0)]
    pub(crate) max_windows: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 4)]
    pub(crate) batch: usize,
    /// Write the result as JSON to this file too.
    #[arg(long)]
    pub(crate) json: Option<PathBuf>,
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`, docs/cuda.md).
    #[arg(long, default_value = "cpu")]
    pub(crate) device: String,
    /// Worker threads for the CPU backend (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
}

#[derive(clap::Args)]
pub(crate) struct ReportRunArgs {
    /// The output directory of `corpus run`.
    pub(crate) run_dir: PathBuf,
    /// The HTML file to write (`-`: standard output).
    #[arg(long, short = 'o', default_value = "report.html")]
    pub(crate) output: PathBuf,
}

#[derive(clap::Args)]
pub(crate) struct SampleArgs {
    /// The output directory of `corpus run` (local or s3://); completed shards are read.
    pub(crate) run_dir: PathBuf,
    /// The file to write (`-`: standard output). Default: review.html, or standard
    /// output with --jsonl.
    #[arg(long, short = 'o')]
    pub(crate) output: Option<PathBuf>,
    /// Documents per stratum.
    #[arg(long, default_value_t = 5)]
    pub(crate) n: usize,
    /// Seed of the sample: the same run and seed give the same bytes.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Strata: source, lang, stage, reason or cluster. Default: kept documents by source
    /// and language, dropped ones by stage and reason.
    #[arg(long)]
    pub(crate) by: Option<String>,
    /// Only documents whose FIELD is VALUE (status=kept|dropped, source, lang, stage,
    /// reason, flag, cluster, id, url); repeat for more (one field: any value; several
    /// fields: all).
    #[arg(long = "where", value_name = "FIELD=VALUE")]
    pub(crate) filters: Vec<String>,
    /// Write JSON lines (documents as written, with stratum, file and record) instead
    /// of the page.
    #[arg(long)]
    pub(crate) jsonl: bool,
    /// Characters of each text shown before its expander.
    #[arg(long, default_value_t = 600)]
    pub(crate) chars: usize,
    /// Show URLs as live links (default: as text).
    #[arg(long)]
    pub(crate) links: bool,
    /// Say nothing on standard error.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

impl SampleArgs {
    /// The library's options.
    pub(crate) fn options(
        &self,
    ) -> Result<corpus::commands::sample::SampleOptions, corpus::commands::sample::SampleError>
    {
        Ok(corpus::commands::sample::SampleOptions {
            n: self.n,
            seed: self.seed,
            by: self.by.as_deref().map(str::parse).transpose()?,
            filters: self
                .filters
                .iter()
                .map(|f| f.parse())
                .collect::<Result<_, _>>()?,
            chars: self.chars,
            links: self.links,
        })
    }
}

#[derive(Subcommand)]
pub(crate) enum ScorerCommand {
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
pub(crate) struct ScoreArgs {
    /// JSONL (plain or compressed) with a `text` field.
    pub(crate) input: PathBuf,
    /// `quality`, `safety` (the shipped models) or the path of an ONNX model.
    #[arg(long, default_value = "quality")]
    pub(crate) model: String,
    /// Inference backend: tract (pure Rust) or onnxruntime (needs --library).
    #[arg(long, default_value = "tract")]
    pub(crate) backend: String,
    /// Path of libonnxruntime.so for --backend onnxruntime.
    #[arg(long, env = "CORPUS_ONNXRUNTIME_LIB")]
    pub(crate) library: Option<PathBuf>,
    /// Documents per inference call.
    #[arg(long, default_value_t = 64)]
    pub(crate) batch_size: usize,
}

#[derive(Subcommand)]
pub(crate) enum VocabCommand {
    /// Extend cl100k_base as Qwen did: drop its multi-digit number tokens and continue
    /// byte-level BPE training on corpus text until --size ordinary tokens. Writes
    /// FILE (tiktoken format, gzip when it ends in .gz) and a sidecar NAME.json.
    Build(VocabBuildArgs),
    /// Bytes per token of vocabularies on the documents of JSONL/Parquet files, by
    /// language (the `lang` field), as a Markdown table (or JSON).
    Compare(VocabCompareArgs),
}

#[derive(clap::Args)]
pub(crate) struct VocabBuildArgs {
    /// Base vocabulary (only cl100k is supported).
    #[arg(long, default_value = "cl100k")]
    pub(crate) base: String,
    /// Corpus files, directories or globs (JSONL or Parquet documents with `text`).
    #[arg(long, required = true, num_args = 1..)]
    pub(crate) corpus: Vec<PathBuf>,
    /// Ordinary tokens wanted (Qwen: 151643).
    #[arg(long, default_value_t = corpus_models::vocab_build::QWEN_ORDINARY_TOKENS)]
    pub(crate) size: usize,
    /// Pre-tokenization pattern: qwen, cl100k or a regex.
    #[arg(long, default_value = "qwen")]
    pub(crate) pattern: String,
    /// Output vocabulary file (.tiktoken or .tiktoken.gz).
    #[arg(long, short = 'o')]
    pub(crate) output: PathBuf,
    /// Stop when the best new token would occur fewer times than this.
    #[arg(long, default_value_t = 2)]
    pub(crate) min_frequency: u64,
    /// Never add a token longer than this many bytes (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub(crate) max_token_bytes: usize,
    /// Hold out this fraction of documents (by a hash of their text) from training.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) holdout: f64,
    /// Count the documents of a language this many times, e.g. `--weight zh=2`
    /// (0 leaves them out). Repeatable.
    #[arg(long = "weight", value_name = "LANG=N")]
    pub(crate) weights: Vec<String>,
    /// Reserved <|extra_N|> special tokens after <|endoftext|>, <|im_start|>, <|im_end|>.
    #[arg(long, default_value_t = corpus_models::tokenizer::QWEN_EXTRA_TOKENS)]
    pub(crate) extra_tokens: u32,
    /// Worker threads for counting (0: one per core); the result does not depend on it.
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
    /// No progress bars and no summary.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Subcommand)]
pub(crate) enum ExportCommand {
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
pub(crate) enum TokensCommand {
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
pub(crate) struct TokenizerArgs {
    /// Vocabulary: `cl100k` (built in) or a tiktoken-format file (`BASE64TOKEN RANK` lines,
    /// plain or gzip), such as Qwen's qwen.tiktoken or models/assets/corpus152k.tiktoken.gz.
    #[arg(long)]
    pub(crate) vocab: String,
    /// Pre-tokenization: `qwen` (digits one by one), `cl100k`, or a regex.
    #[arg(long, default_value = "qwen")]
    pub(crate) pattern: String,
    /// Reserved `<|extra_N|>` tokens after `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
    #[arg(long, default_value_t = corpus_models::tokenizer::QWEN_EXTRA_TOKENS)]
    pub(crate) extra_tokens: u32,
}

impl TokenizerArgs {
    pub(crate) fn spec(&self) -> corpus::commands::tokens::TokenizerSpec {
        corpus::commands::tokens::TokenizerSpec {
            vocab: self.vocab.clone(),
            pattern: self.pattern.clone(),
            extras: self.extra_tokens,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct EncodeArgs {
    #[command(flatten)]
    pub(crate) tokenizer: TokenizerArgs,
    /// JSONL or Parquet documents: files, directories or globs.
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// Output JSONL file, `-` for standard output.
    #[arg(long, short = 'o', default_value = "-")]
    pub(crate) output: PathBuf,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
}

#[derive(clap::Args)]
pub(crate) struct PackArgs {
    #[command(flatten)]
    pub(crate) tokenizer: TokenizerArgs,
    /// JSONL or Parquet documents: files, directories or globs.
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// Output directory.
    #[arg(long, short = 'o')]
    pub(crate) output: PathBuf,
    /// Tokens per sequence (context length).
    #[arg(long, default_value_t = 2048)]
    pub(crate) seq_len: usize,
    /// Share of documents (by hash of id) in the validation split.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) val_fraction: f64,
    /// Shuffle seed.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Shard format.
    #[arg(long, value_enum, default_value = "parquet")]
    pub(crate) format: ShardFormatArg,
    /// Sequences per shard file.
    #[arg(long, default_value_t = 8192)]
    pub(crate) shard_sequences: usize,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
    /// No summary.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(clap::Args)]
pub(crate) struct VocabCompareArgs {
    /// A vocabulary: `cl100k` (built in) or `[LABEL=]PATH` of a tiktoken file (its
    /// pattern from the sidecar NAME.json when there is one, else --pattern). The first
    /// is the reference of the ratios. Repeatable.
    #[arg(long = "vocab", required = true)]
    pub(crate) vocabs: Vec<String>,
    /// Pattern for vocabulary files without a sidecar.
    #[arg(long, default_value = "qwen")]
    pub(crate) pattern: String,
    /// Measure only on the documents held out by `vocab build --holdout F`.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) holdout: f64,
    /// Only these languages (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    pub(crate) langs: Vec<String>,
    /// JSON instead of a Markdown table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
    /// Documents: JSONL/Parquet files, directories or globs.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum ShardFormatArg {
    Parquet,
    Arrow,
}

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// A pack output directory (with manifest.json), or JSONL/Parquet documents.
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// Vocabulary for documents: `cl100k` or a tiktoken file (plain or gzip).
    #[arg(long)]
    pub(crate) vocab: Option<String>,
    /// Pre-tokenization for documents: `qwen`, `cl100k` or a regex.
    #[arg(long, default_value = "qwen")]
    pub(crate) pattern: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write a self-contained HTML page with SVG charts of the mix.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
}

#[derive(clap::Args)]
pub(crate) struct LangidArgs {
    /// Input file (plain, gzip or zstd); standard input when absent.
    pub(crate) file: Option<PathBuf>,
    /// Read JSON lines and write them back with `lang` and `lang_score`.
    #[arg(long)]
    pub(crate) jsonl: bool,
    /// The text field of JSONL input.
    #[arg(long, default_value = "text")]
    pub(crate) field: String,
    /// Report `und` below this confidence (0..=1).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) min_confidence: f32,
    /// A language the input is known to be mostly in (`en`, the one language with a
    /// lexicon): short or unsure unaccented Latin lines with an English word are labelled
    /// `en` instead of `und` (the `langid` stage's `prior`).
    #[arg(long, value_name = "LANG")]
    pub(crate) prior: Option<String>,
    /// Worker threads (0: one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub(crate) threads: usize,
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Pipeline config (TOML).
    #[arg(default_value = "configs/default.toml")]
    pub(crate) config: PathBuf,
    /// Output directory (default: output.dir of the config, relative to the config file).
    #[arg(long, short = 'o')]
    pub(crate) output: Option<PathBuf>,
    /// Override a config value, e.g. `--set length.min_chars=200`,
    /// `--set stages.0.max_chars=0`, `--set output.format=parquet`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Run one pass of the config's plan for this task (the names `corpus plan CONFIG`
    /// lists; with one dedup stage also signatures, buckets, cluster, filter; see
    /// configs/cc-job.toml). Without it, every pass runs here.
    #[arg(long, value_name = "NAME")]
    pub(crate) pass: Option<String>,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(clap::Args)]
pub(crate) struct PlanArgs {
    /// Pipeline config (TOML).
    #[arg(default_value = "configs/default.toml")]
    pub(crate) config: PathBuf,
    /// Override a config value, as for `corpus run`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub(crate) set: Vec<String>,
    /// Print `{"passes": [{"name", "sharding", "tasks"}]}` instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub(crate) struct DedupArgs {
    /// Input files, directories or globs (WARC, JSONL, Parquet). Every pass of a
    /// multi-pass run must get the same inputs.
    pub(crate) inputs: Vec<String>,
    /// Output directory (the survivors; not needed by --pass signatures/buckets/cluster).
    #[arg(long, short = 'o')]
    pub(crate) output: Option<PathBuf>,
    /// Exact dedup (hash of the dedup key, the exact text or the URL).
    #[arg(long, conflicts_with = "fuzzy")]
    pub(crate) exact: bool,
    /// MinHash/LSH near-duplicate dedup. Without --pass, all passes run here with the
    /// signatures in memory.
    #[arg(long)]
    pub(crate) fuzzy: bool,
    /// Run one pass of multi-pass dedup (sharded with --task-index/--task-count where
    /// it says): signatures (by input file), buckets (by band), cluster (one task),
    /// filter (by input file). With --exact: exact dedup across all tasks' inputs
    /// through the same passes.
    #[arg(long, value_enum, requires = "work_dir")]
    pub(crate) pass: Option<PassArg>,
    /// Work directory of fuzzy dedup's intermediate files (default: OUT/minhash).
    #[arg(long)]
    pub(crate) work_dir: Option<PathBuf>,
    /// Fuzzy: tokens per shingle (words; each CJK character is a token).
    #[arg(long, default_value_t = 5)]
    pub(crate) ngram: usize,
    /// Fuzzy: LSH bands.
    #[arg(long, default_value_t = 14)]
    pub(crate) bands: usize,
    /// Fuzzy: hashes per band.
    #[arg(long, default_value_t = 8)]
    pub(crate) rows: usize,
    /// Fuzzy: seed of the hash permutations.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Fuzzy: join a candidate pair only when its Jaccard similarity reaches this.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) threshold: f64,
    /// Fuzzy: how candidate pairs are checked against --threshold: exact (Jaccard of
    /// the shingle sets; the candidates are read again), estimate (from the
    /// signatures, no second read, less precise) or off (join every candidate pair, as
    /// FineWeb does).
    #[arg(long, value_enum, default_value = "exact")]
    pub(crate) verify: VerifyArg,
    /// Fuzzy: which document of a cluster survives.
    #[arg(long, value_enum, default_value = "first")]
    pub(crate) keep: KeepArg,
    /// Fuzzy: keep every document and write meta.extra.minhash (cluster, size,
    /// survivor) instead of dropping.
    #[arg(long)]
    pub(crate) annotate: bool,
    /// Fuzzy: print the threshold curve of the settings and exit.
    #[arg(long)]
    pub(crate) explain: bool,
    /// What exact dedup compares.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) key: KeyArg,
    /// Remember seen keys in a Bloom filter of fixed size instead of a hash set.
    #[arg(long)]
    pub(crate) bloom: bool,
    /// Bloom filter: distinct documents it is sized for.
    #[arg(long, default_value_t = 10_000_000)]
    pub(crate) expected_docs: u64,
    /// Bloom filter: false-positive rate at --expected-docs.
    #[arg(long, default_value_t = 1e-5)]
    pub(crate) fp_rate: f64,
    /// Also write dropped documents under OUT/dropped.
    #[arg(long)]
    pub(crate) dropped: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "jsonl")]
    pub(crate) format: FormatArg,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct DecontamArgs {
    #[command(subcommand)]
    pub(crate) command: Option<DecontamCommand>,
    /// Input files, directories or globs (WARC, JSONL, Parquet).
    #[arg(required = true)]
    pub(crate) inputs: Vec<String>,
    /// Output directory.
    #[arg(long, short = 'o', required = true)]
    pub(crate) output: Option<PathBuf>,
    /// A benchmark as NAME=PATH (a .jsonl/.json/.csv file, optionally .gz, or a
    /// directory of them). Repeatable. The index is built once and written to
    /// OUT/decontam.index.
    #[arg(
        long = "benchmark",
        value_name = "NAME=PATH",
        required_unless_present = "index",
        conflicts_with = "index"
    )]
    pub(crate) benchmarks: Vec<String>,
    /// An index file written by `corpus decontam index`, instead of --benchmark.
    #[arg(long)]
    pub(crate) index: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) ngrams: DecontamNgramArgs,
    /// drop: drop contaminated documents; remove-span: cut each matched n-gram out with
    /// --window characters on each side (GPT-3).
    #[arg(long, value_enum, default_value = "drop")]
    pub(crate) policy: DecontamPolicyArg,
    /// remove-span: characters removed on each side of a matched n-gram.
    #[arg(long, default_value_t = 200)]
    pub(crate) window: usize,
    /// remove-span: pieces shorter than this many characters are discarded.
    #[arg(long, default_value_t = 200)]
    pub(crate) min_piece_chars: usize,
    /// remove-span: documents cut into more pieces than this are dropped.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_pieces: usize,
    /// Distinct matching n-grams that make a document contaminated.
    #[arg(long, default_value_t = 1)]
    pub(crate) min_matches: usize,
    /// Write a JSON report: per benchmark, contaminated documents, matched examples and
    /// sample n-grams.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Also write dropped documents under OUT/dropped.
    #[arg(long)]
    pub(crate) dropped: bool,
    #[command(flatten)]
    pub(crate) common: CommonArgs,
}

#[derive(clap::Args)]
pub(crate) struct DecontamNgramArgs {
    /// n-gram length in tokens.
    #[arg(long, default_value_t = 13)]
    pub(crate) n: usize,
    /// n-grams in more test examples than this are ignored.
    #[arg(long, default_value_t = 10)]
    pub(crate) max_examples_per_ngram: usize,
    /// Fields of a test example shorter than n tokens but with at least this many are
    /// matched whole (0: never).
    #[arg(long, default_value_t = 8)]
    pub(crate) short_min_tokens: usize,
}

impl DecontamNgramArgs {
    pub(crate) fn settings(&self) -> corpus::stages::decontam::IndexSettings {
        corpus::stages::decontam::IndexSettings {
            n: self.n,
            max_examples_per_ngram: self.max_examples_per_ngram,
            short_min_tokens: self.short_min_tokens,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum DecontamCommand {
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
pub(crate) enum DecontamPolicyArg {
    Drop,
    RemoveSpan,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PassArg {
    Signatures,
    Buckets,
    Cluster,
    Filter,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum VerifyArg {
    Off,
    Estimate,
    Exact,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeepArg {
    First,
    Longest,
    BestQualityScore,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum KeyArg {
    Text,
    ExactText,
    Url,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum FormatArg {
    Jsonl,
    Parquet,
}

/// Flags shared by commands that run the executor.
#[derive(clap::Args)]
pub(crate) struct CommonArgs {
    /// Worker threads (default: one per core).
    #[arg(long, short = 't')]
    pub(crate) threads: Option<usize>,
    /// This task's index (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, else 0).
    #[arg(long)]
    pub(crate) task_index: Option<usize>,
    /// Number of tasks (default: SLURM_ARRAY_TASK_COUNT or CORPUS_TASK_COUNT, else 1).
    #[arg(long)]
    pub(crate) task_count: Option<usize>,
    /// Skip shards already completed in the output directory; redo the rest.
    #[arg(long, conflicts_with = "overwrite")]
    pub(crate) resume: bool,
    /// Redo this task's shards even if the output directory holds results.
    #[arg(long)]
    pub(crate) overwrite: bool,
    /// No progress bar and no summary.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(clap::Args)]
pub(crate) struct ExtractArgs {
    /// WARC files, HTML files (.html, .html.gz) or directories holding HTML files.
    #[arg(required = true)]
    pub(crate) inputs: Vec<PathBuf>,
    /// Output JSONL file, `-` for standard output.
    #[arg(long, short = 'o')]
    pub(crate) output: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long, short = 't')]
    pub(crate) threads: Option<usize>,
    /// No summary on standard error.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

// The translation of flags into the library's option types.

impl CommonArgs {
    /// The executor's options for this task.
    pub(crate) fn options(
        &self,
        task: corpus::shard::TaskSpec,
        output_dir: Option<PathBuf>,
        pass: Option<String>,
    ) -> corpus::executor::RunOptions {
        corpus::executor::RunOptions {
            threads: self.threads,
            output_dir,
            task,
            resume: self.resume,
            overwrite: self.overwrite,
            progress: !self.quiet,
            max_warnings: if self.quiet { 0 } else { 20 },
            pass,
        }
    }
}

impl From<FormatArg> for corpus::sink::OutputFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => corpus::sink::OutputFormat::Jsonl,
            FormatArg::Parquet => corpus::sink::OutputFormat::Parquet,
        }
    }
}

impl From<FormatArg> for corpus::commands::export::DocFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Jsonl => corpus::commands::export::DocFormat::Jsonl,
            FormatArg::Parquet => corpus::commands::export::DocFormat::Parquet,
        }
    }
}

impl DedupArgs {
    /// The exact dedup stage of `--exact`.
    pub(crate) fn exact_stage(&self) -> corpus::stages::StageConfig {
        use corpus::stages::exact_dedup::{Config, Key, Mode};
        corpus::stages::StageConfig::ExactDedup(Config {
            key: match self.key {
                KeyArg::Text => Key::Text,
                KeyArg::ExactText => Key::ExactText,
                KeyArg::Url => Key::Url,
            },
            mode: if self.bloom { Mode::Bloom } else { Mode::Exact },
            expected_docs: self.expected_docs,
            false_positive_rate: self.fp_rate,
        })
    }

    /// The MinHash settings of `--fuzzy` (exact dedup's with `--exact --pass`).
    pub(crate) fn minhash(&self) -> corpus::stages::minhash::Config {
        use corpus::stages::minhash::{Action, Config, Keep, Method, Verify};
        let mut config = if self.exact {
            Config::exact()
        } else {
            Config {
                method: Method::Minhash,
                ngram: self.ngram,
                bands: self.bands,
                rows: self.rows,
                seed: self.seed,
                verify: match self.verify {
                    VerifyArg::Off => Verify::Off,
                    VerifyArg::Estimate => Verify::Estimate,
                    VerifyArg::Exact => Verify::Exact,
                },
                threshold: self.threshold,
                keep: match self.keep {
                    KeepArg::First => Keep::First,
                    KeepArg::Longest => Keep::Longest,
                    KeepArg::BestQualityScore => Keep::BestQualityScore,
                },
                action: Action::Drop,
                work_dir: PathBuf::new(),
            }
        };
        if self.annotate {
            config.action = Action::Annotate;
        }
        config
    }

    /// What the fuzzy passes are asked to do.
    pub(crate) fn fuzzy_options(&self) -> corpus::commands::dedup::FuzzyOptions {
        use corpus::commands::dedup::Pass;
        corpus::commands::dedup::FuzzyOptions {
            inputs: self.inputs.clone(),
            output: self.output.clone(),
            work_dir: self.work_dir.clone(),
            pass: self.pass.map(|p| match p {
                PassArg::Signatures => Pass::Signatures,
                PassArg::Buckets => Pass::Buckets,
                PassArg::Cluster => Pass::Cluster,
                PassArg::Filter => Pass::Filter,
            }),
            dropped: self.dropped,
            format: self.format.into(),
        }
    }
}

impl DecontamArgs {
    /// The decontam stage, loading `index`.
    pub(crate) fn stage(&self, index: PathBuf) -> corpus::stages::StageConfig {
        use corpus::stages::decontam::{Config, Policy};
        corpus::stages::StageConfig::Decontam(Config {
            index: Some(index),
            n: self.ngrams.n,
            max_examples_per_ngram: self.ngrams.max_examples_per_ngram,
            short_min_tokens: self.ngrams.short_min_tokens,
            min_matches: self.min_matches,
            policy: match self.policy {
                DecontamPolicyArg::Drop => Policy::Drop,
                DecontamPolicyArg::RemoveSpan => Policy::RemoveSpan,
            },
            window: self.window,
            min_piece_chars: self.min_piece_chars,
            max_pieces: self.max_pieces,
            ..Default::default()
        })
    }
}

impl PackArgs {
    /// The packing settings.
    pub(crate) fn config(&self) -> corpus::commands::pack::PackConfig {
        use corpus::commands::pack::{PackConfig, ShardFormat};
        PackConfig {
            seq_len: self.seq_len,
            val_fraction: self.val_fraction,
            seed: self.seed,
            format: match self.format {
                ShardFormatArg::Parquet => ShardFormat::Parquet,
                ShardFormatArg::Arrow => ShardFormat::Arrow,
            },
            shard_sequences: self.shard_sequences,
        }
    }
}

impl VocabBuildArgs {
    /// The build options, with the parsed `--weight`s and the command line recorded in
    /// the sidecar.
    pub(crate) fn options(
        self,
        lang_weights: Vec<(String, u64)>,
    ) -> corpus::commands::vocab::BuildOptions {
        let command = std::iter::once("corpus".to_string())
            .chain(std::env::args().skip(1))
            .collect::<Vec<_>>()
            .join(" ");
        corpus::commands::vocab::BuildOptions {
            corpus: self.corpus,
            output: self.output,
            pattern: self.pattern,
            vocab_size: self.size,
            min_frequency: self.min_frequency,
            max_token_bytes: self.max_token_bytes,
            holdout: self.holdout,
            lang_weights,
            extra_tokens: self.extra_tokens,
            threads: self.threads,
            progress: !self.quiet,
            command,
        }
    }
}

impl RefTrainArgs {
    /// The training options.
    pub(crate) fn options(&self) -> corpus::commands::reference::TrainArgs {
        corpus::commands::reference::TrainArgs {
            shards: self.shards.clone(),
            val_shards: self.val_shards.clone(),
            config: self.config.clone(),
            out: self.out.clone(),
            device: self.device.clone(),
            stop_after: self.stop_after,
            verbose: !self.quiet,
            peak_tflops: self.peak_tflops,
        }
    }
}

impl RefEvalArgs {
    /// The evaluation options.
    pub(crate) fn options(&self) -> corpus::commands::reference::EvalArgs {
        corpus::commands::reference::EvalArgs {
            shards: self.shards.clone(),
            split: self.split.clone(),
            checkpoint: self.checkpoint.clone(),
            context: self.context,
            ntk: self.ntk,
            logn: self.logn,
            max_windows: self.max_windows,
            batch: self.batch,
            device: self.device.clone(),
        }
    }
}
