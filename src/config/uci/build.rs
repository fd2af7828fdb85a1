//! Mapping UCI sections onto a `toml::Table` laid out like the TOML file,
//! recording each key's line and UCI name in [`Locations`].

use std::collections::HashMap;
use std::path::Path;

use toml::{Table, Value};

use super::super::ConfigProblem;
use super::super::toml_file::{Locations, join};
use super::lex::{Opt, Section};
use super::{Kind, SCHEMA, parse_bool};

pub(crate) struct Builder<'a> {
    file: &'a Path,
    /// The TOML-shaped result.
    pub root: Table,
    /// Line and UCI name of every key in `root`.
    pub locs: Locations,
    /// Structural problems (unknown options, dangling topics, ...).
    pub problems: Vec<ConfigProblem>,
    /// Enabled bridge name → index in `root.bridge`.
    bridges: HashMap<String, usize>,
    /// Topics naming these are dropped silently with their bridge.
    disabled_bridges: Vec<String>,
    mains: usize,
}

impl<'a> Builder<'a> {
    fn bad(&mut self, line: usize, key: &str, msg: impl Into<String>) {
        self.problems.push(ConfigProblem {
            file: self.file.to_path_buf(),
            line: Some(line),
            key: key.into(),
            message: msg.into(),
        });
    }

    /// A builder for `file`, with nothing built yet.
    pub fn new(file: &'a Path) -> Self {
        Builder {
            file,
            root: Table::new(),
            locs: Locations::default(),
            problems: Vec::new(),
            bridges: HashMap::new(),
            disabled_bridges: Vec::new(),
            mains: 0,
        }
    }

    /// Maps every section; topics last, since they may precede their bridge.
    pub fn build(&mut self, sections: &[Section]) {
        let mut topics = Vec::new();
        for s in sections {
            let enabled = self.enabled(s);
            match s.ty.as_str() {
                "bridge" => self.bridge(s, enabled),
                "topic" if enabled => topics.push(s),
                "edgemq" if enabled => self.main(s),
                "listener" if enabled => self.repeated(s, "listener"),
                "user" if enabled => self.repeated(s, "auth.user"),
                "topic" | "edgemq" | "listener" | "user" => {}
                other => {
                    let msg = format!(
                        "unknown section type {other:?}: use edgemq, listener, user, bridge or topic"
                    );
                    self.bad(s.line, &s.display, msg);
                }
            }
        }
        for s in topics {
            self.topic(s);
        }
    }

    fn main(&mut self, s: &Section) {
        self.mains += 1;
        if self.mains > 1 {
            let msg = "only one `config edgemq` section is allowed";
            return self.bad(s.line, &s.display, msg);
        }
        for table in ["", "limits", "auth"] {
            self.locs.set_line(table, s.line);
        }
        self.locs.set_section("", &s.display);
        let tbl = self.fill(s, "");
        merge(&mut self.root, tbl);
    }

    fn repeated(&mut self, s: &Section, arr: &str) {
        let idx = self.push_table(arr, s);
        let path = format!("{arr}[{idx}]");
        let tbl = self.fill(s, &path);
        self.set_at(&path, tbl);
    }

    fn bridge(&mut self, s: &Section, enabled: bool) {
        let name = s
            .get("name")
            .map(|v| v.0.clone())
            .or_else(|| s.name.clone());
        let Some(n) = name else {
            if enabled {
                self.bad(
                    s.line,
                    &s.display,
                    "a bridge section needs a name or `option name`",
                );
            }
            return;
        };
        if !enabled {
            self.disabled_bridges.push(n);
            return;
        }
        if self.bridges.contains_key(&n) {
            let line = s.get("name").map_or(s.line, |v| v.1);
            let msg = format!("bridge name {n:?} is used twice: topics could not tell them apart");
            return self.bad(line, &format!("{}.name", s.display), msg);
        }
        let idx = self.push_table("bridge", s);
        self.bridges.insert(n.clone(), idx);
        let path = format!("bridge[{idx}]");
        let mut tbl = self.fill(s, &path);
        tbl.entry("name").or_insert(Value::String(n));
        // No `list address` is an empty list in UCI; validation names it.
        tbl.entry("addresses")
            .or_insert_with(|| Value::Array(Vec::new()));
        self.set_at(&path, tbl);
    }

    fn topic(&mut self, s: &Section) {
        let Some((bname, line)) = s.get("bridge").cloned() else {
            self.bad(
                s.line,
                &format!("{}.bridge", s.display),
                "a topic needs `option bridge` naming its bridge",
            );
            return;
        };
        let Some(&b) = self.bridges.get(&bname) else {
            if !self.disabled_bridges.contains(&bname) {
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
    /// Remembers the lines of option `o`, set at `key` of the table at `path`.
    fn record(&mut self, o: &Opt, path: &str, key: &str) {
        let Some(&(_, first)) = o.values.first() else {
            return;
        };
        let full = join(path, key);
        self.locs.set_line(&full, first);
        for (j, (_, line)) in o.values.iter().enumerate() {
            self.locs.set_line(&format!("{full}[{j}]"), *line);
        }
        if let Some((parent, _)) = key.rsplit_once('.') {
            self.locs.set_line(&join(path, parent), first);
        }
    }

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
            self.record(o, path, key);
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
