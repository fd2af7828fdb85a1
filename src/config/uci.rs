//! Loading OpenWRT UCI (/etc/config/edgemq) into the same model.
//!
//! A real UCI parser (`config`/`option`/`list`/`package`, single and double
//! quotes, backslash escapes, comments) feeds a `toml::Table` laid out exactly
//! like the TOML file (schema: /work/wt/UCI.md, docs/configuration.md), which
//! the TOML loader then deserializes: one model, one set of defaults and rules.
//! Every key path is mapped back to its UCI line and `config.section.option`.

use std::collections::HashMap;
use std::path::Path;

use toml::{Table, Value};

use super::model::Config;
use super::toml_file::{self, Locations, SYNTAX_KEY, join};
use super::{ConfigError, ConfigProblem};

/// How a UCI string becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Bool,
    Int,
    List,
}

/// (section type, UCI option, TOML key path inside the section's table, kind).
const SCHEMA: &[(&str, &str, &str, Kind)] = &[
    ("edgemq", "data_dir", "data_dir", Kind::Str),
    ("edgemq", "user", "user", Kind::Str),
    ("edgemq", "log_level", "log_level", Kind::Str),
    ("edgemq", "worker_threads", "worker_threads", Kind::Int),
    ("edgemq", "sys_interval", "sys_interval", Kind::Str),
    (
        "edgemq",
        "max_connections",
        "limits.max_connections",
        Kind::Int,
    ),
    (
        "edgemq",
        "max_packet_size",
        "limits.max_packet_size",
        Kind::Str,
    ),
    (
        "edgemq",
        "connect_timeout",
        "limits.connect_timeout",
        Kind::Str,
    ),
    ("edgemq", "max_inflight", "limits.max_inflight", Kind::Int),
    (
        "edgemq",
        "max_queued_messages",
        "limits.max_queued_messages",
        Kind::Int,
    ),
    ("edgemq", "queue_full", "limits.queue_full", Kind::Str),
    ("edgemq", "max_keepalive", "limits.max_keepalive", Kind::Int),
    (
        "edgemq",
        "session_expiry",
        "limits.session_expiry",
        Kind::Str,
    ),
    (
        "edgemq",
        "max_topic_alias",
        "limits.max_topic_alias",
        Kind::Int,
    ),
    (
        "edgemq",
        "receive_maximum",
        "limits.receive_maximum",
        Kind::Int,
    ),
    ("edgemq", "password_file", "auth.password_file", Kind::Str),
    ("edgemq", "acl_file", "auth.acl_file", Kind::Str),
    ("user", "username", "username", Kind::Str),
    ("user", "password", "password", Kind::Str),
    ("user", "password_hash", "password_hash", Kind::Str),
    ("listener", "bind", "bind", Kind::Str),
    ("listener", "allow_anonymous", "allow_anonymous", Kind::Bool),
    ("listener", "tls_cert", "tls.cert", Kind::Str),
    ("listener", "tls_key", "tls.key", Kind::Str),
    ("listener", "tls_client_ca", "tls.client_ca", Kind::Str),
    (
        "listener",
        "tls_identity_as_username",
        "tls.identity_as_username",
        Kind::Bool,
    ),
    ("listener", "password_file", "auth.password_file", Kind::Str),
    ("listener", "acl_file", "auth.acl_file", Kind::Str),
    ("bridge", "name", "name", Kind::Str),
    ("bridge", "address", "addresses", Kind::List),
    ("bridge", "client_id", "client_id", Kind::Str),
    ("bridge", "protocol", "protocol", Kind::Str),
    ("bridge", "clean_session", "clean_session", Kind::Bool),
    ("bridge", "keepalive", "keepalive", Kind::Str),
    ("bridge", "username", "username", Kind::Str),
    ("bridge", "password", "password", Kind::Str),
    ("bridge", "password_file", "password_file", Kind::Str),
    ("bridge", "notifications", "notifications", Kind::Bool),
    (
        "bridge",
        "notification_topic",
        "notification_topic",
        Kind::Str,
    ),
    ("bridge", "try_private", "try_private", Kind::Bool),
    (
        "bridge",
        "message_id_property",
        "message_id_property",
        Kind::Bool,
    ),
    ("bridge", "inflight", "inflight", Kind::Int),
    ("bridge", "reconnect_min", "reconnect_min", Kind::Str),
    ("bridge", "reconnect_max", "reconnect_max", Kind::Str),
    ("bridge", "failback_after", "failback_after", Kind::Str),
    ("bridge", "tls", "tls", Kind::Bool),
    ("bridge", "tls_ca", "tls.ca", Kind::Str),
    ("bridge", "tls_cert", "tls.cert", Kind::Str),
    ("bridge", "tls_key", "tls.key", Kind::Str),
    ("bridge", "tls_server_name", "tls.server_name", Kind::Str),
    ("bridge", "tls13_only", "tls.tls13_only", Kind::Bool),
    ("bridge", "tls_alpn", "tls.alpn", Kind::List),
    ("bridge", "queue_max_bytes", "queue.max_bytes", Kind::Str),
    ("bridge", "queue_max_age", "queue.max_age", Kind::Str),
    ("bridge", "queue_overflow", "queue.overflow", Kind::Str),
    (
        "bridge",
        "queue_replay_rate",
        "queue.replay_rate",
        Kind::Int,
    ),
    ("bridge", "queue_durability", "queue.durability", Kind::Str),
    ("topic", "bridge", "", Kind::Str),
    ("topic", "pattern", "pattern", Kind::Str),
    ("topic", "direction", "direction", Kind::Str),
    ("topic", "qos", "qos", Kind::Int),
    ("topic", "local_prefix", "local_prefix", Kind::Str),
    ("topic", "remote_prefix", "remote_prefix", Kind::Str),
    ("topic", "coalesce", "coalesce", Kind::Bool),
];

/// The UCI option that sets the TOML key `rest` (relative to its section's
/// table), e.g. `tls.cert` → `tls_cert`, `addresses[1]` → `address`.
pub fn option_name(rest: &str) -> Option<&'static str> {
    let rest = rest.split('[').next().unwrap_or(rest);
    if rest.is_empty() {
        return None;
    }
    SCHEMA
        .iter()
        .find(|(_, _, path, _)| *path == rest)
        .map(|(_, opt, _, _)| *opt)
}

/// One `option` or `list` value with its line.
#[derive(Debug, Clone)]
struct Opt {
    name: String,
    values: Vec<(String, usize)>,
    is_list: bool,
}

/// One `config TYPE ['name']` section.
#[derive(Debug, Clone)]
struct Section {
    ty: String,
    name: Option<String>,
    line: usize,
    display: String,
    opts: Vec<Opt>,
}

impl Section {
    fn get(&self, name: &str) -> Option<&(String, usize)> {
        self.opts
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.values.last())
    }
}

/// Parses UCI text into the model and the line map; no validation.
pub fn parse_located(text: &str, file: &Path) -> Result<(Config, Locations), ConfigError> {
    let sections = lex(text, file)?;
    let mut b = Builder {
        file,
        root: Table::new(),
        locs: Locations::default(),
        problems: Vec::new(),
    };
    b.build(&sections);
    if !b.problems.is_empty() {
        return Err(ConfigError {
            problems: b.problems,
        });
    }
    let rendered = toml::to_string(&b.root)
        .map_err(|e| ConfigError::one(file, None, SYNTAX_KEY, format!("internal: {e}")))?;
    let table = toml::de::DeTable::parse(&rendered).map_err(|e| {
        ConfigError::one(file, None, SYNTAX_KEY, format!("internal: {}", e.message()))
    })?;
    let spans = toml_file::locate(&table, &rendered);
    let cfg = toml_file::deserialize(&rendered, file, &spans, &b.locs)?;
    Ok((cfg, b.locs))
}

fn config_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "edgemq".into())
}

/// Splits the text into sections; every syntax error is reported.
fn lex(text: &str, file: &Path) -> Result<Vec<Section>, ConfigError> {
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

struct Builder<'a> {
    file: &'a Path,
    root: Table,
    locs: Locations,
    problems: Vec<ConfigProblem>,
}

impl Builder<'_> {
    fn bad(&mut self, line: usize, key: &str, msg: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: key.into(),
            message: msg.into(),
        });
    }

    fn build(&mut self, sections: &[Section]) {
        let mut bridges: HashMap<String, usize> = HashMap::new();
        let mut disabled_bridges: Vec<String> = Vec::new();
        let mut topics = Vec::new();
        let mut mains = 0;
        for s in sections {
            let enabled = self.enabled(s);
            match s.ty.as_str() {
                "bridge" => {
                    let name = s.get("name").map(|v| v.0.clone()).or_else(|| s.name.clone());
                    match (enabled, name) {
                        (false, Some(n)) => disabled_bridges.push(n),
                        (false, None) => {}
                        (true, None) => self.bad(s.line, &s.display, "a bridge section needs a name or `option name`"),
                        (true, Some(n)) => {
                            let idx = self.push_table("bridge", s);
                            bridges.entry(n.clone()).or_insert(idx);
                            let path = format!("bridge[{idx}]");
                            let mut tbl = self.fill(s, &path);
                            tbl.entry("name").or_insert(Value::String(n));
                            self.set_at(&path, tbl);
                        }
                    }
                }
                "topic" if enabled => topics.push(s),
                "edgemq" if enabled => {
                    mains += 1;
                    if mains > 1 {
                        self.bad(s.line, &s.display, "only one `config edgemq` section is allowed");
                        continue;
                    }
                    self.locs.set_line("", s.line);
                    self.locs.set_line("limits", s.line);
                    self.locs.set_line("auth", s.line);
                    self.locs.set_section("", &s.display);
                    let tbl = self.fill(s, "");
                    merge(&mut self.root, tbl);
                }
                "listener" | "user" if enabled => {
                    let (arr, path_of) = if s.ty == "user" { ("auth.user", "auth.user") } else { ("listener", "listener") };
                    let idx = self.push_table(arr, s);
                    let path = format!("{path_of}[{idx}]");
                    let tbl = self.fill(s, &path);
                    self.set_at(&path, tbl);
                }
                "topic" | "edgemq" | "listener" | "user" => {}
                other => self.bad(
                    s.line,
                    &s.display,
                    format!("unknown section type {other:?}: use edgemq, listener, user, bridge or topic"),
                ),
            }
        }
        for s in topics {
            self.topic(s, &bridges, &disabled_bridges);
        }
    }

    fn topic(&mut self, s: &Section, bridges: &HashMap<String, usize>, disabled: &[String]) {
        let Some((bname, line)) = s.get("bridge").cloned() else {
            self.bad(
                s.line,
                &format!("{}.bridge", s.display),
                "a topic needs `option bridge` naming its bridge",
            );
            return;
        };
        let Some(&b) = bridges.get(&bname) else {
            if !disabled.contains(&bname) {
                self.bad(
                    line,
                    &format!("{}.bridge", s.display),
                    format!("no bridge named {bname:?}"),
                );
            }
            return;
        };
        let idx = self.push_table(&format!("bridge[{b}].topic"), s);
        let path = format!("bridge[{b}].topic[{idx}]");
        let tbl = self.fill(s, &path);
        self.set_at(&path, tbl);
    }

    fn enabled(&mut self, s: &Section) -> bool {
        match s.get("enabled") {
            None => true,
            Some((v, line)) => match parse_bool(v) {
                Some(b) => b,
                None => {
                    self.bad(
                        *line,
                        &format!("{}.enabled", s.display),
                        format!("{v:?} is not a boolean (1/0, true/false, yes/no, on/off)"),
                    );
                    true
                }
            },
        }
    }

    /// Appends an empty table to the array at `arr` (a dotted path with
    /// indices), records the section, returns its index.
    fn push_table(&mut self, arr: &str, s: &Section) -> usize {
        // The arrays are created here, so a missing one cannot happen; index 0 is harmless.
        let idx = match array_at(&mut self.root, arr) {
            Some(list) => {
                list.push(Value::Table(Table::new()));
                list.len() - 1
            }
            None => 0,
        };
        let path = format!("{arr}[{idx}]");
        self.locs.set_line(&path, s.line);
        self.locs.set_section(&path, &s.display);
        idx
    }

    fn set_at(&mut self, path: &str, tbl: Table) {
        if let Some(Value::Table(t)) = value_at(&mut self.root, path) {
            merge(t, tbl);
        }
    }

    /// The section's options as a table laid out like the TOML model.
    fn fill(&mut self, s: &Section, path: &str) -> Table {
        let mut tbl = Table::new();
        let mut tls_off = false;
        for o in &s.opts {
            let entry = SCHEMA
                .iter()
                .find(|(ty, opt, _, _)| *ty == s.ty && *opt == o.name);
            let Some(&(_, _, key, kind)) = entry else {
                if o.name != "enabled" {
                    let line = o.values[0].1;
                    self.bad(
                        line,
                        &format!("{}.{}", s.display, o.name),
                        format!("unknown option for a {} section", s.ty),
                    );
                }
                continue;
            };
            if key.is_empty() {
                continue; // topic.bridge: used for placement only
            }
            let full = join(path, key);
            self.locs.set_line(&full, o.values[0].1);
            for (j, (_, line)) in o.values.iter().enumerate() {
                self.locs.set_line(&format!("{full}[{j}]"), *line);
            }
            if let Some((parent, _)) = key.rsplit_once('.') {
                self.locs.set_line(&join(path, parent), o.values[0].1);
            }
            if o.is_list && kind != Kind::List {
                self.bad(
                    o.values[0].1,
                    &format!("{}.{}", s.display, o.name),
                    "is a single value: use `option`, not `list`",
                );
                continue;
            }
            if s.ty == "bridge" && key == "tls" {
                match parse_bool(&o.values[0].0) {
                    Some(true) => {
                        tbl.entry("tls")
                            .or_insert_with(|| Value::Table(Table::new()));
                    }
                    Some(false) => tls_off = true,
                    None => self.bad(
                        o.values[0].1,
                        &format!("{}.tls", s.display),
                        "is not a boolean (1/0, true/false, yes/no, on/off)",
                    ),
                }
                continue;
            }
            insert(&mut tbl, key, convert(o, kind));
        }
        if tls_off {
            tbl.remove("tls");
        }
        tbl
    }
}

fn convert(o: &Opt, kind: Kind) -> Value {
    let last = o.values.last().map(|v| v.0.as_str()).unwrap_or("");
    match kind {
        Kind::List => Value::Array(
            o.values
                .iter()
                .map(|v| Value::String(v.0.clone()))
                .collect(),
        ),
        // Unparseable values stay strings so serde reports the type error at this option's line.
        Kind::Bool => parse_bool(last)
            .map(Value::Boolean)
            .unwrap_or_else(|| Value::String(last.into())),
        Kind::Int => last
            .trim()
            .parse::<i64>()
            .map(Value::Integer)
            .unwrap_or_else(|_| Value::String(last.into())),
        Kind::Str => Value::String(last.into()),
    }
}

/// UCI booleans: 1/0, true/false, yes/no, on/off.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

/// Inserts `v` at the dotted `key` (no indices), creating tables on the way.
fn insert(tbl: &mut Table, key: &str, v: Value) {
    match key.split_once('.') {
        None => {
            tbl.insert(key.into(), v);
        }
        Some((head, rest)) => {
            let sub = tbl
                .entry(head)
                .or_insert_with(|| Value::Table(Table::new()));
            if let Value::Table(t) = sub {
                insert(t, rest, v);
            }
        }
    }
}

fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// The value at a path such as `bridge[0].topic[2]`, if present.
fn value_at<'t>(root: &'t mut Table, path: &str) -> Option<&'t mut Value> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = index_step(root, first)?;
    for p in parts {
        let Value::Table(t) = cur else { return None };
        cur = index_step(t, p)?;
    }
    Some(cur)
}

fn index_step<'t>(t: &'t mut Table, seg: &str) -> Option<&'t mut Value> {
    match seg.split_once('[') {
        None => t.get_mut(seg),
        Some((k, idx)) => {
            let i: usize = idx.trim_end_matches(']').parse().ok()?;
            t.get_mut(k)?.as_array_mut()?.get_mut(i)
        }
    }
}

/// The array at `path` (created empty if missing), e.g. `auth.user` or `bridge[1].topic`.
fn array_at<'t>(root: &'t mut Table, path: &str) -> Option<&'t mut Vec<Value>> {
    let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
    let holder = if parent.is_empty() {
        root
    } else {
        if value_at(root, parent).is_none() {
            insert(root, parent, Value::Table(Table::new()));
        }
        value_at(root, parent)?.as_table_mut()?
    };
    holder
        .entry(last)
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
}
