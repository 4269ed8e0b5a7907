//! The compact JWS parser and header decoding (`jws::parse`). Invariants on anything it
//! accepts: it re-serializes to exactly the bytes received (canonical base64url, one
//! encoding per value), the signing input is the first two segments, and an independent
//! reading of the header agrees with the parsed one and holds none of the refused members.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_runner::jws::{JwsLimits, parse};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let limits = JwsLimits::default();
    let Ok(jws) = parse(data, &limits) else {
        return;
    };
    let received = data.trim_ascii();
    assert_eq!(jws.compact.as_bytes(), received, "compact is not the input");
    let segments: Vec<&str> = jws.compact.split('.').collect();
    assert_eq!(segments.len(), 3);
    let header_bytes = match URL_SAFE_NO_PAD.decode(segments[0]) {
        Ok(b) => b,
        Err(e) => panic!("accepted a header segment that does not decode: {e}"),
    };
    let again = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(&header_bytes),
        URL_SAFE_NO_PAD.encode(&jws.payload),
        URL_SAFE_NO_PAD.encode(&jws.signature)
    );
    assert_eq!(again, jws.compact, "accepted a non-canonical encoding");
    assert_eq!(
        jws.signing_input(),
        format!("{}.{}", segments[0], segments[1]).as_bytes()
    );
    assert!(received.len() <= limits.max_bytes);
    assert!(segments[0].len() <= limits.max_header_bytes);
    assert!(!jws.payload.is_empty() && !jws.signature.is_empty());

    // An independent reading of the header (serde_json keeps the last duplicate, so
    // agreement also means the strict reader refused nothing it should not have read).
    let header: Value = match serde_json::from_slice(&header_bytes) {
        Ok(v) => v,
        Err(e) => panic!("accepted a header that is not JSON: {e}"),
    };
    let Value::Object(h) = &header else {
        panic!("accepted a header that is not an object: {header}");
    };
    assert_eq!(
        h.get("alg").and_then(Value::as_str),
        Some(jws.header.alg.as_str())
    );
    assert!(
        !jws.header.alg.eq_ignore_ascii_case("none"),
        "alg none accepted"
    );
    assert_eq!(
        h.get("kid").and_then(Value::as_str),
        jws.header.kid.as_deref()
    );
    assert_eq!(
        h.get("typ").and_then(Value::as_str),
        jws.header.typ.as_deref()
    );
    for refused in ["jwk", "jku", "x5u", "x5c", "crit", "b64"] {
        assert!(!h.contains_key(refused), "accepted a header with {refused}");
    }
    assert!(edge_runner_fuzz::depth(&header) <= limits.max_depth);
});
