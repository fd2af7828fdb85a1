//! The UCI syntax: lines of `package`, `config TYPE ['name']`, `option NAME
//! VALUE`, `list NAME VALUE`; single quotes (literal), double quotes and bare
//! words (backslash escapes), adjacent pieces concatenated, `#` comments.

use std::collections::HashMap;
use std::path::Path;

use super::super::toml_file::SYNTAX_KEY;
use super::super::{ConfigError, ConfigProblem};
use super::config_name;

/// One `option` or `list` value with its line.
#[derive(Debug, Clone)]
pub(crate) struct Opt {
    pub name: String,
    pub values: Vec<(String, usize)>,
    pub is_list: bool,
}

/// One `config TYPE ['name']` section.
#[derive(Debug, Clone)]
pub(crate) struct Section {
    pub ty: String,
    pub name: Option<String>,
    pub line: usize,
    pub display: String,
    pub opts: Vec<Opt>,
}

impl Section {
    pub fn get(&self, name: &str) -> Option<&(String, usize)> {
        self.opts
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.values.last())
    }
}

/// Splits the text into sections; every syntax error is reported.
pub(crate) fn lex(text: &str, file: &Path) -> Result<Vec<Section>, ConfigError> {
    let cfg_name = config_name(file);
    let mut sections: Vec<Section> = Vec::new();
    let mut per_type: HashMap<String, usize> = HashMap::new();
    let mut problems = Vec::new();
    let mut bad = |line: usize, key: &str, msg: String| {
        problems.push(ConfigProblem {
            file: file.to_path_buf(),
            line: Some(line),
            key: key.into(),
            message: msg,
        })
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let toks = match tokens(raw) {
            Ok(t) => t,
            Err(e) => {
                bad(line, SYNTAX_KEY, e);
                continue;
            }
        };
        let Some(kw) = toks.first() else { continue };
        match (kw.as_str(), toks.len()) {
            ("package", 2) => {}
            ("config", 2 | 3) => {
                let idx = per_type.entry(toks[1].clone()).or_insert(0);
                let display = match toks.get(2) {
                    Some(n) => format!("{cfg_name}.{n}"),
                    None => format!("{cfg_name}.@{}[{idx}]", toks[1]),
                };
                *idx += 1;
                let ok = valid_name(&toks[1]) && toks.get(2).is_none_or(|n| valid_name(n));
                if !ok {
                    bad(
                        line,
                        &display,
                        "section type and name may only use A-Z a-z 0-9 _".into(),
                    );
                }
                sections.push(Section {
                    ty: toks[1].clone(),
                    name: toks.get(2).cloned(),
                    line,
                    display,
                    opts: vec![],
                });
            }
            ("option" | "list", 3) => {
                let Some(sec) = sections.last_mut() else {
                    bad(
                        line,
                        &toks[1],
                        format!("`{kw}` before any `config` section"),
                    );
                    continue;
                };
                if !valid_name(&toks[1]) {
                    bad(
                        line,
                        &format!("{}.{}", sec.display, toks[1]),
                        "invalid option name".into(),
                    );
                    continue;
                }
                add_opt(sec, &toks[1], &toks[2], line, kw == "list");
            }
            (k, _) => bad(
                line,
                SYNTAX_KEY,
                format!(
                    "cannot parse {k:?} statement: expected `config TYPE ['name']`, `option NAME 'value'` or `list NAME 'value'`"
                ),
            ),
        }
    }
    if problems.is_empty() {
        Ok(sections)
    } else {
        Err(ConfigError { problems })
    }
}

fn add_opt(sec: &mut Section, name: &str, value: &str, line: usize, is_list: bool) {
    match sec.opts.iter_mut().find(|o| o.name == name) {
        // UCI: a repeated `option` replaces, a repeated `list` appends.
        Some(o) if is_list && o.is_list => o.values.push((value.to_string(), line)),
        Some(o) => {
            o.values = vec![(value.to_string(), line)];
            o.is_list = is_list;
        }
        None => sec.opts.push(Opt {
            name: name.into(),
            values: vec![(value.to_string(), line)],
            is_list,
        }),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits one line into words: quotes group, backslash escapes (not inside
/// single quotes), `#` at the start of a word starts a comment.
fn tokens(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return Ok(out),
            _ => {}
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
            match c {
                '\'' => loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                },
                '"' => loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => word.push(chars.next().ok_or("unterminated double quote")?),
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                },
                '\\' => word.push(chars.next().ok_or("backslash at end of line")?),
                c => word.push(c),
            }
        }
        out.push(word);
    }
}
