//! Reading mosquitto.conf the way Mosquitto does: one directive per line,
//! `#` comments, and `include_dir` (only in the main file) pulling in that
//! directory's `*.conf` files in sorted order, each read as its own file
//! (Mosquitto forgets the current listener and bridge at every file start).

use std::cmp::Ordering;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The suffix Mosquitto requires of files in an include_dir.
const INCLUDE_SUFFIX: &str = ".conf";

/// One configuration line: its key, its arguments and where it came from.
#[derive(Debug, Clone)]
pub struct Directive {
    /// File the line is in (as given or as found in include_dir).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The option name.
    pub key: String,
    /// Whitespace-separated arguments after the key.
    pub args: Vec<String>,
    /// Everything after the key, trimmed: Mosquitto's string values.
    pub rest: String,
}

/// What the reader hands the translator, in Mosquitto's reading order.
#[derive(Debug)]
pub enum Item {
    /// A file starts: Mosquitto resets the current listener and bridge.
    FileStart,
    /// The file ends: the including file continues with its own context.
    FileEnd,
    /// A configuration line.
    Line(Directive),
    /// An `include_dir` line and the files it pulled in (or why none).
    Include(Directive, Result<Vec<PathBuf>, String>),
}

impl Directive {
    /// The line as written, with secrets masked, for comments.
    pub fn echo(&self) -> String {
        if self.rest.is_empty() {
            return self.key.clone();
        }
        if is_secret_key(&self.key) {
            return format!("{} ***", self.key);
        }
        format!("{} {}", self.key, self.rest)
    }

    /// `file:line` of the original.
    pub fn loc(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// A string value (rest of the line) and whether an inline `# comment`
    /// was cut from it. Mosquitto itself would keep the comment as part of
    /// the value, which is never what the author meant.
    pub fn string_value(&self) -> (String, bool) {
        match inline_comment_at(&self.rest) {
            Some(i) => (self.rest[..i].trim_end().to_string(), true),
            None => (self.rest.clone(), false),
        }
    }

    /// The first argument, if any.
    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }
}

fn is_secret_key(key: &str) -> bool {
    key.contains("password") || key.contains("psk") || key.contains("kpass")
}

/// Byte offset of a `#` that follows whitespace (an inline comment).
fn inline_comment_at(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    (1..bytes.len()).find(|&i| bytes[i] == b'#' && matches!(bytes[i - 1], b' ' | b'\t'))
}

/// Reads `main` and everything it includes, in Mosquitto's order.
pub fn read_all(main: &Path) -> Result<Vec<Item>> {
    let text = fs::read_to_string(main)
        .with_context(|| format!("cannot read mosquitto config {}", main.display()))?;
    let mut items = Vec::new();
    let base = main.parent().unwrap_or(Path::new("."));
    read_text(&main.display().to_string(), &text, Some(base), &mut items);
    Ok(items)
}

/// Appends one file's items; `include_base` is Some only for the main file,
/// the only one whose `include_dir` Mosquitto honours.
fn read_text(file: &str, text: &str, include_base: Option<&Path>, items: &mut Vec<Item>) {
    items.push(Item::FileStart);
    for (i, raw) in text.lines().enumerate() {
        let Some(d) = parse_line(file, i + 1, raw) else {
            continue;
        };
        match (d.key.as_str(), include_base) {
            ("include_dir", Some(base)) => include(d, base, items),
            _ => items.push(Item::Line(d)),
        }
    }
    items.push(Item::FileEnd);
}

fn include(d: Directive, base: &Path, items: &mut Vec<Item>) {
    let (dir, _) = d.string_value();
    let dir = resolve(base, &dir);
    match list_conf_files(&dir) {
        Err(e) => items.push(Item::Include(d, Err(e))),
        Ok(files) => {
            items.push(Item::Include(d.clone(), Ok(files.clone())));
            for f in files {
                match fs::read_to_string(&f) {
                    Ok(text) => read_text(&f.display().to_string(), &text, None, items),
                    Err(e) => items.push(Item::Include(
                        d.clone(),
                        Err(format!("cannot read {}: {e}", f.display())),
                    )),
                }
            }
        }
    }
}

/// Relative include_dir paths are taken relative to the main file's
/// directory (Mosquitto uses its working directory, usually `/`, which
/// would make a copied config unreadable).
fn resolve(base: &Path, dir: &str) -> PathBuf {
    let p = Path::new(dir);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The `*.conf` files of `dir`, in Mosquitto's order.
pub fn list_conf_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        fs::read_dir(dir).map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.len() > INCLUDE_SUFFIX.len() && name.ends_with(INCLUDE_SUFFIX) && p.is_file()
        })
        .collect();
    files.sort_unstable_by(|a, b| {
        mosquitto_order(a.as_os_str().as_bytes(), b.as_os_str().as_bytes())
    });
    Ok(files)
}

/// Mosquitto's include_dir order: character by character, case-insensitive
/// first, and at the first character differing only in case, by case.
fn mosquitto_order(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = x
            .to_ascii_uppercase()
            .cmp(&y.to_ascii_uppercase())
            .then(x.cmp(y));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// One line into a directive; None for blank lines and comments. Mosquitto
/// only treats `#` in the first column as a comment; indented ones are
/// accepted here too, as nobody means them as an option.
fn parse_line(file: &str, line: usize, raw: &str) -> Option<Directive> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    let mut parts = text.splitn(2, [' ', '\t']);
    let key = parts.next()?.to_string();
    let rest = parts.next().unwrap_or("").trim().to_string();
    let args = rest
        .split([' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    Some(Directive {
        file: file.to_string(),
        line,
        key,
        args,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_inline_comments() {
        assert!(parse_line("f", 1, "# comment").is_none());
        assert!(parse_line("f", 1, "   ").is_none());
        let d = parse_line("f", 3, "bridge_capath /etc/ssl/certs # important").unwrap();
        assert_eq!(d.key, "bridge_capath");
        assert_eq!(d.string_value(), ("/etc/ssl/certs".to_string(), true));
        assert_eq!(d.loc(), "f:3");
        let d = parse_line("f", 1, "topic\t#  out 2").unwrap();
        assert_eq!(d.args, vec!["#", "out", "2"]);
        let mut names = vec![
            "b.conf",
            "_x.conf",
            "aa.conf",
            "Ab.conf",
            "B.conf",
            "10-a.conf",
            "2.conf",
        ];
        names.sort_by(|a, b| mosquitto_order(a.as_bytes(), b.as_bytes()));
        assert_eq!(
            names,
            [
                "10-a.conf",
                "2.conf",
                "Ab.conf",
                "aa.conf",
                "B.conf",
                "b.conf",
                "_x.conf"
            ]
        );
        let d = parse_line("f", 1, "remote_password hunter2").unwrap();
        assert_eq!(d.echo(), "remote_password ***");
    }
}
