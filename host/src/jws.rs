//! Strict compact JWS parsing (RFC 7515 section 7.1, hardened per RFC 8725).
//!
//! This module turns untrusted bytes into a [`ParsedJws`]: three canonical base64url
//! segments, a protected header that is a duplicate-free JSON object with the members we
//! understand checked, and the decoded payload and signature. It does no cryptography and
//! selects no key: the parsed header is *not* trusted, and nothing here may decide which
//! algorithm verifies the signature (the key does that, in `verify`).

use crate::json::{self, JsonError};
use crate::reason::{Reason, Refusal};
use crate::text::printable;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Size and shape caps, applied before any decoding work.
#[derive(Debug, Clone, Copy)]
pub struct JwsLimits {
    /// Maximum length of the whole compact serialization, in bytes.
    pub max_bytes: usize,
    /// Maximum length of the encoded protected header, in bytes.
    pub max_header_bytes: usize,
    /// Maximum nesting depth of the header and payload JSON.
    pub max_depth: usize,
}

impl Default for JwsLimits {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_header_bytes: 4 * 1024,
            max_depth: 16,
        }
    }
}

/// The protected header members this runner interprets. Everything else is ignored (RFC
/// 7515 section 4), except the members refused outright below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The claimed algorithm. Untrusted: verification compares it with the key's `alg`.
    pub alg: String,
    /// The key id used to select the key.
    pub kid: Option<String>,
    /// The media type, informational.
    pub typ: Option<String>,
}

/// A structurally valid compact JWS. Nothing in it is verified yet.
#[derive(Debug, Clone)]
pub struct ParsedJws {
    /// The compact serialization as received (after trimming surrounding whitespace).
    pub compact: String,
    /// The decoded protected header.
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes that were signed.
    signing_input_len: usize,
    /// The decoded payload bytes.
    pub payload: Vec<u8>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

impl ParsedJws {
    /// The JWS signing input (RFC 7515 section 5.2).
    pub fn signing_input(&self) -> &[u8] {
        &self.compact.as_bytes()[..self.signing_input_len]
    }
}

/// Header members that carry or locate a key. Trusting them lets the attacker choose the
/// verification key (RFC 8725 section 3.10, CVE-2018-0114); the runner refuses them.
const KEY_BEARING_MEMBERS: &[&str] = &["jwk", "jku", "x5u", "x5c"];

fn refuse(reason: Reason, message: impl Into<String>) -> Refusal {
    Refusal::new(reason, message)
}

/// Parses a compact JWS. `input` may carry surrounding ASCII whitespace (a trailing
/// newline in a file); whitespace anywhere else is refused.
pub fn parse(input: &[u8], limits: &JwsLimits) -> Result<ParsedJws, Refusal> {
    // Size cap first: no decoding work on oversized input.
    if input.len() > limits.max_bytes {
        return Err(refuse(
            Reason::JwsTooLarge,
            format!(
                "the task is {} bytes; the limit is {} (compact JWS). Check that the file \
                 is a single compact JWS",
                input.len(),
                limits.max_bytes
            ),
        ));
    }
    let input = input.trim_ascii();
    let Ok(text) = std::str::from_utf8(input) else {
        return Err(refuse(Reason::JwsMalformed, "the task is not ASCII text"));
    };
    if !text.is_ascii() {
        return Err(refuse(Reason::JwsMalformed, "the task is not ASCII text"));
    }

    let mut parts = text.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        let n = text.split('.').count();
        return Err(refuse(
            Reason::JwsMalformed,
            format!(
                "a compact JWS has exactly 3 dot-separated segments, this input has {n} \
                 (JWE and JSON serializations are not accepted)"
            ),
        ));
    };
    if h.len() > limits.max_header_bytes {
        return Err(refuse(
            Reason::JwsTooLarge,
            format!(
                "the protected header is {} bytes encoded; the limit is {}",
                h.len(),
                limits.max_header_bytes
            ),
        ));
    }
    for (name, seg) in [("header", h), ("payload", p), ("signature", s)] {
        if seg.is_empty() {
            return Err(refuse(
                Reason::JwsMalformed,
                format!(
                    "the {name} segment is empty (detached payloads and unsigned tokens are \
                     not accepted)"
                ),
            ));
        }
    }
    let header_bytes = b64(h, "header")?;
    let payload = b64(p, "payload")?;
    let signature = b64(s, "signature")?;

    let header = parse_header(&header_bytes, limits.max_depth)?;
    Ok(ParsedJws {
        compact: text.to_owned(),
        header,
        signing_input_len: h.len() + 1 + p.len(),
        payload,
        signature,
    })
}

/// Canonical unpadded base64url only (RFC 7515 section 2): no padding, no `+` or `/`, no
/// whitespace, zero trailing bits. One byte string, one encoding.
fn b64(segment: &str, name: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|e| {
        refuse(
            Reason::JwsMalformed,
            format!(
                "the {name} segment is not canonical unpadded base64url ({e}); padding '=', \
                 the '+' and '/' alphabet and whitespace are not accepted"
            ),
        )
    })
}

fn parse_header(bytes: &[u8], max_depth: usize) -> Result<Header, Refusal> {
    let value = json::parse_strict(bytes, max_depth).map_err(|e| match e {
        JsonError::Syntax(m) => refuse(
            Reason::JwsMalformed,
            format!("the protected header is not JSON: {m}"),
        ),
        other => refuse(
            Reason::HeaderInvalid,
            format!("the protected header is refused: {other}"),
        ),
    })?;
    let Value::Object(members) = value else {
        return Err(refuse(
            Reason::JwsMalformed,
            "the protected header is not a JSON object",
        ));
    };

    let alg = match members.get("alg") {
        Some(Value::String(a)) => a.clone(),
        Some(_) => {
            return Err(refuse(
                Reason::HeaderInvalid,
                "header \"alg\" is not a string",
            ));
        }
        None => return Err(refuse(Reason::HeaderInvalid, "header has no \"alg\"")),
    };
    // RFC 8725 section 3.1: never accept unsecured JWSs. Case-insensitive, because some
    // libraries compared case-insensitively and accepted "None" / "NONE".
    if alg.eq_ignore_ascii_case("none") {
        return Err(refuse(
            Reason::AlgForbidden,
            format!(
                "header \"alg\" is \"{}\": unsigned tasks are never accepted",
                printable(&alg)
            ),
        ));
    }

    if let Some(name) = KEY_BEARING_MEMBERS
        .iter()
        .find(|m| members.contains_key(**m))
    {
        return Err(refuse(
            Reason::HeaderKeyForbidden,
            format!(
                "header carries \"{name}\": keys come only from the configured key set, \
                 never from the token; remove the member when signing"
            ),
        ));
    }

    check_crit(&members)?;

    // RFC 7797: `b64` changes what is signed. Not supported in either value; `true` is
    // refused too, so that no verifier in the chain can disagree on the signing input.
    if members.contains_key("b64") {
        return Err(refuse(
            Reason::B64Unsupported,
            "header has \"b64\" (RFC 7797 unencoded payload), which this runner does not support",
        ));
    }

    let kid = optional_string(&members, "kid")?;
    let typ = optional_string(&members, "typ")?;
    Ok(Header { alg, kid, typ })
}

/// RFC 7515 section 4.1.11: `crit` must be a non-empty array of strings naming header
/// parameters that are present; a recipient must reject a token whose `crit` lists an
/// extension it does not understand. This runner implements none.
fn check_crit(members: &Map<String, Value>) -> Result<(), Refusal> {
    let Some(crit) = members.get("crit") else {
        return Ok(());
    };
    let Value::Array(items) = crit else {
        return Err(refuse(
            Reason::HeaderInvalid,
            "header \"crit\" is not a list",
        ));
    };
    if items.is_empty() {
        return Err(refuse(
            Reason::HeaderInvalid,
            "header \"crit\" is an empty list (RFC 7515 section 4.1.11 forbids it)",
        ));
    }
    let names: Vec<&str> = items
        .iter()
        .map(|v| v.as_str().ok_or(()))
        .collect::<Result<_, _>>()
        .map_err(|()| refuse(Reason::HeaderInvalid, "header \"crit\" holds a non-string"))?;
    let shown: Vec<String> = names.iter().take(8).map(|n| printable(n)).collect();
    Err(refuse(
        Reason::CritUnsupported,
        format!(
            "header \"crit\" requires extensions this runner does not implement: {}",
            shown.join(", ")
        ),
    ))
}

fn optional_string(members: &Map<String, Value>, name: &str) -> Result<Option<String>, Refusal> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(refuse(
            Reason::HeaderInvalid,
            format!("header \"{name}\" is not a string"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn token(header: &str) -> String {
        format!(
            "{}.{}.{}",
            enc(header.as_bytes()),
            enc(b"{}"),
            enc(&[1; 32])
        )
    }

    fn reason(input: &str) -> Reason {
        match parse(input.as_bytes(), &JwsLimits::default()) {
            Ok(_) => panic!("accepted: {input}"),
            Err(r) => r.reason,
        }
    }

    #[test]
    fn well_formed_parses() {
        let t = token(r#"{"alg":"HS256","kid":"k1","typ":"JWT","x-unknown":1}"#);
        let p = parse(format!("  {t}\n").as_bytes(), &JwsLimits::default()).unwrap();
        assert_eq!(p.header.alg, "HS256");
        assert_eq!(p.header.kid.as_deref(), Some("k1"));
        assert_eq!(p.payload, b"{}");
        let dot = t.rfind('.').unwrap();
        assert_eq!(p.signing_input(), &t.as_bytes()[..dot]);
    }

    #[test]
    fn alg_none_in_any_casing_is_refused() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let t = token(&format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            assert_eq!(reason(&t), Reason::AlgForbidden, "{alg}");
        }
    }

    #[test]
    fn key_bearing_members_are_refused() {
        for m in KEY_BEARING_MEMBERS {
            let t = token(&format!(r#"{{"alg":"ES256","kid":"k","{m}":"x"}}"#));
            assert_eq!(reason(&t), Reason::HeaderKeyForbidden, "{m}");
        }
    }

    #[test]
    fn crit_variants() {
        let t = token(r#"{"alg":"HS256","kid":"k","crit":["exp"],"exp":1}"#);
        assert_eq!(reason(&t), Reason::CritUnsupported);
        let t = token(r#"{"alg":"HS256","kid":"k","crit":[]}"#);
        assert_eq!(reason(&t), Reason::HeaderInvalid);
        let t = token(r#"{"alg":"HS256","kid":"k","crit":"b64"}"#);
        assert_eq!(reason(&t), Reason::HeaderInvalid);
    }

    #[test]
    fn b64_is_refused() {
        for v in ["false", "true"] {
            let t = token(&format!(
                r#"{{"alg":"HS256","kid":"k","b64":{v},"crit":["b64"]}}"#
            ));
            // crit is checked first and refuses either way; without crit, b64 alone too.
            assert_eq!(reason(&t), Reason::CritUnsupported);
            let t = token(&format!(r#"{{"alg":"HS256","kid":"k","b64":{v}}}"#));
            assert_eq!(reason(&t), Reason::B64Unsupported);
        }
    }

    #[test]
    fn duplicate_header_members_are_refused() {
        let t = token(r#"{"alg":"ES256","kid":"k","alg":"HS256"}"#);
        assert_eq!(reason(&t), Reason::HeaderInvalid);
    }

    #[test]
    fn segment_counts() {
        let t = token(r#"{"alg":"HS256"}"#);
        assert_eq!(reason(&format!("{t}.x")), Reason::JwsMalformed);
        assert_eq!(reason(&t[..t.rfind('.').unwrap()]), Reason::JwsMalformed);
        assert_eq!(reason(""), Reason::JwsMalformed);
        assert_eq!(reason("...."), Reason::JwsMalformed);
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        let h = enc(br#"{"alg":"HS256","kid":"k"}"#);
        let p = enc(b"{}");
        // padding
        assert_eq!(reason(&format!("{h}.{p}.AQ==")), Reason::JwsMalformed);
        // standard alphabet
        assert_eq!(reason(&format!("{h}.{p}.ab+/")), Reason::JwsMalformed);
        // non-zero trailing bits ("AR" decodes to 0x01 only if bits are dropped)
        assert_eq!(reason(&format!("{h}.{p}.AR")), Reason::JwsMalformed);
        // inner whitespace
        assert_eq!(reason(&format!("{h}.{p}.AQ AQ")), Reason::JwsMalformed);
        assert_eq!(reason(&format!("{h}.\n{p}.AQ")), Reason::JwsMalformed);
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = "A".repeat(JwsLimits::default().max_bytes + 1);
        assert_eq!(reason(&big), Reason::JwsTooLarge);
    }

    /// The caps are inclusive: an input of exactly the limit is parsed, one byte more is
    /// refused unread (cargo-mutants found `>` could become `>=` unnoticed; issue 15).
    #[test]
    fn size_caps_are_inclusive_limits() {
        let t = token(r#"{"alg":"HS256","kid":"k"}"#);
        let exact = JwsLimits {
            max_bytes: t.len(),
            ..JwsLimits::default()
        };
        assert!(parse(t.as_bytes(), &exact).is_ok());
        let under = JwsLimits {
            max_bytes: t.len() - 1,
            ..JwsLimits::default()
        };
        assert_eq!(
            parse(t.as_bytes(), &under).unwrap_err().reason,
            Reason::JwsTooLarge
        );
        let h = t.split('.').next().unwrap().len();
        let header_exact = JwsLimits {
            max_header_bytes: h,
            ..JwsLimits::default()
        };
        assert!(parse(t.as_bytes(), &header_exact).is_ok());
        let header_under = JwsLimits {
            max_header_bytes: h - 1,
            ..JwsLimits::default()
        };
        assert_eq!(
            parse(t.as_bytes(), &header_under).unwrap_err().reason,
            Reason::JwsTooLarge
        );
    }
}
