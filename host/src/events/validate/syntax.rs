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

/// RFC 3986 URI-reference (section 4.1), by its grammar: `[scheme ":"] hier-part
/// ["?" query] ["#" fragment]`, each part from its own character set with well-formed
/// percent-escapes (no spaces, no non-ASCII). A character class alone is not enough:
/// issue 15's fuzzing found `urn:a]b` accepted, though `[` and `]` may only bracket an
/// IP literal host, and `#` may appear once.
pub fn is_uri_reference(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let (rest, fragment) = match s.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (s, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let tail_ok = |t: &str| chars_ok(t, |c| is_pchar(c) || c == b'/' || c == b'?');
    if !fragment.is_none_or(tail_ok) || !query.is_none_or(tail_ok) {
        return false;
    }
    // A colon before any '/' means a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    // (section 3.1). Without one, the first segment of a relative path may not hold a
    // colon (path-noscheme), which this split also enforces.
    let first = rest.split('/').next().unwrap_or("");
    let hier = match first.split_once(':') {
        Some((scheme, _)) => {
            let scheme_ok = scheme
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c));
            if !scheme_ok {
                return false;
            }
            &rest[scheme.len() + 1..]
        }
        None => rest,
    };
    let path = match hier.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            if !is_authority(&after[..end]) {
                return false;
            }
            &after[end..]
        }
        None => hier,
    };
    path.split('/').all(|seg| chars_ok(seg, is_pchar))
}

/// Every byte of `t` satisfies `allowed`, or starts a `%XX` escape.
fn chars_ok(t: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |k: usize| b.get(k).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~".contains(&c)
}

fn is_sub_delim(c: u8) -> bool {
    b"!$&'()*+,;=".contains(&c)
}

/// `pchar` without its percent-escapes (handled by [`chars_ok`]).
fn is_pchar(c: u8) -> bool {
    is_unreserved(c) || is_sub_delim(c) || c == b':' || c == b'@'
}

/// `authority = [ userinfo "@" ] host [ ":" port ]` (section 3.2).
fn is_authority(a: &str) -> bool {
    let (userinfo, hostport) = match a.split_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, a),
    };
    let userinfo_ok = |u: &str| chars_ok(u, |c| is_unreserved(c) || is_sub_delim(c) || c == b':');
    if !userinfo.is_none_or(userinfo_ok) {
        return false;
    }
    let (host_ok, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let Some((literal, after)) = inner.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => "",
            p => match p.strip_prefix(':') {
                Some(port) => port,
                None => return false,
            },
        };
        (is_ip_literal(literal), port)
    } else {
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, ""));
        (
            chars_ok(host, |c| is_unreserved(c) || is_sub_delim(c)),
            port,
        )
    };
    host_ok && port.bytes().all(|c| c.is_ascii_digit())
}

/// `IP-literal` contents: an IPv6 address or `IPvFuture` (section 3.2.2).
fn is_ip_literal(l: &str) -> bool {
    if let Some(future) = l.strip_prefix(['v', 'V']) {
        return future.split_once('.').is_some_and(|(ver, rest)| {
            !ver.is_empty()
                && ver.bytes().all(|c| c.is_ascii_hexdigit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|c| is_unreserved(c) || is_sub_delim(c) || c == b':')
        });
    }
    l.parse::<std::net::Ipv6Addr>().is_ok()
}

/// An RFC 3339 `date-time`. chrono takes a seconds field of 60 at any minute; RFC 3339
/// (section 5.7) allows it only for a leap second, which is inserted at 23:59:60 UTC, and
/// receivers checking the CloudEvents schema refuse any other (found by issue 15's
/// fuzzing: `21:00:60Z` passed).
pub fn is_rfc3339(t: &str) -> bool {
    use chrono::Timelike as _;
    chrono::DateTime::parse_from_rfc3339(t).is_ok_and(|d| {
        let utc = d.naive_utc();
        utc.nanosecond() < 1_000_000_000 || (utc.hour() == 23 && utc.minute() == 59)
    })
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
        // Found by fuzz/fuzz_targets/event_json (issue 15): brackets outside an IP
        // literal, a second '#', a bad port or IP literal passed the character class.
        for bad in [
            "urn:edge-run]er:edwe-7",
            "urn:a[b",
            "a#b#c",
            "http://[zz]/x",
            "http://[::1",
            "http://[::1]x/",
            "//host:99x/",
            "http://a@b@c/",
            "a:b]",
        ] {
            assert!(!is_uri_reference(bad), "{bad}");
        }
        for ok in [
            "http://[::1]:8080/x",
            "http://[v7.fe:80]/",
            "//user:pw@host:99/p?q=1/2?#f/?",
            "mailto:cncf-wg-serverless@lists.cncf.io",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "cloudevents/spec/pull/123",
            "?q",
            "#f",
        ] {
            assert!(is_uri_reference(ok), "{ok}");
        }
        assert!(is_absolute_uri("urn:edge-runner:x"));
        assert!(!is_absolute_uri("/relative"));
    }

    #[test]
    fn timestamps_allow_a_second_of_60_only_as_a_leap_second() {
        assert!(is_rfc3339("2026-11-26T21:00:00.105Z"));
        assert!(is_rfc3339("2016-12-31T23:59:60Z"));
        assert!(is_rfc3339("2017-01-01T00:59:60+01:00"), "23:59:60 UTC");
        // fuzz/fuzz_targets/event_json (issue 15).
        assert!(!is_rfc3339("2026-11-26T21:00:60.105Z"));
        assert!(!is_rfc3339("2016-12-31T23:59:60+01:00"), "22:59:60 UTC");
        assert!(!is_rfc3339("noon"));
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
