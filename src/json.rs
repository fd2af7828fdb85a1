//! A tiny JSON writer for `edgemq status --json`: objects, arrays, strings,
//! unsigned numbers, booleans and null. Hand-written because serde_json would
//! cost more flash than the router budget has left.

use std::fmt::Write as _;

/// A value [`Json::field`] can write.
pub trait Scalar {
    /// Appends the JSON form of `self` to `out`.
    fn write(&self, out: &mut String);
}

impl Scalar for &str {
    fn write(&self, out: &mut String) {
        string(out, self);
    }
}

impl Scalar for u64 {
    fn write(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

impl Scalar for bool {
    fn write(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl<T: Scalar> Scalar for Option<T> {
    fn write(&self, out: &mut String) {
        match self {
            Some(v) => v.write(out),
            None => out.push_str("null"),
        }
    }
}

/// Appends `s` as a JSON string literal: quotes, backslashes and every
/// control character escaped (a bridge error may carry any of them).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds one JSON document; the caller keeps `begin`/`end` balanced.
#[derive(Debug, Default)]
pub struct Json {
    out: String,
    /// No comma before the next member: the container was just opened.
    first: bool,
}

impl Json {
    /// An empty document.
    pub fn new() -> Self {
        Self {
            out: String::new(),
            first: true,
        }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn key(&mut self, key: &str) {
        self.sep();
        string(&mut self.out, key);
        self.out.push(':');
    }

    /// Opens an object (`'{'`) or array (`'['`), as member `key` when given.
    pub fn begin(&mut self, key: Option<&str>, bracket: char) {
        match key {
            Some(k) => self.key(k),
            None => self.sep(),
        }
        self.out.push(bracket);
        self.first = true;
    }

    /// Closes the innermost container with `bracket` (`'}'` or `']'`).
    pub fn end(&mut self, bracket: char) {
        self.out.push(bracket);
        self.first = false;
    }

    /// Writes member `key` of the current object.
    pub fn field(&mut self, key: &str, value: impl Scalar) {
        self.key(key);
        value.write(&mut self.out);
    }

    /// The document text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> String {
        let mut out = String::new();
        string(&mut out, s);
        out
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(lit("plain"), r#""plain""#);
        assert_eq!(lit(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(lit(r"C:\dir"), r#""C:\\dir""#);
        assert_eq!(lit("a\nb\tc\r"), r#""a\u000ab\u0009c\u000d""#);
        assert_eq!(lit("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        // DEL and non-ASCII are valid JSON as they are
        assert_eq!(lit("\u{7f}é→"), "\"\u{7f}é→\"");
        assert_eq!(lit(""), r#""""#);
    }

    #[test]
    fn nested_document() {
        let mut j = Json::new();
        j.begin(None, '{');
        j.field("n", 7u64);
        j.field("s", Some("x"));
        j.field("none", None::<u64>);
        j.begin(Some("list"), '[');
        for ok in [true, false] {
            j.begin(None, '{');
            j.field("ok", ok);
            j.end('}');
        }
        j.end(']');
        j.begin(Some("empty"), '[');
        j.end(']');
        j.end('}');
        assert_eq!(
            j.finish(),
            r#"{"n":7,"s":"x","none":null,"list":[{"ok":true},{"ok":false}],"empty":[]}"#
        );
    }
}
