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
///
/// Plain text is scanned eight bytes at a time (SWAR: one word test instead of eight
/// byte tests, which matters under the host's fuel metering) and copied in runs.
fn push_escaped(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !may_need_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        // `i` is at an ASCII byte, so both slices fall on character boundaries.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// True when some byte of `w` is below 0x20, `"` or `\` (and, rarely, for a word that
/// has none: the caller then checks byte by byte). The classic "has zero byte" and "has
/// byte less than n" tests (Hacker's Delight, section 6.1) on the word and on the word
/// XOR the quote and backslash patterns.
fn may_need_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-at-a-time definition the fast path must match.
    fn reference(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn word_at_a_time_escaping_matches_the_reference() {
        use alloc::format;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = [
            'a', ' ', '"', '\\', '\n', '\u{1}', '\u{1f}', 'é', '€', '😀', '!', '~', '\u{7f}',
        ];
        for len in 0..200 {
            let mut text = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly plain runs, so both paths are exercised.
                let pick = (seed % 40) as usize;
                text.push(if pick < alphabet.len() {
                    alphabet[pick]
                } else {
                    'x'
                });
            }
            let mut fast = String::new();
            push_escaped(&mut fast, &text);
            assert_eq!(fast, reference(&text), "{text:?}");
        }
        for b in 0u8..=0x7f {
            let text = format!("abcdefg{}hijklmnop", b as char);
            let mut fast = String::new();
            push_escaped(&mut fast, &text);
            assert_eq!(fast, reference(&text), "byte {b:#x}");
        }
    }

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
