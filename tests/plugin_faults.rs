//! Hostile and broken plugins: traps, infinite loops, unbounded allocation, garbage return
//! values, ungranted imports, wrong worlds, tampered files. Each must give a clean
//! refusal (never an acceptance), within the fuel/memory budget, and leave the host
//! working.

use crate::support::{fixture, keyset, verifiers_with};
use edge_runner::jws::{self, JwsLimits};
use edge_runner::plugins::{PinnedFile, PluginLimits, Verifiers};
use edge_runner::reason::Reason;
use edge_runner::sign::SigningKey;
use edge_runner::verify::SignatureVerifier;
use std::collections::BTreeMap;

const PAYLOAD: &[u8] = b"{}";

/// HS256 served by the misbehaving fixture, ES256 by the default plugin.
fn hostile_gate(limits: PluginLimits) -> SignatureVerifier {
    let v = verifiers_with("HS256", &fixture("misbehaving"), limits).unwrap();
    let mut keys = Vec::new();
    for kid in ["trap", "loop", "hog", "garbage", "plain"] {
        keys.push(SigningKey::hs256(kid, &[1; 32]).public_jwk());
    }
    keys.push(crate::support::es_key("es").public_jwk());
    SignatureVerifier::new(keyset(&keys), v).unwrap()
}

fn refusal(v: &SignatureVerifier, kid: &str) -> edge_runner::reason::Refusal {
    let t = SigningKey::hs256(kid, &[1; 32]).sign_compact(PAYLOAD);
    let parsed = jws::parse(t.as_bytes(), &JwsLimits::default()).unwrap();
    v.verify(parsed)
        .expect_err("a faulting plugin must never accept")
}

fn still_works(v: &SignatureVerifier) {
    let t = crate::support::es_key("es").sign_compact(PAYLOAD);
    let parsed = jws::parse(t.as_bytes(), &JwsLimits::default()).unwrap();
    v.verify(parsed)
        .expect("the host keeps verifying after a plugin fault");
}

#[test]
fn a_trapping_plugin_is_a_refusal() {
    let v = hostile_gate(PluginLimits::default());
    let r = refusal(&v, "trap");
    assert_eq!(r.reason, Reason::PluginFailed);
    assert!(r.message.contains("trapped"), "{}", r.message);
    still_works(&v);
}

#[test]
fn a_looping_plugin_runs_out_of_fuel() {
    let v = hostile_gate(PluginLimits::default());
    let r = refusal(&v, "loop");
    assert_eq!(r.reason, Reason::PluginFailed);
    assert!(r.message.contains("fuel"), "{}", r.message);
    still_works(&v);
    // Repeatedly: no resource leaks across faulting instances (pool slots are returned).
    for _ in 0..5 {
        assert_eq!(refusal(&v, "loop").reason, Reason::PluginFailed);
    }
    still_works(&v);
}

#[test]
fn a_memory_hog_hits_the_memory_limit() {
    let limits = PluginLimits {
        memory_bytes: 8 * 1024 * 1024,
        ..PluginLimits::default()
    };
    let v = hostile_gate(limits);
    let r = refusal(&v, "hog");
    assert_eq!(r.reason, Reason::PluginFailed);
    assert!(r.message.contains("memory"), "{}", r.message);
    still_works(&v);
    // More instances than the pool holds, all faulting: slots must be recycled.
    for _ in 0..80 {
        assert_eq!(refusal(&v, "hog").reason, Reason::PluginFailed);
    }
    still_works(&v);
}

#[test]
fn a_plugin_returning_garbage_is_a_refusal() {
    let v = hostile_gate(PluginLimits::default());
    let r = refusal(&v, "garbage");
    assert_eq!(r.reason, Reason::PluginFailed);
    assert!(r.message.contains("malformed"), "{}", r.message);
    still_works(&v);
    // And a plain "no" from the same plugin is an ordinary invalid signature.
    assert_eq!(refusal(&v, "plain").reason, Reason::SignatureInvalid);
}

#[test]
fn a_plugin_importing_ungranted_interfaces_refuses_to_load() {
    let err = verifiers_with("HS256", &fixture("ungranted"), PluginLimits::default()).unwrap_err();
    assert!(err.contains("not granted"), "{err}");
    assert!(err.contains("wasi:"), "names the import: {err}");
}

#[test]
fn a_std_plugin_runs_against_a_deny_all_wasi_context() {
    let v = verifiers_with("HS256", &fixture("std-probe"), PluginLimits::default()).unwrap();
    let imports = &v.get("HS256").unwrap().imports;
    assert!(
        imports.iter().any(|i| i.starts_with("wasi:cli/")),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .all(|i| i.starts_with("wasi:cli/") || i.starts_with("wasi:io/")),
        "only the deny-all surface may be linked: {imports:?}"
    );
    let gate = SignatureVerifier::new(keyset(&[SigningKey::hs256("p", &[1; 32]).public_jwk()]), v)
        .unwrap();
    let r = refusal(&gate, "p");
    assert_eq!(r.reason, Reason::SignatureMalformed);
    // No environment, no arguments, an empty stdin.
    assert!(
        r.message.contains("env=0 args=0 stdin=Ok(0)"),
        "{}",
        r.message
    );
}

#[test]
fn a_std_plugin_lists_its_wasi_imports() {
    // The misbehaving fixture is no_std (no imports); the registry reports per plugin.
    let v = verifiers_with("HS256", &fixture("misbehaving"), PluginLimits::default()).unwrap();
    assert!(v.get("HS256").unwrap().imports.is_empty());
    assert!(v.get("ES256").unwrap().imports.is_empty());
}

#[test]
fn a_pin_mismatch_refuses_to_load_naming_both_digests() {
    let path = fixture("misbehaving");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "HS256".to_string(),
        PinnedFile {
            path: path.clone(),
            sha256: wrong.clone(),
        }
        .into(),
    );
    let err = Verifiers::load(crate::support::host(PluginLimits::default()), &overrides)
        .unwrap_err()
        .to_string();
    let actual = edge_runner::digest::sha256_id(&std::fs::read(&path).unwrap());
    assert!(err.contains(&wrong) && err.contains(&actual), "{err}");
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("plugin.wasm");
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

#[test]
fn garbage_files_and_wrong_worlds_refuse_to_load() {
    // Not WebAssembly at all.
    let (_d, p) = write_temp(b"\x7fELF not a component");
    let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    // A core module, not a component.
    let (_d, p) = write_temp(&wat::parse_str("(module)").unwrap());
    let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
    assert!(err.contains("not a valid WebAssembly component"), "{err}");
    // A component implementing nothing: wrong world, named with the expected version.
    let (_d, p) = write_temp(&wat::parse_str("(component)").unwrap());
    let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
    assert!(
        err.contains("verifier-plugin") && err.contains("edge-runner:plugin@0.2.0"),
        "{err}"
    );
    // A component exporting the interface from a package version this host does not
    // load: refused naming that version and the supported ones (plugins::contract).
    let exporting = |name: &str| {
        format!(
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func $f (canon lift (core func $i "f")))
                (instance $v (export "info" (func $f)))
                (export "{name}" (instance $v)))"#
        )
    };
    let (_d, p) =
        write_temp(&wat::parse_str(exporting("edge-runner:plugin/verifier@0.0.9")).unwrap());
    let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
    assert!(
        err.contains("edge-runner:plugin/verifier@0.0.9")
            && err.contains("0.2.x (current) and 0.1.x"),
        "{err}"
    );
    // The right names with the wrong shape: a world mismatch, for either loadable version.
    for version in ["0.2.0", "0.1.0"] {
        let name = format!("edge-runner:plugin/verifier@{version}");
        let (_d, p) = write_temp(&wat::parse_str(exporting(&name)).unwrap());
        let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
        assert!(
            err.contains("does not implement world `verifier-plugin`"),
            "{version}: {err}"
        );
    }
}

#[test]
fn an_oversized_plugin_file_is_refused_before_parsing() {
    let (_d, p) = write_temp(&vec![0u8; 17 * 1024 * 1024]);
    let err = verifiers_with("HS256", &p, PluginLimits::default()).unwrap_err();
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn a_plugin_configured_for_an_algorithm_it_does_not_implement_is_refused() {
    let err =
        verifiers_with("EdDSA", &fixture("misbehaving"), PluginLimits::default()).unwrap_err();
    assert!(
        err.contains("EdDSA") && err.contains("implements only"),
        "{err}"
    );
}

#[test]
fn every_embedded_verifier_declares_what_the_binary_lists() {
    // `load` checks each embedded plugin's own declaration against the binary's list
    // (which `load_for` relies on to skip plugins); a mismatch is a load error.
    let v = Verifiers::load(
        crate::support::host(PluginLimits::default()),
        &BTreeMap::new(),
    )
    .unwrap();
    for builtin in edge_runner::plugins::embedded::VERIFIERS {
        for alg in builtin.algorithms {
            assert!(
                v.get(alg).is_some(),
                "{} does not serve {alg}",
                builtin.name
            );
        }
    }
    assert_eq!(v.available(), ["ES256", "Ed25519", "EdDSA", "HS256"]);
}

#[test]
fn only_the_verifiers_the_keys_need_are_loaded() {
    let es256_only = std::collections::BTreeSet::from(["ES256"]);
    let v = Verifiers::load_for(
        crate::support::host(PluginLimits::default()),
        &BTreeMap::new(),
        &es256_only,
    )
    .unwrap();
    assert!(v.get("ES256").is_some());
    assert!(v.get("HS256").is_none(), "loaded a verifier no key needs");
    // Still named as available, for the "no verifier for this key" message.
    assert_eq!(v.available(), ["ES256", "Ed25519", "EdDSA", "HS256"]);

    // A configured override is loaded even when no key needs it, so a broken pin is
    // reported by every command, not only by the first task that needs it.
    let mut overrides = BTreeMap::new();
    overrides.insert(
        "HS256".to_owned(),
        PinnedFile {
            path: fixture("misbehaving"),
            sha256: "sha256:".to_owned() + &"0".repeat(64),
        }
        .into(),
    );
    let err = Verifiers::load_for(
        crate::support::host(PluginLimits::default()),
        &overrides,
        &es256_only,
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("sha256"), "{err:#}");
}
