//! Text helpers every module shares: log-safe rendering of untrusted strings and lowercase
//! hex. Nothing here decides anything or does I/O.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `s` made safe to put in a log line or an error message: control characters and
/// non-ASCII escaped, cut to 64 characters (with `...` when cut). For attacker-chosen
/// text such as a `kid`, a field name or a plugin's answer.
pub fn printable(s: &str) -> String {
    let mut out: String = s.chars().take(64).flat_map(char::escape_default).collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// Appends `bytes` to `out` as lowercase hex.
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

/// `bytes` as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    push_hex(&mut out, bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_characters() {
        assert_eq!(printable("a\nb\u{1b}"), "a\\nb\\u{1b}");
        assert!(printable(&"x".repeat(100)).ends_with("..."));
        assert_eq!(printable(&"x".repeat(64)), "x".repeat(64));
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }
}
