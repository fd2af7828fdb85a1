//! Configuration: one model ([`model::Config`]), loaded from TOML or UCI,
//! validated once, with errors that name file, line and key.
//!
//! Both formats end up in the same serde model: TOML directly, UCI by way of a
//! `toml::Table`. Each loader also produces a [`toml_file::Locations`] map
//! (key path → source line), so validation reports problems against the file
//! the user actually edited.

pub mod model;
pub mod mosquitto_import;
mod serde_message;
mod summary;
pub mod toml_file;
pub mod uci;
pub mod units;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::Config;
pub use summary::summary;

use toml_file::Locations;

/// Sorts problems by line, stable: problems found on one line stay in the
/// order found. (An unstable sort on (line, index) compiles smaller than a
/// stable sort.)
pub(crate) fn sort_by_line(problems: &mut Vec<ConfigProblem>) {
    let mut numbered: Vec<_> = std::mem::take(problems).into_iter().enumerate().collect();
    numbered.sort_unstable_by_key(|(i, p)| (p.line.unwrap_or(0), *i));
    problems.extend(numbered.into_iter().map(|(_, p)| p));
}

/// Where `edgemq run` looks first.
pub const DEFAULT_TOML: &str = "/etc/edgemq/edgemq.toml";
/// Where OpenWRT (and LuCI) keep the config.
pub const DEFAULT_UCI: &str = "/etc/config/edgemq";

/// One thing wrong with a config file, located as precisely as the source allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path (TOML, e.g. `bridge[0].topic[1].direction`) or UCI `config.section.option`.
    pub key: String,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        write!(f, " {}: {}", self.key, self.message)
    }
}

/// Every problem found in a config, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// In file order where lines are known.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// An error with a single problem.
    pub fn one(file: &Path, line: Option<usize>, key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![ConfigProblem {
                file: file.to_path_buf(),
                line,
                key: key.to_string(),
                message: message.into(),
            }],
        }
    }
}

/// Where the running configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file (TOML or UCI).
    File(PathBuf),
    /// No file: the built-in defaults.
    BuiltIn,
}

/// Reads, parses and fully validates (including that referenced files are
/// readable) a TOML or UCI config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::one(path, None, "(file)", format!("cannot read: {e}")))?;
    let (cfg, locs) = if is_uci(&text, path) {
        uci::parse_located(&text, path)?
    } else {
        toml_file::parse_located(&text, path)?
    };
    finish(cfg, &locs, path, validate::Checks::All)
}

/// The config `edgemq run` uses: `-c PATH`, else [`DEFAULT_TOML`] if it
/// exists, else [`DEFAULT_UCI`] if it exists, else the built-in defaults.
pub fn load_for_run(cli: Option<&Path>) -> Result<(Config, Source), ConfigError> {
    load_for_run_from(cli, Path::new(DEFAULT_TOML), Path::new(DEFAULT_UCI))
}

/// [`load_for_run`] with the default locations given (tests use temp dirs).
pub fn load_for_run_from(
    cli: Option<&Path>,
    default_toml: &Path,
    default_uci: &Path,
) -> Result<(Config, Source), ConfigError> {
    let chosen = match cli {
        Some(p) => Some(p),
        None if default_toml.exists() => Some(default_toml),
        None if default_uci.exists() => Some(default_uci),
        None => None,
    };
    match chosen {
        Some(p) => load(p).map(|c| (c, Source::File(p.to_path_buf()))),
        None => Ok((Config::default(), Source::BuiltIn)),
    }
}

/// Parses TOML text and checks every rule that does not touch the filesystem.
pub fn parse_toml(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let (cfg, locs) = toml_file::parse_located(text, file)?;
    finish(cfg, &locs, file, validate::Checks::NoFiles)
}

/// Parses UCI text and checks every rule that does not touch the filesystem.
pub fn parse_uci(text: &str, file: &Path) -> Result<Config, ConfigError> {
    let (cfg, locs) = uci::parse_located(text, file)?;
    finish(cfg, &locs, file, validate::Checks::NoFiles)
}

fn finish(
    cfg: Config,
    locs: &Locations,
    file: &Path,
    checks: validate::Checks,
) -> Result<Config, ConfigError> {
    let problems = validate::validate(&cfg, locs, file, checks);
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigError { problems })
    }
}

/// UCI if the path is under /etc/config/ or the first meaningful line is a
/// UCI statement (`config`, `package`, `option`, `list`).
pub fn is_uci(text: &str, path: &Path) -> bool {
    if path.starts_with("/etc/config") {
        return true;
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .is_some_and(|w| matches!(w, "config" | "package" | "option" | "list"))
}
