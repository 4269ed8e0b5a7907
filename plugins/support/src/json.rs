//! A minimal JSON text writer for `no_std` plugins (event mappers): objects, arrays,
//! strings, integers, booleans and null, escaped per RFC 8259 section 7. It only writes;
//! it never parses, and it holds no knowledge of any event schema.

use alloc::string::String;
use core::fmt::Write as _;

/// Appends JSON text to a `String`. The caller writes keys and values in a valid order
/// (`key` before every member value); the writer inserts the commas.
#[derive(Debug, Default)]
pub struct JsonWriter {
    out: String,
    /// True when the next member or element needs a leading comma.
    comma: bool,
}

impl JsonWriter {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            out: String::with_capacity(capacity),
            comma: false,
        }
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }

    fn separate(&mut self) {
        if self.comma {
            self.out.push(',');
        }
    }

    pub fn begin_object(&mut self) {
        self.separate();
        self.out.push('{');
        self.comma = false;
    }

    pub fn end_object(&mut self) {
        self.out.push('}');
        self.comma = true;
    }

    pub fn begin_array(&mut self) {
        self.separate();
        self.out.push('[');
        self.comma = false;
    }

    pub fn end_array(&mut self) {
        self.out.push(']');
        self.comma = true;
    }

    /// Writes an object member name; the next call writes its value.
    pub fn key(&mut self, name: &str) {
        self.separate();
        push_escaped(&mut self.out, name);
        self.out.push(':');
        self.comma = false;
    }

    pub fn string(&mut self, value: &str) {
        self.separate();
        push_escaped(&mut self.out, value);
        self.comma = true;
    }

    /// Writes `value`, or `null` when absent.
    pub fn opt_string(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.string(v),
            None => self.null(),
        }
    }

    pub fn uint(&mut self, value: u64) {
        self.separate();
        let _ = write!(self.out, "{value}");
        self.comma = true;
    }

    pub fn int(&mut self, value: i64) {
        self.separate();
        let _ = write!(self.out, "{value}");
        self.comma = true;
    }

    pub fn bool(&mut self, value: bool) {
        self.separate();
        self.out.push_str(if value { "true" } else { "false" });
        self.comma = true;
    }

    pub fn null(&mut self) {
        self.separate();
        self.out.push_str("null");
        self.comma = true;
    }

    /// A member whose value is a string.
    pub fn member_str(&mut self, name: &str, value: &str) {
        self.key(name);
        self.string(value);
    }

    /// A member whose value is a string or `null`.
    pub fn member_opt_str(&mut self, name: &str, value: Option<&str>) {
        self.key(name);
        self.opt_string(value);
    }

    pub fn member_uint(&mut self, name: &str, value: u64) {
        self.key(name);
        self.uint(value);
    }

    pub fn member_bool(&mut self, name: &str, value: bool) {
        self.key(name);
        self.bool(value);
    }

    /// A member whose value is an array of strings.
    pub fn member_str_array<'a>(&mut self, name: &str, values: impl IntoIterator<Item = &'a str>) {
        self.key(name);
        self.begin_array();
        for v in values {
            self.string(v);
        }
        self.end_array();
    }
}

/// Appends `s` as a JSON string literal. Only `"`, `\` and control characters are
/// escaped (RFC 8259 section 7); everything else is copied as UTF-8.
fn push_escaped(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices fall on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_nested_documents_with_escapes() {
        let mut w = JsonWriter::with_capacity(64);
        w.begin_object();
        w.member_str("a", "q\"b\\n\n\u{1}é");
        w.member_opt_str("n", None);
        w.member_uint("u", 7);
        w.key("i");
        w.int(-3);
        w.member_bool("t", true);
        w.member_str_array("l", ["x", "y"]);
        w.key("o");
        w.begin_object();
        w.end_object();
        w.end_object();
        assert_eq!(
            w.finish(),
            r#"{"a":"q\"b\\n\n\u0001é","n":null,"u":7,"i":-3,"t":true,"l":["x","y"],"o":{}}"#
        );
    }
}
