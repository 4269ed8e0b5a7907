//! The lexical rules of CloudEvents attribute values: the String type, URI-reference,
//! absolute URI, media types, extension names. Pure functions on text; they know nothing
//! of events or plugins.

use super::{InvalidEvent, RESERVED};

/// "CloudEvents attribute names MUST consist of lower-case letters ('a' to 'z') or
/// digits ('0' to '9') from the ASCII character set ... SHOULD NOT exceed 20 characters"
/// (section 3.1.1, made a MUST here), and must not reuse a core name or `data`.
pub(super) fn check_extension_name(name: &str) -> Result<(), InvalidEvent> {
    let shape = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !shape {
        return Err(InvalidEvent::ExtensionName(crate::text::printable(name)));
    }
    if RESERVED.contains(&name) {
        return Err(InvalidEvent::ExtensionReserved(name.to_owned()));
    }
    Ok(())
}

/// "String - Sequence of allowable Unicode characters": no control characters
/// (U+0000-U+001F, U+007F-U+009F), no noncharacters; Rust strings hold no surrogates.
pub fn is_attribute_string(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            let n = c as u32;
            !(c.is_control() || (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE)
        })
}

/// RFC 3986 URI-reference, by character class: unreserved, reserved and well-formed
/// percent-escapes only (no spaces, no non-ASCII), with a valid scheme when one is given.
pub fn is_uri_reference(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&c);
        if !ok {
            return false;
        }
        i += 1;
    }
    // A colon before any '/', '?' or '#' means a scheme, which must be ALPHA *( ALPHA /
    // DIGIT / "+" / "-" / "." ) (RFC 3986 section 3.1).
    let head = s.split(['/', '?', '#']).next().unwrap_or("");
    match head.split_once(':') {
        Some((scheme, _)) => {
            scheme
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        }
        None => true,
    }
}

/// An absolute URI: a URI-reference with a scheme.
pub fn is_absolute_uri(s: &str) -> bool {
    let head = s.split(['/', '?', '#']).next().unwrap_or("");
    is_uri_reference(s) && head.contains(':') && url::Url::parse(s).is_ok()
}

/// RFC 2046 / RFC 9110 `type "/" subtype *(OWS ";" OWS parameter)`, tokens only.
pub(super) fn is_media_type(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
    };
    let mut parts = s.split(';');
    let essence = parts.next().unwrap_or("");
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    token(ty)
        && token(sub)
        && parts.all(|p| {
            let p = p.trim_matches([' ', '\t']);
            p.split_once('=').is_some_and(|(k, v)| {
                token(k) && !v.is_empty() && v.bytes().all(|c| c >= 0x20 && c != 0x7f)
            })
        })
}

/// JSON media types: `application/json`, `text/json`, and any `+json` structured suffix
/// (RFC 6839), with or without parameters.
pub fn is_json_media_type(s: &str) -> bool {
    let essence = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_references() {
        for ok in [
            "urn:edge-runner:host-1",
            "https://x.example/a?b#c",
            "/rel/path",
            "a%20b",
            "1-555",
        ] {
            assert!(is_uri_reference(ok), "{ok}");
        }
        for bad in ["", "a b", "é", "%zz", "1a:b", "urn:x\n"] {
            assert!(!is_uri_reference(bad), "{bad}");
        }
        assert!(is_absolute_uri("urn:edge-runner:x"));
        assert!(!is_absolute_uri("/relative"));
    }

    #[test]
    fn media_types() {
        assert!(is_media_type("application/json"));
        assert!(is_media_type("application/json; charset=utf-8"));
        assert!(!is_media_type("json"));
        assert!(!is_media_type("application/"));
        assert!(is_json_media_type("application/cloudevents+json"));
        assert!(!is_json_media_type("text/plain"));
    }

    #[test]
    fn extension_names() {
        assert!(check_extension_name("tenantid").is_ok());
        assert!(check_extension_name("a1").is_ok());
        assert!(check_extension_name("Tenant").is_err());
        assert!(check_extension_name("tenant_id").is_err());
        assert!(check_extension_name(&"a".repeat(21)).is_err());
        assert!(check_extension_name("data").is_err());
        assert!(check_extension_name("specversion").is_err());
    }
}
