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
    let mut lx = Lexer {
        file,
        cfg_name: config_name(file),
        sections: Vec::new(),
        per_type: HashMap::new(),
        problems: Vec::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        lx.statement(raw, i + 1);
    }
    if lx.problems.is_empty() {
        Ok(lx.sections)
    } else {
        Err(ConfigError {
            problems: lx.problems,
        })
    }
}

struct Lexer<'a> {
    file: &'a Path,
    cfg_name: String,
    sections: Vec<Section>,
    /// Anonymous sections are named `@type[n]`, counted per type as `uci show` does.
    per_type: HashMap<String, usize>,
    problems: Vec<ConfigProblem>,
}

impl Lexer<'_> {
    fn bad(&mut self, line: usize, key: &str, message: String) {
        self.problems.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: key.into(),
            message,
        });
    }

    fn statement(&mut self, raw: &str, line: usize) {
        let toks = match tokens(raw) {
            Ok(t) => t,
            Err(e) => return self.bad(line, SYNTAX_KEY, e),
        };
        let Some(kw) = toks.first() else { return };
        match (kw.as_str(), toks.len()) {
            ("package", 2) => {}
            ("config", 2 | 3) => self.section(&toks[1], toks.get(2), line),
            ("option" | "list", 3) => self.option(&toks[1], &toks[2], line, kw == "list"),
            (k, _) => self.bad(
                line,
                SYNTAX_KEY,
                format!(
                    "cannot parse {k:?} statement: expected `config TYPE ['name']`, \
                     `option NAME 'value'` or `list NAME 'value'`"
                ),
            ),
        }
    }

    fn section(&mut self, ty: &str, name: Option<&String>, line: usize) {
        let idx = self.per_type.entry(ty.to_string()).or_insert(0);
        let display = match name {
            Some(n) => format!("{}.{n}", self.cfg_name),
            None => format!("{}.@{ty}[{idx}]", self.cfg_name),
        };
        *idx += 1;
        if !valid_name(ty) || !name.is_none_or(|n| valid_name(n)) {
            let msg = "section type and name may only use A-Z a-z 0-9 _".into();
            self.bad(line, &display, msg);
        }
        self.sections.push(Section {
            ty: ty.to_string(),
            name: name.cloned(),
            line,
            display,
            opts: vec![],
        });
    }

    fn option(&mut self, name: &str, value: &str, line: usize, is_list: bool) {
        let kw = if is_list { "list" } else { "option" };
        let Some(sec) = self.sections.last_mut() else {
            let msg = format!("`{kw}` before any `config` section");
            return self.bad(line, name, msg);
        };
        if !valid_name(name) {
            let key = format!("{}.{name}", sec.display);
            return self.bad(line, &key, "invalid option name".into());
        }
        add_opt(sec, name, value, line, is_list);
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
