//! Shared helpers: a process-wide verifier registry on the embedded plugins, key sets,
//! and signing. Nothing here asserts; tests do.

#![allow(dead_code)]

use edge_runner::keys::KeySet;
use edge_runner::plugins::{CompileCache, PinnedFile, PluginHost, PluginLimits, Verifiers};
use edge_runner::sign::SigningKey;
use edge_runner::verify::SignatureVerifier;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A compile cache shared by the whole test process (so each plugin compiles once).
pub fn cache_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
}

pub fn host(limits: PluginLimits) -> PluginHost {
    PluginHost::new(limits, CompileCache::at(&cache_dir().join("cache"))).expect("plugin host")
}

/// The default verifiers (embedded plugins), loaded once.
pub fn verifiers() -> &'static Verifiers {
    static V: OnceLock<Verifiers> = OnceLock::new();
    V.get_or_init(|| {
        Verifiers::load(host(PluginLimits::default()), &BTreeMap::new()).expect("verifiers")
    })
}

/// Verifiers where `alg` is served by the plugin file at `path` (pinned to its digest).
pub fn verifiers_with(alg: &str, path: &Path, limits: PluginLimits) -> Result<Verifiers, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut overrides = BTreeMap::new();
    overrides.insert(
        alg.to_owned(),
        PinnedFile {
            path: path.to_owned(),
            sha256: edge_runner::digest::sha256_id(&bytes),
        }
        .into(),
    );
    Verifiers::load(host(limits), &overrides).map_err(|e| format!("{e:#}"))
}

pub fn fixture(name: &str) -> PathBuf {
    match name {
        "misbehaving" => PathBuf::from(env!("EDGE_RUNNER_FIXTURE_MISBEHAVING")),
        "ungranted" => PathBuf::from(env!("EDGE_RUNNER_FIXTURE_UNGRANTED")),
        "std-probe" => PathBuf::from(env!("EDGE_RUNNER_FIXTURE_STD_PROBE")),
        other => panic!("unknown fixture {other}"),
    }
}

/// A test fixture plugin built by host/build.rs (`kind = "fixture"` in
/// plugins/shipped.toml), by its name there.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "misbehaving" => env!("EDGE_RUNNER_FIXTURE_MISBEHAVING"),
        "ungranted" => env!("EDGE_RUNNER_FIXTURE_UNGRANTED"),
        "std-probe" => env!("EDGE_RUNNER_FIXTURE_STD_PROBE"),
        "mapper-faults" => env!("EDGE_RUNNER_FIXTURE_MAPPER_FAULTS"),
        "weak-es256" => env!("EDGE_RUNNER_FIXTURE_WEAK_ES256"),
        "declares-twice" => env!("EDGE_RUNNER_FIXTURE_DECLARES_TWICE"),
        "declares-none" => env!("EDGE_RUNNER_FIXTURE_DECLARES_NONE"),
        "hs256-contract-0-1" => env!("EDGE_RUNNER_FIXTURE_HS256_CONTRACT_0_1"),
        "cloudevents-mapper-contract-0-1" => {
            env!("EDGE_RUNNER_FIXTURE_CLOUDEVENTS_MAPPER_CONTRACT_0_1")
        }
        "future-contract" => env!("EDGE_RUNNER_FIXTURE_FUTURE_CONTRACT"),
        other => panic!("unknown fixture {other}"),
    })
}

pub fn keyset(keys: &[Value]) -> KeySet {
    let doc = serde_json::to_vec(&json!({ "keys": keys })).expect("json");
    KeySet::parse(&doc, Path::new("test-keys.json")).expect("key set")
}

/// Builds a SignatureVerifier from fresh default verifiers (a `SignatureVerifier` owns
/// its registry, so tests that need one load their own).
pub fn signature_verifier(keys: &[Value]) -> SignatureVerifier {
    let v = Verifiers::load(host(PluginLimits::default()), &BTreeMap::new()).expect("verifiers");
    SignatureVerifier::new(keyset(keys), v).expect("valid keys")
}

pub fn hs_key(kid: &str) -> SigningKey {
    SigningKey::hs256(kid, &[0x5a; 32])
}

pub fn es_key(kid: &str) -> SigningKey {
    let mut scalar = [0u8; 32];
    scalar[31] = 7;
    scalar[0] = 0x11;
    SigningKey::es256(kid, &scalar).expect("scalar")
}

pub fn rfc7515() -> Value {
    let text = std::fs::read_to_string(fixtures().join("rfc7515-appendix-a.json"))
        .expect("RFC 7515 vectors");
    serde_json::from_str(&text).expect("vectors json")
}

/// `(name, value)` string members of a JWK object.
pub fn members(jwk: &Value) -> Vec<(String, String)> {
    jwk.as_object()
        .expect("object")
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect()
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_edge-runner")
}

/// `tests/fixtures/` (copies of the official RFC 7515 vectors and CloudEvents schema).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}
