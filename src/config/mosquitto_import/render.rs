//! Writing the translation as commented TOML. Each section is serialized
//! by serde from the model types, so keys always match what the loader
//! accepts; comments go right before the section they concern.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::translate::Translation;
use crate::config::model::{Auth, Bridge, Listener};

/// A one-element `[[listener]]` document.
#[derive(Serialize)]
struct ListenerDoc<'a> {
    listener: [&'a Listener; 1],
}

/// A one-element `[[bridge]]` document.
#[derive(Serialize)]
struct BridgeDoc<'a> {
    bridge: [&'a Bridge; 1],
}

/// An `[auth]` document.
#[derive(Serialize)]
struct AuthDoc<'a> {
    auth: &'a Auth,
}

/// The whole commented TOML text.
pub fn render(t: &Translation, source: &Path) -> Result<String> {
    let mut out = header(source);
    for n in &t.notes {
        writeln!(out, "{n}")?;
    }
    out.push('\n');
    if !t.head.is_empty() {
        out.push_str(&toml::to_string(&t.head).context("writing top-level keys")?);
        out.push('\n');
    }
    if !t.limits.is_empty() {
        out.push_str("[limits]\n");
        out.push_str(&toml::to_string(&t.limits).context("writing [limits]")?);
        out.push('\n');
    }
    if t.auth != Auth::default() {
        out.push_str(&toml::to_string(&AuthDoc { auth: &t.auth }).context("writing [auth]")?);
        out.push('\n');
    }
    for (l, notes) in &t.listeners {
        section(
            &mut out,
            notes,
            &toml::to_string(&ListenerDoc { listener: [l] }).context("writing a listener")?,
        );
    }
    for (b, notes) in &t.bridges {
        section(
            &mut out,
            notes,
            &toml::to_string(&BridgeDoc { bridge: [b] }).context("writing a bridge")?,
        );
    }
    Ok(out)
}

fn header(source: &Path) -> String {
    format!(
        "# edgemq configuration translated from {} by `edgemq import-mosquitto`\n\
         # (Mosquitto 2.0 semantics). Review every \"not carried over\" and \"note\" line,\n\
         # then check the result with `edgemq check -c FILE`.\n",
        source.display()
    )
}

fn section(out: &mut String, notes: &[String], body: &str) {
    for n in notes {
        out.push_str(n);
        out.push('\n');
    }
    out.push_str(body);
    out.push('\n');
}
