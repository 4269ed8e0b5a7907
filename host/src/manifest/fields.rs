//! Field-level rules of manifest version 1: bounds, character sets, nonce strength and
//! RFC 3339 timestamps (the `env` rules are in `env`). Each check names the field it
//! refuses. The bounds here are also what `schema` publishes, so the two cannot drift.
//! Pure functions; no I/O, no clock.

use super::ManifestError;
use crate::text::printable;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Longest identifier (`task_id`, `tenant_id`, `operator_id`, `source`, `action`).
pub const MAX_ID_LEN: usize = 128;
/// Identifier characters after the first (which must be alphanumeric).
pub const ID_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$";
/// Longest `target_urn`.
pub const MAX_URN_LEN: usize = 512;
/// Most entries in `args`.
pub const MAX_ARGS: usize = 256;
/// Longest single argument, bytes.
pub const MAX_ARG_LEN: usize = 4096;
/// Longest `args` in total, bytes.
pub const MAX_ARGS_TOTAL: usize = 64 * 1024;
/// Most entries in `env`.
pub const MAX_ENV: usize = 64;
/// Longest environment variable name.
pub const MAX_ENV_NAME_LEN: usize = 128;
/// Longest environment variable value, bytes.
pub const MAX_ENV_VALUE_LEN: usize = 4096;
/// Environment variable names: a C identifier.
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";
/// Largest `parameters`, serialized as JSON, bytes.
pub const MAX_PARAMETERS_BYTES: usize = 64 * 1024;
/// Nonce length bounds: 22 base64url characters carry 132 bits, 32 hex digits 128.
pub const MIN_NONCE_LEN: usize = 22;
pub(crate) const MIN_HEX_NONCE_LEN: usize = 32;
pub(crate) const MAX_NONCE_LEN: usize = 128;
pub(crate) const NONCE_PATTERN: &str = "^[A-Za-z0-9_-]{22,128}$";
/// A random nonce of the minimum length has at least this many distinct characters except
/// with probability below 2^-32; fewer means a counter or a constant, not randomness.
pub const MIN_NONCE_DISTINCT: usize = 6;
/// Longest timestamp text (`2026-11-26T21:00:00.123456789+01:00` is 35).
pub const MAX_TIMESTAMP_LEN: usize = 40;
/// RFC 3339 `date-time`, upper-case `T` and `Z` only.
pub const TIMESTAMP_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";

/// The members of `map` must be among `allowed`; `prefix` is the parent's path.
pub(crate) fn refuse_unknown(
    map: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), ManifestError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ManifestError::Unknown {
            field: format!("{prefix}{}", printable(k)),
        }),
        None => Ok(()),
    }
}

pub(crate) fn require<'a>(
    map: &'a Map<String, Value>,
    field: &'static str,
    name: &str,
) -> Result<&'a Value, ManifestError> {
    map.get(name).ok_or(ManifestError::Missing { field })
}

pub(crate) fn as_str<'a>(v: &'a Value, field: &str) -> Result<&'a str, ManifestError> {
    v.as_str().ok_or_else(|| ManifestError::Type {
        field: field.to_owned(),
        expected: "a string",
    })
}

pub(crate) fn as_object<'a>(
    v: &'a Value,
    field: &str,
) -> Result<&'a Map<String, Value>, ManifestError> {
    v.as_object().ok_or_else(|| ManifestError::Type {
        field: field.to_owned(),
        expected: "an object",
    })
}

pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        field: field.to_owned(),
        problem: problem.into(),
    }
}

/// An identifier: 1 to 128 characters from `[A-Za-z0-9._:@-]`, starting alphanumeric.
pub(crate) fn identifier(v: &Value, field: &str) -> Result<String, ManifestError> {
    let s = as_str(v, field)?;
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(invalid(
            field,
            format!(
                "must be 1 to {MAX_ID_LEN} characters long (it is {})",
                s.len()
            ),
        ));
    }
    let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if let Some(pos) = s
        .bytes()
        .position(|b| !is_id_byte(b))
        .or((!first_ok).then_some(0))
    {
        return Err(invalid(
            field,
            format!(
                "has a character outside [A-Za-z0-9._:@-] or does not start with a letter or \
                 digit (at byte {pos} of \"{}\")",
                printable(s)
            ),
        ));
    }
    Ok(s.to_owned())
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-')
}

/// A URN (RFC 8141): `urn:<NID>:<NSS>`, no `?`/`#` components, ASCII only.
pub(crate) fn urn(v: &Value, field: &str) -> Result<String, ManifestError> {
    let s = as_str(v, field)?;
    if s.len() > MAX_URN_LEN {
        return Err(invalid(
            field,
            format!("is longer than {MAX_URN_LEN} bytes"),
        ));
    }
    let bad = || {
        invalid(
            field,
            format!(
                "is not a URN of the form urn:<nid>:<nss> (RFC 8141) without ?/# parts: \"{}\"",
                printable(s)
            ),
        )
    };
    let rest = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("urn:"))
        .and_then(|_| s.get(4..))
        .ok_or_else(bad)?;
    let (nid, nss) = rest.split_once(':').ok_or_else(bad)?;
    let nid_ok = (2..=32).contains(&nid.len())
        && nid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !nid.starts_with('-')
        && !nid.ends_with('-');
    // RFC 3986 pchar plus "/", percent-escapes allowed.
    let nss_ok = !nss.is_empty()
        && nss.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.'
                        | b'_'
                        | b'~'
                        | b'%'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'/'
                )
        });
    if nid_ok && nss_ok {
        Ok(s.to_owned())
    } else {
        Err(bad())
    }
}

/// `args`: a list of strings, bounded in count and size, without NUL bytes (which cannot
/// cross `execve`).
pub(crate) fn args(v: &Value) -> Result<Vec<String>, ManifestError> {
    let list = v.as_array().ok_or_else(|| ManifestError::Type {
        field: "args".into(),
        expected: "a list of strings",
    })?;
    if list.len() > MAX_ARGS {
        return Err(invalid(
            "args",
            format!(
                "has {} entries; at most {MAX_ARGS} are accepted",
                list.len()
            ),
        ));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let field = format!("args[{i}]");
        let s = as_str(a, &field)?;
        if s.len() > MAX_ARG_LEN {
            return Err(invalid(
                &field,
                format!("is longer than {MAX_ARG_LEN} bytes"),
            ));
        }
        if s.contains('\0') {
            return Err(invalid(&field, "contains a NUL character"));
        }
        total += s.len();
        out.push(s.to_owned());
    }
    if total > MAX_ARGS_TOTAL {
        return Err(invalid(
            "args",
            format!("totals {total} bytes; at most {MAX_ARGS_TOTAL} are accepted"),
        ));
    }
    Ok(out)
}

/// `nonce`: base64url or hex text long enough to carry 128 random bits, bounded, and not
/// visibly degenerate. The runner cannot measure entropy; it enforces what 128 random bits
/// need as text and refuses counters and constants.
pub(crate) fn nonce(v: &Value) -> Result<String, ManifestError> {
    let s = as_str(v, "nonce")?;
    if s.len() > MAX_NONCE_LEN {
        return Err(invalid(
            "nonce",
            format!(
                "is {} characters; at most {MAX_NONCE_LEN} are accepted",
                s.len()
            ),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "nonce",
            "must be base64url (A-Z a-z 0-9 - _) or hex text",
        ));
    }
    let hex_only = s.bytes().all(|b| b.is_ascii_hexdigit());
    let min = if hex_only {
        MIN_HEX_NONCE_LEN
    } else {
        MIN_NONCE_LEN
    };
    if s.len() < min {
        return Err(invalid(
            "nonce",
            format!(
                "is {} characters; at least 128 random bits are required ({MIN_HEX_NONCE_LEN} \
                 hex digits or {MIN_NONCE_LEN} base64url characters)",
                s.len()
            ),
        ));
    }
    let mut seen = [false; 256];
    let distinct = s
        .bytes()
        .filter(|b| !std::mem::replace(&mut seen[usize::from(*b)], true))
        .count();
    if distinct < MIN_NONCE_DISTINCT {
        return Err(invalid(
            "nonce",
            format!(
                "uses only {distinct} distinct characters, which random text of this length \
                 practically never does; generate it from a CSPRNG"
            ),
        ));
    }
    Ok(s.to_owned())
}

/// An RFC 3339 `date-time` (section 5.6), strictly: upper-case `T` and `Z`, no spaces,
/// seconds required, at most nanosecond precision. Converted to UTC.
pub(crate) fn timestamp(v: &Value, field: &str) -> Result<DateTime<Utc>, ManifestError> {
    let s = as_str(v, field)?;
    let bad = |why: &str| {
        invalid(
            field,
            format!(
                "is not an RFC 3339 timestamp like 2026-11-26T21:00:00Z ({why}): \"{}\"",
                printable(s)
            ),
        )
    };
    if s.len() > MAX_TIMESTAMP_LEN || !shape_ok(s.as_bytes()) {
        return Err(bad("wrong shape"));
    }
    let t = DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(&e.to_string()))?;
    // chrono takes a seconds field of 60 at any minute; RFC 3339 section 5.7 allows it
    // only for a leap second, at 23:59:60 UTC (issue 15: the published schema refuses it).
    use chrono::Timelike as _;
    if t.nanosecond() >= 1_000_000_000 && !(t.hour() == 23 && t.minute() == 59) {
        return Err(bad("a second of 60 is only a leap second at 23:59:60 UTC"));
    }
    Ok(t)
}

/// Matches [`TIMESTAMP_PATTERN`] without a regex engine.
fn shape_ok(b: &[u8]) -> bool {
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        i += 1 + n;
    }
    match b.get(i) {
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

/// A positive integer limit.
pub(crate) fn positive(v: &Value, field: &str) -> Result<u64, ManifestError> {
    match v.as_u64() {
        Some(0) => Err(invalid(
            field,
            "must be at least 1 (0 does not mean unlimited)",
        )),
        Some(n) => Ok(n),
        None => Err(ManifestError::Type {
            field: field.to_owned(),
            expected: "a positive integer",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_strict_rfc3339() {
        for ok in [
            "2026-11-26T21:00:00Z",
            "2026-11-26T21:00:00.5Z",
            "2026-11-26T21:00:00.123456789+01:00",
            "2026-11-26T21:00:00-00:00",
        ] {
            assert!(timestamp(&json!(ok), "t").is_ok(), "{ok}");
        }
        for bad in [
            "2026-11-26 21:00:00Z",
            "2026-11-26t21:00:00z",
            "2026-11-26T21:00Z",
            "2026-11-26T21:00:00",
            "2026-11-26T21:00:00.Z",
            "2026-11-26T21:00:00.1234567890Z",
            "2026-13-26T21:00:00Z",
            "2026-02-30T21:00:00Z",
            "2026-11-26T25:00:00Z",
            "2026-11-26T21:00:00+0100",
            "2026-11-26T21:00:60Z",
            "1764190800",
            " 2026-11-26T21:00:00Z",
            "2026-11-26T21:00:00Z ",
            "２026-11-26T21:00:00Z",
        ] {
            assert!(timestamp(&json!(bad), "t").is_err(), "{bad}");
        }
        assert!(timestamp(&json!(1764190800), "t").is_err());
    }

    #[test]
    fn nonces_need_128_bits_of_text() {
        assert!(nonce(&json!("b3a1c09f4e2d8a7b6c5d4e3f2a1b0c9d")).is_ok()); // 32 hex
        assert!(nonce(&json!("b3a1c09f4e2d8a7b6c5d4e3f2a1b0c9")).is_err()); // 31 hex
        assert!(nonce(&json!("Zq3_x-9KpL2mN8vR4tY7wA")).is_ok()); // 22 b64url
        assert!(nonce(&json!("Zq3_x-9KpL2mN8vR4tY7w")).is_err()); // 21
        assert!(nonce(&json!("a".repeat(64))).is_err()); // one character
        assert!(nonce(&json!("0123".repeat(10))).is_err()); // a counter-like pattern
        assert!(nonce(&json!("Zq3+x/9KpL2mN8vR4tY7wA==")).is_err()); // standard base64
        assert!(nonce(&json!("Zq3_x-9KpL2mN8vR4tY7wA".repeat(6))).is_err()); // 132 > 128
        assert!(nonce(&json!(12345)).is_err());
    }

    #[test]
    fn urns() {
        for ok in [
            "urn:target:host:web-01",
            "URN:isbn:0451450523",
            "urn:ab:a/b%20c",
        ] {
            assert!(urn(&json!(ok), "u").is_ok(), "{ok}");
        }
        for bad in [
            "urn:a:b",
            "urn:target",
            "urn::x",
            "http://x",
            "urn:t:x?y",
            "urn:t:x#f",
            "urn:t: x",
            "urn:-t:x",
        ] {
            assert!(urn(&json!(bad), "u").is_err(), "{bad}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(identifier(&json!("op-7@corp.example"), "i").is_ok());
        for bad in ["", "-x", ".x", "a b", "a/b", "../x", "ü", &"a".repeat(129)] {
            assert!(identifier(&json!(bad), "i").is_err(), "{bad:?}");
        }
        assert!(identifier(&json!("a".repeat(128)), "i").is_ok());
    }
}
