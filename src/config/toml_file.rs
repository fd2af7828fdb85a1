//! Loading a TOML config file into the model, with file:line:key errors.
//!
//! The text is parsed twice: once into the spanned `toml::de::DeTable` (to
//! learn the line of every key and to turn an error's byte span into a dotted
//! key path such as `bridge[0].topic[1].direction`), once by serde into the
//! model. [`Locations`] is shared with the UCI loader, which fills it from its
//! own line numbers.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::Config;
use super::serde_message::{first_line, leaf, missing_field, placeholder, plain_words};
use super::{ConfigError, ConfigProblem};

/// Key used for problems that are about the syntax, not a key.
pub const SYNTAX_KEY: &str = "(syntax)";

/// Where each key of a loaded config came from: key path → 1-based line,
/// and, for UCI, how a key path is spelled in UCI.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    lines: HashMap<String, usize>,
    /// UCI only: TOML table path → UCI section name (`edgemq.central`), longest match wins.
    sections: Vec<(String, String)>,
    /// TOML key path of a value → byte span, for mapping serde errors back to keys.
    spans: Vec<(Range<usize>, String)>,
}

impl Locations {
    /// Records that `path` is written on `line`.
    pub fn set_line(&mut self, path: &str, line: usize) {
        self.lines.entry(path.to_string()).or_insert(line);
    }

    /// Records that the TOML table `path` is the UCI section `name`.
    pub fn set_section(&mut self, path: &str, name: &str) {
        self.sections.push((path.to_string(), name.to_string()));
    }

    /// Whether these locations are in a UCI file.
    pub fn is_uci(&self) -> bool {
        !self.sections.is_empty()
    }

    /// Where the value of the key (or value) spanning `offset` ends.
    pub fn value_end(&self, offset: usize) -> Option<usize> {
        let path = self.path_at(offset)?;
        self.spans
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(r, _)| r.end)
            .max()
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            p = parent(p)?;
        }
    }

    /// How `path` is named to the user: itself for TOML, `config.section.option` for UCI.
    pub fn name(&self, path: &str) -> String {
        let best = self
            .sections
            .iter()
            .filter(|(pre, _)| is_prefix(pre, path))
            .max_by_key(|(pre, _)| pre.len());
        match best {
            None => path.to_string(),
            Some((pre, sec)) => {
                let rest = path[pre.len()..].trim_start_matches('.');
                match super::uci::option_name(rest) {
                    Some(opt) => format!("{sec}.{opt}"),
                    None => sec.clone(),
                }
            }
        }
    }

    /// A problem at `path`, located and named.
    pub fn problem(&self, file: &Path, path: &str, message: impl Into<String>) -> ConfigProblem {
        ConfigProblem {
            file: file.to_path_buf(),
            line: self.line(path),
            key: self.name(path),
            message: message.into(),
        }
    }

    /// The deepest key path whose source span contains `offset`.
    fn path_at(&self, offset: usize) -> Option<&str> {
        self.spans
            .iter()
            .filter(|(r, _)| r.start <= offset && offset < r.end.max(r.start + 1))
            .min_by_key(|(r, p)| (r.end - r.start, usize::MAX - p.len()))
            .map(|(_, p)| p.as_str())
    }
}

fn is_prefix(pre: &str, path: &str) -> bool {
    pre.is_empty()
        || path == pre
        || (path.starts_with(pre) && matches!(path.as_bytes().get(pre.len()), Some(b'.' | b'[')))
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `` → None.
pub fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    })
}

/// Parses TOML text into the model and the line map; no validation.
pub fn parse_located(text: &str, file: &Path) -> Result<(Config, Locations), ConfigError> {
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        ConfigError::one(file, line, SYNTAX_KEY, first_line(e.message()))
    })?;
    let locs = locate(&table, text);
    let cfg = deserialize(text, file, &locs, &locs)?;
    Ok((cfg, locs))
}

/// The line and span of every key and value of a parsed document.
pub fn locate(table: &Spanned<DeTable<'_>>, text: &str) -> Locations {
    let mut locs = Locations::default();
    let starts = LineStarts::new(text);
    walk_table(table.get_ref(), "", &starts, &mut locs);
    locs
}

/// At most this many problems serde finds in one file (one per pass).
const MAX_SERDE_PROBLEMS: usize = 20;

/// Deserializes `text` with serde; errors are located with `spans` (built from
/// `text`) and reported through `report` (the user's file's locations).
///
/// serde stops at its first error. So that one `edgemq check` shows every
/// misspelt key and bad value, the line of each error is blanked (same
/// length, so every span stays valid) and the text deserialized again, until
/// it loads or the next error could be a consequence of the blanking: a
/// required key it removed, a multi-line value, a table header, a syntax error.
pub fn deserialize(
    text: &str,
    file: &Path,
    spans: &Locations,
    report: &Locations,
) -> Result<Config, ConfigError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut problems: Vec<ConfigProblem> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    while problems.len() < MAX_SERDE_PROBLEMS {
        let de = match toml::de::Deserializer::parse(&text) {
            Ok(de) => de,
            Err(_) if !problems.is_empty() => break,
            Err(e) => {
                let line = e.span().map(|s| line_of(&text, s.start));
                return Err(ConfigError::one(
                    file,
                    line,
                    SYNTAX_KEY,
                    first_line(e.message()),
                ));
            }
        };
        let e = match Config::deserialize(de) {
            Ok(cfg) if problems.is_empty() => return Ok(cfg),
            Ok(_) => break,
            Err(e) => e,
        };
        let missing = missing_field(e.message()).map(str::to_string);
        if missing.is_some_and(|m| removed.contains(&m)) {
            break;
        }
        let problem = serde_problem(&e, file, spans, report);
        if problems
            .iter()
            .any(|p| p.key == problem.key && p.line == problem.line)
        {
            break;
        }
        problems.push(problem);
        // A wrong-typed value is replaced by one of the right type where it fits, so a
        // required key stays present and the rest of the file is still checked.
        let stand_in = placeholder(e.message());
        let Some((blanked, key, kept)) = e.span().and_then(|s| {
            let end = spans.value_end(s.start).unwrap_or(s.end).max(s.end);
            blank_key_lines(&text, s.start, end, stand_in)
        }) else {
            break;
        };
        text = std::borrow::Cow::Owned(blanked);
        if !kept {
            removed.push(key);
        }
    }
    super::sort_by_line(&mut problems);
    Err(ConfigError { problems })
}

/// One serde error as a located problem.
fn serde_problem(
    e: &toml::de::Error,
    file: &Path,
    spans: &Locations,
    report: &Locations,
) -> ConfigProblem {
    let mut path = e
        .span()
        .and_then(|s| spans.path_at(s.start))
        .unwrap_or("")
        .to_string();
    let mut message = plain_words(&first_line(e.message()));
    if path.ends_with("password") || path.ends_with("password_hash") {
        // serde quotes the offending value; for a secret that would print it.
        message = "must be a string (value not shown: it is a secret)".into();
    }
    if let Some(field) = missing_field(e.message()) {
        path = join(&path, field);
        let what = if report.is_uci() { "option" } else { "key" };
        message = format!("required {what} `{}` is missing", leaf(&report.name(&path)));
    }
    let mut problem = report.problem(file, &path, message);
    if problem.key.is_empty() {
        problem.key = "(top level)".into();
    }
    problem
}

/// `text` with the lines from the one holding `start` through the one holding
/// `end` (a `key = value` entry, its value possibly spanning lines) turned into
/// spaces, newlines kept, or into `key=stand_in` and spaces where that fits in the
/// first line; that key's last component; and whether the key was kept. None unless
/// the first line is such an entry.
fn blank_key_lines(
    text: &str,
    start: usize,
    end: usize,
    stand_in: Option<&str>,
) -> Option<(String, String, bool)> {
    let at = start.min(text.len());
    let first = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let last = text[end.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| end.min(text.len()) + i);
    let line = text[first..].lines().next()?;
    if line.trim_start().starts_with('[') {
        return None;
    }
    let (key_text, value) = line.split_once('=')?;
    if value.trim().is_empty() {
        return None;
    }
    let key = key_text
        .trim()
        .rsplit('.')
        .next()?
        .trim()
        .trim_matches('"')
        .to_string();
    // byte for byte, so a multi-byte character leaves as many spaces as it had bytes
    let mut blank: String = text[first..last]
        .bytes()
        .map(|b| if b == b'\n' { '\n' } else { ' ' })
        .collect();
    // Spans index bytes of the original text: the stand-in must not make the line longer.
    let entry = stand_in.map(|v| format!("{}={v}", key_text.trim()));
    let kept = match entry {
        Some(e) if e.len() <= line.len() => {
            blank.replace_range(..e.len(), &e);
            true
        }
        _ => false,
    };
    let text = format!("{}{blank}{}", &text[..first], &text[last..]);
    Some((text, key, kept))
}

/// `a` + `b` → `a.b`; `` + `b` → `b`.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Byte offsets where lines begin, so each key's line is a binary search.
struct LineStarts(Vec<usize>);

impl LineStarts {
    fn new(text: &str) -> Self {
        let nl = text.bytes().enumerate().filter(|(_, b)| *b == b'\n');
        LineStarts(std::iter::once(0).chain(nl.map(|(i, _)| i + 1)).collect())
    }
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|s| *s <= offset)
    }
}

fn walk_table(table: &DeTable<'_>, path: &str, text: &LineStarts, locs: &mut Locations) {
    for (k, v) in table.iter() {
        let p = join(path, k.get_ref());
        let key_span = k.span();
        locs.set_line(&p, text.line(key_span.start));
        locs.spans.push((key_span, p.clone()));
        walk_value(v, &p, text, locs);
    }
}

fn walk_value(v: &Spanned<DeValue<'_>>, path: &str, text: &LineStarts, locs: &mut Locations) {
    let span = v.span();
    locs.spans.push((span.clone(), path.to_string()));
    match v.get_ref() {
        DeValue::Table(t) => walk_table(t, path, text, locs),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                locs.set_line(&p, text.line(item.span().start));
                walk_value(item, &p, text, locs);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents() {
        assert_eq!(parent("bridge[0].topic[1].qos"), Some("bridge[0].topic[1]"));
        assert_eq!(parent("bridge[0].topic[1]"), Some("bridge[0].topic"));
        assert_eq!(parent("bridge"), Some(""));
        assert_eq!(parent(""), None);
    }

    #[test]
    fn serde_error_names_nested_key_and_line() {
        let text = "[[bridge]]\nname = \"a\"\naddresses = [\"h:1\"]\n[[bridge.topic]]\npattern = \"x\"\n[[bridge.topic]]\npattern = \"y\"\ndirection = \"outt\"\n";
        let err = parse_located(text, Path::new("f.toml")).unwrap_err();
        let p = &err.problems[0];
        assert_eq!(p.key, "bridge[0].topic[1].direction");
        assert_eq!(p.line, Some(8));
    }
}
