//! Pipeline configuration: a TOML file with `[input]`, `[output]`, `[executor]` and a
//! list of `[[stages]]`, plus `--set` overrides from the command line.

use crate::sink::OutputFormat;
use crate::source::InputConfig;
use corpus_stages::StageConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// What to read.
    pub input: InputConfig,
    /// Where and how to write.
    #[serde(default)]
    pub output: OutputConfig,
    /// Threads and batching.
    #[serde(default)]
    pub executor: ExecutorConfig,
    /// The stages, in order.
    #[serde(default)]
    pub stages: Vec<StageConfig>,
    /// The former `[tokenize]` table, read for old configs and turned into the last
    /// stage (`kind = "tokenize"`) with a notice.
    #[serde(default, skip_serializing)]
    pub tokenize: Option<corpus_stages::tokenize::Config>,
    /// Directory relative paths are taken from: the config file's directory.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// What the user should change in the config (deprecated forms), for the binary to
    /// print.
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// The `[output]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Output directory (relative to the config file's directory).
    pub dir: String,
    /// Document file format: `jsonl` (gzip JSON lines) or `parquet` (zstd).
    pub format: OutputFormat,
    /// Also write dropped documents, with the stage and reason, under `dropped/`.
    pub dropped: bool,
    /// Write the kept documents (`docs/`). `false` only for a config whose one stage is
    /// `tokenize` (what `corpus tokens pack` runs): the token ids are encoded from the
    /// input files, which stand for the documents, and no copy of them is written.
    #[serde(skip_serializing_if = "is_true")]
    pub docs: bool,
    /// gzip level of JSONL output, 1 (fastest) to 9 (smallest). Compression is most of
    /// the cost of writing: on HTML, level 3 writes files 4% larger than level 6 at 1.5x
    /// the speed (benches/README.md). Default 3.
    pub gzip_level: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: "out".into(),
            format: OutputFormat::Jsonl,
            dropped: false,
            docs: true,
            gzip_level: 3,
        }
    }
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The `[executor]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Worker threads; 0 means one per available core.
    pub threads: usize,
    /// Reader threads, each reading one input file at a time; 0 means as many as
    /// workers (never more than there are input files).
    pub readers: usize,
    /// Most documents in one batch.
    pub batch_docs: usize,
    /// Most input text bytes in one batch (a batch closes once it reaches this).
    pub batch_bytes: usize,
    /// Most batches in flight (read, being processed or waiting to be committed); 0
    /// means four per worker. Bounds memory together with the batch size.
    pub in_flight: usize,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            threads: 0,
            readers: 0,
            batch_docs: 512,
            batch_bytes: 8 << 20,
            in_flight: 0,
        }
    }
}

/// Errors in configuration: always the user's to fix, so the binary exits with 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or does not match the schema (names the field).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A `--set` override is malformed or names nothing.
    #[error("--set {spec}: {message}")]
    Override {
        /// The override as given.
        spec: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl PipelineConfig {
    /// Reads a config file and applies `--set` overrides (`KEY=VALUE`, see
    /// [`apply_override`]).
    pub fn load(path: &Path, overrides: &[String]) -> Result<PipelineConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Absolute, so that the paths a run records (config.toml, later passes' inputs)
        // mean the same from any working directory.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(base)
            .map(|p| crate::io::clean_path(&p))
            .unwrap_or_else(|_| base.to_path_buf());
        Self::from_toml(&text, path, &base, overrides)
    }

    /// Parses config text; `origin` names it in errors, `base` is the directory relative
    /// paths are taken from.
    pub fn from_toml(
        text: &str,
        origin: &Path,
        base: &Path,
        overrides: &[String],
    ) -> Result<PipelineConfig, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: origin.to_path_buf(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        for spec in overrides {
            apply_override(&mut table, spec)?;
        }
        let mut config: PipelineConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        config.base_dir = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base.to_path_buf()
        };
        if let Some(t) = config.tokenize.take() {
            if config
                .stages
                .iter()
                .any(|s| matches!(s, StageConfig::Tokenize(_)))
            {
                return Err(parse_err(
                    "both a [tokenize] table and a `tokenize` stage: keep the stage".into(),
                ));
            }
            config.notices.push(format!(
                "{}: the [tokenize] table is deprecated; write it as the last stage, \
                 [[stages]] kind = \"tokenize\" with the same fields",
                origin.display()
            ));
            config.stages.push(StageConfig::Tokenize(t));
        }
        for stage in &mut config.stages {
            stage.resolve_paths(&config.base_dir);
        }
        config.validate_settings()?;
        Ok(config)
    }

    /// A config for a one-off command (`corpus dedup`): the given input paths (relative
    /// to the current directory), output directory and stages, defaults elsewhere.
    pub fn for_command(
        paths: Vec<String>,
        output_dir: &Path,
        stages: Vec<StageConfig>,
    ) -> Result<PipelineConfig, ConfigError> {
        let config = PipelineConfig {
            input: InputConfig {
                paths,
                ..Default::default()
            },
            output: OutputConfig {
                dir: output_dir.to_string_lossy().into_owned(),
                ..Default::default()
            },
            executor: ExecutorConfig::default(),
            stages,
            tokenize: None,
            base_dir: PathBuf::from("."),
            notices: Vec::new(),
        };
        config.validate_settings()?;
        Ok(config)
    }

    /// Checks what serde cannot, fully: the settings, and building every stage (which
    /// reads the files stages refer to, such as blocklists: the executor builds them
    /// once when a run starts, so loading a config does not).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_settings()?;
        for (i, stage) in self.stages.iter().enumerate() {
            let built = match stage {
                StageConfig::Tokenize(t) => t.validate(),
                other => corpus_stages::build_stage(other).map(|_| ()),
            };
            built.map_err(|e| ConfigError::Invalid(format!("stages[{i}]: {e}")))?;
        }
        Ok(())
    }

    /// Builds the configured stages; an error names the stage's position.
    pub fn build_stages(&self) -> Result<Vec<corpus_stages::AnyStage>, ConfigError> {
        self.stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                corpus_stages::build_stage(stage)
                    .map_err(|e| ConfigError::Invalid(format!("stages[{i}]: {e}")))
            })
            .collect()
    }

    /// Checks the settings that need no stage to be built.
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        if !(1..=9).contains(&self.output.gzip_level) {
            return Err(ConfigError::Invalid(format!(
                "output.gzip_level must be 1 to 9, not {}",
                self.output.gzip_level
            )));
        }
        if self.executor.batch_docs == 0 {
            return Err(ConfigError::Invalid(
                "executor.batch_docs must be at least 1".into(),
            ));
        }
        if let Some(i) = self
            .stages
            .iter()
            .position(|s| matches!(s, StageConfig::Tokenize(_)))
            && i + 1 != self.stages.len()
        {
            return Err(ConfigError::Invalid(format!(
                "stages[{i}]: tokenize packs what the run keeps, so it is the last stage"
            )));
        }
        // (A pass of such a plan has no stage at all: tokenize is a pass of its own.)
        if !self.output.docs
            && !self
                .stages
                .iter()
                .all(|s| matches!(s, StageConfig::Tokenize(_)))
        {
            return Err(ConfigError::Invalid(
                "output.docs = false leaves the documents out, so the only stage must be \
                 tokenize (which then packs the input files' documents as they are)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The output directory, resolved against the config file's directory.
    pub fn output_dir(&self) -> PathBuf {
        if crate::remote::is_url(&self.output.dir) {
            return PathBuf::from(self.output.dir.trim_end_matches('/'));
        }
        crate::io::clean_path(&self.base_dir.join(&self.output.dir))
    }

    /// A fingerprint of every setting that decides the bytes of a shard's output: input
    /// options (not the paths: each marker records its own input file), the stages and
    /// the output format. Threads, batching and directories are left out, since the
    /// output does not depend on them.
    pub fn fingerprint(&self) -> String {
        let mut input = self.input.clone();
        input.paths.clear();
        input.list = None;
        input.list_base.clear();
        let mut table = toml::Table::new();
        table.insert(
            "input".into(),
            toml::Value::try_from(&input).unwrap_or(toml::Value::Boolean(false)),
        );
        table.insert(
            "stages".into(),
            toml::Value::try_from(&self.stages).unwrap_or(toml::Value::Boolean(false)),
        );
        table.insert(
            "format".into(),
            toml::Value::try_from(self.output.format).unwrap_or(toml::Value::Boolean(false)),
        );
        table.insert("dropped".into(), toml::Value::Boolean(self.output.dropped));
        table.insert(
            "gzip_level".into(),
            toml::Value::Integer(i64::from(self.output.gzip_level)),
        );
        let text = toml::to_string(&table).unwrap_or_default();
        format!("{:016x}", corpus_stages::fingerprint(&text))
    }

    /// [`fingerprint`](Self::fingerprint) of a run writing to `root`, with paths inside
    /// `root` (the work files of a dedup barrier) taken relative to it: an output
    /// directory moved elsewhere keeps its fingerprint and resumes.
    pub fn fingerprint_in(&self, root: &Path) -> String {
        let prefix = root.to_string_lossy();
        if prefix.is_empty() {
            return self.fingerprint();
        }
        let mut relative = self.clone();
        for stage in &mut relative.stages {
            if let StageConfig::MinhashDedup(c) = stage
                && let Ok(inside) = c.work_dir.strip_prefix(root)
            {
                c.work_dir = Path::new("$OUT").join(inside);
            }
        }
        relative.fingerprint()
    }

    /// The config as TOML, with resolved values and paths (written next to the outputs,
    /// where it loads again as the same config whatever folder it is read from).
    pub fn to_toml(&self) -> String {
        let mut resolved = self.clone();
        let locate = |p: &str| {
            crate::source::locate(&self.base_dir, p)
                .to_string_lossy()
                .into_owned()
        };
        let input = &mut resolved.input;
        input.paths = input.paths.iter().map(|p| locate(p)).collect();
        input.list = input.list.as_deref().map(locate);
        if !input.list_base.is_empty() {
            input.list_base = locate(&input.list_base);
        }
        resolved.output.dir = self.output_dir().to_string_lossy().into_owned();
        toml::to_string(&resolved).unwrap_or_default()
    }
}

/// Applies one `--set KEY=VALUE` override to a parsed config table.
///
/// `KEY` is a dotted path. A path starting with a stage kind (`length.min_chars`) or
/// `stages.N` (`stages.0.min_chars`) addresses a stage; a kind that appears more than
/// once must be addressed by index. Other paths address tables (`output.dir`,
/// `executor.threads`). `VALUE` is read as a TOML value (`10`, `true`, `"x"`,
/// `["a", "b"]`); if it does not parse, it is taken as a string.
pub fn apply_override(table: &mut toml::Table, spec: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        spec: spec.to_string(),
        message,
    };
    let (key, raw_value) = spec
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE".into()))?;
    let key = key.trim();
    let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw_value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw_value.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) || parts.len() < 2 && parts[0] != "stages" {
        if parts.len() == 1 && !parts[0].is_empty() {
            // A top-level key: let the schema check decide whether it exists.
            table.insert(parts[0].to_string(), value);
            return Ok(());
        }
        return Err(err(format!("bad key `{key}`")));
    }
    let is_table_name = matches!(parts[0], "input" | "output" | "executor");
    let (mut target, rest): (&mut toml::Table, &[&str]) = if parts[0] == "stages" || !is_table_name
    {
        let stages = table
            .get_mut("stages")
            .and_then(|s| s.as_array_mut())
            .ok_or_else(|| err("the config has no [[stages]]".into()))?;
        let (index, rest) = if parts[0] == "stages" {
            let i: usize = parts
                .get(1)
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err("expected stages.INDEX.FIELD".into()))?;
            (i, &parts[2..])
        } else {
            let matches: Vec<usize> = stages
                .iter()
                .enumerate()
                .filter(|(_, s)| s.get("kind").and_then(|k| k.as_str()) == Some(parts[0]))
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [i] => (*i, &parts[1..]),
                [] => {
                    return Err(err(format!(
                        "no stage of kind `{}` in the config",
                        parts[0]
                    )));
                }
                _ => {
                    return Err(err(format!(
                        "{} stages of kind `{}`: address one as stages.INDEX.FIELD (indices {:?})",
                        matches.len(),
                        parts[0],
                        matches
                    )));
                }
            }
        };
        let count = stages.len();
        let stage = stages
            .get_mut(index)
            .and_then(|s| s.as_table_mut())
            .ok_or_else(|| err(format!("no stage {index} (the config has {count})")))?;
        (stage, rest)
    } else {
        (table, &parts[..])
    };
    let Some((last, path)) = rest.split_last() else {
        return Err(err("missing field name".into()));
    };
    for part in path {
        target = target
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| err(format!("`{part}` is not a table")))?;
    }
    target.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_mentions;

    /// The fingerprint is XXH3-64 of the settings' text, stable across releases of
    /// Rust and of this program (a change would make every marker stale).
    #[test]
    fn the_fingerprint_is_stable() {
        assert_eq!(corpus_stages::fingerprint(""), 0x2d06_8005_38d3_94c2);
    }

    const BASE: &str = r#"
[input]
paths = ["data/*.warc.gz"]

[output]
dir = "out/x"

[[stages]]
kind = "length"
min_chars = 10
"#;

    fn parse(text: &str, overrides: &[&str]) -> Result<PipelineConfig, ConfigError> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let c = PipelineConfig::from_toml(text, Path::new("test.toml"), Path::new("/base"), &o)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn parses_and_resolves_paths() {
        let c = parse(BASE, &[]).unwrap();
        assert_eq!(c.output_dir(), Path::new("/base/out/x"));
        assert_eq!(c.stages.len(), 1);
        assert_eq!(c.executor, ExecutorConfig::default());
        // Round trip through the written form, which holds resolved paths: it loads as
        // the same config from any folder.
        let again = PipelineConfig::from_toml(
            &c.to_toml(),
            Path::new("elsewhere/config.toml"),
            Path::new("/elsewhere"),
            &[],
        )
        .unwrap();
        assert_eq!(again.input.paths, ["/base/data/*.warc.gz"]);
        assert_eq!(again.output_dir(), c.output_dir());
        assert_eq!(again.stages, c.stages);
        assert_eq!(again.fingerprint(), c.fingerprint());
        // Threads and the output dir do not change the fingerprint; a stage field does.
        let fp = c.fingerprint();
        assert_eq!(
            parse(BASE, &["executor.threads=7", "output.dir=o"])
                .unwrap()
                .fingerprint(),
            fp
        );
        assert_ne!(
            parse(BASE, &["length.min_chars=11"]).unwrap().fingerprint(),
            fp
        );
    }

    #[test]
    fn documents_are_left_out_only_of_a_plan_that_only_packs_tokens() {
        let e = parse(BASE, &["output.docs=false"]).unwrap_err();
        assert_mentions(&e.to_string(), &["output.docs", "tokenize"]);
        let only_tokens = BASE.replace(
            "kind = \"length\"\nmin_chars = 10",
            "kind = \"tokenize\"\nvocab = \"cl100k\"",
        );
        let c = parse(&only_tokens, &["output.docs=false"]).unwrap();
        assert!(!c.output.docs);
        assert!(parse(&only_tokens, &[]).unwrap().output.docs);
    }

    #[test]
    fn unknown_fields_and_kinds_are_named() {
        let e = parse(&BASE.replace("min_chars", "min_char"), &[]).unwrap_err();
        assert_mentions(&e.to_string(), &["min_char", "test.toml"]);
        let e = parse(&BASE.replace("\"length\"", "\"lenght\""), &[]).unwrap_err();
        assert!(e.to_string().contains("lenght"), "{e}");
        let e = parse(&format!("{BASE}\n[executor]\nthread = 2\n"), &[]).unwrap_err();
        assert!(e.to_string().contains("thread"), "{e}");
    }

    #[test]
    fn overrides_address_stages_and_tables() {
        let c = parse(
            BASE,
            &["length.min_chars=3", "executor.threads=2", "output.dir=o2"],
        )
        .unwrap();
        assert_eq!(c.executor.threads, 2);
        assert_eq!(c.output.dir, "o2");
        let corpus_stages::StageConfig::Length(l) = &c.stages[0] else {
            panic!("stage 0 is not `length`: {:?}", c.stages[0]);
        };
        assert_eq!(l.min_chars, 3);
        let c = parse(BASE, &["stages.0.max_chars=100"]).unwrap();
        // File paths of stages are taken from the config's folder, like inputs.
        let with_lists = format!(
            "{BASE}\n[[stages]]\nkind = \"decontam\"\nbenchmarks = [{{name = \"g\", path = \"b/g.jsonl\"}}]\n"
        );
        let t =
            PipelineConfig::from_toml(&with_lists, Path::new("t.toml"), Path::new("/base"), &[])
                .unwrap();
        let corpus_stages::StageConfig::Decontam(d) = &t.stages[1] else {
            panic!("not decontam")
        };
        assert_eq!(d.benchmarks[0].path, Path::new("/base/b/g.jsonl"));
        let corpus_stages::StageConfig::Length(l) = &c.stages[0] else {
            panic!("stage 0 is not `length`: {:?}", c.stages[0]);
        };
        assert_eq!(l.max_chars, 100);

        for (bad, needle) in [
            ("length.min_chars", "KEY=VALUE"),
            ("langid.x=1", "no stage of kind `langid`"),
            ("stages.5.min_chars=1", "no stage 5"),
            ("length.nope=1", "nope"),
            ("length.min_chars=\"x\"", "min_chars"),
            ("stages.0.max_chars=3", "max_chars"),
        ] {
            let e = parse(BASE, &[bad]).unwrap_err();
            assert!(e.to_string().contains(needle), "{bad}: {e}");
        }
        let two = format!("{BASE}\n[[stages]]\nkind = \"length\"\n");
        let e = parse(&two, &["length.min_chars=1"]).unwrap_err();
        assert!(e.to_string().contains("stages.INDEX"), "{e}");
    }
}
