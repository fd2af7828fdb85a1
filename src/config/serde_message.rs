//! What serde's error messages say, in the terms `edgemq check` reports: the missing field,
//! the expected type in plain words, and a value of that type to stand in for a wrong one so
//! that checking can go on to the rest of the file.

/// serde's "missing field `x`" names the field inside the table the span points at.
pub fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.split('`').next()
}

/// serde speaks Rust ("expected u16"); the user wants the range.
pub fn plain_words(msg: &str) -> String {
    const TYPES: [(&str, &str); 5] = [
        ("expected u8", "expected a whole number 0..=255"),
        ("expected u16", "expected a whole number 0..=65535"),
        ("expected u32", "expected a whole number 0..=4294967295"),
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
    ];
    TYPES
        .iter()
        .find(|(rust, _)| msg.ends_with(rust))
        .map_or_else(|| msg.to_string(), |(rust, plain)| msg.replace(rust, plain))
}

/// The last component of a displayed key: `edgemq.lan.tls_key` → `tls_key`.
pub fn leaf(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The first line of a message, trimmed.
pub fn first_line(msg: &str) -> String {
    msg.lines().next().unwrap_or(msg).trim().to_string()
}

/// A TOML value of the type serde expected in "invalid type: …, expected X", for the
/// types a placeholder can stand in for; None for tables and edgemq's own value types.
pub fn placeholder(msg: &str) -> Option<&'static str> {
    let expected = first_line(msg);
    let expected = expected.split(", expected ").nth(1)?;
    Some(match expected {
        "a string" => "\"\"",
        "a sequence" => "[]",
        "a boolean" => "true",
        "u8" | "u16" | "u32" | "u64" | "usize" => "0",
        _ => return None,
    })
}
