//! Shared helpers for the manifest, replay and armory suites: signing real tasks and
//! verifying them through the real verifier plugins, so every `CheckedManifest` in these
//! tests came through a `VerifiedJws`, as in production.

use edge_runner::keys::KeySet;
use edge_runner::manifest::{self, CheckedManifest, ClaimPolicy};
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits, Verifiers};
use edge_runner::sign::SigningKey;
use edge_runner::verify::{SignatureVerifier, VerifiedJws};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

pub const BIN: &str = env!("CARGO_BIN_EXE_edge-runner");

/// A signer and the runner-side verifier for its key.
pub struct Kit {
    pub key: SigningKey,
    pub verifier: SignatureVerifier,
}

impl Kit {
    pub fn new() -> Self {
        let key = SigningKey::hs256("test-key", &[7u8; 32]);
        let jwks = serde_json::to_vec(&json!({ "keys": [key.public_jwk()] })).unwrap();
        let keys = KeySet::parse(&jwks, Path::new("test-keys.json")).unwrap();
        let host = PluginHost::new(PluginLimits::default(), CompileCache::disabled()).unwrap();
        let verifiers = Verifiers::load(host, &BTreeMap::new()).unwrap();
        let verifier = SignatureVerifier::new(keys, verifiers).unwrap();
        Self { key, verifier }
    }

    pub fn verified(&self, manifest: &Value) -> VerifiedJws {
        let compact = self
            .key
            .sign_compact(&serde_json::to_vec(manifest).unwrap());
        let parsed = edge_runner::jws::parse(compact.as_bytes(), &Default::default()).unwrap();
        self.verifier.verify(parsed).unwrap()
    }

    pub fn checked(&self, manifest: &Value) -> CheckedManifest {
        manifest::decode(&self.verified(manifest), &policy(), chrono::Utc::now()).unwrap()
    }
}

pub fn policy() -> ClaimPolicy {
    ClaimPolicy::default().for_audience(edge_runner::config::RunnerConfig::default().audience())
}

/// A fresh 256-bit nonce.
pub fn nonce() -> String {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A valid manifest for `digest`, issued now, expiring in five minutes.
pub fn manifest(digest: &str, nonce: &str) -> Value {
    let now = chrono::Utc::now();
    let t = |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "manifest_version": "1",
        "aud": edge_runner::config::RunnerConfig::default().id,
        "task_context": {"task_id": "t-42", "tenant_id": "acme"},
        "tool_sha256": digest,
        "nonce": nonce,
        "issued_at": t(now),
        "expires_at": t(now + chrono::TimeDelta::minutes(5)),
    })
}

/// True when running as root (CI is root); tests that need it say so loudly otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A fresh private directory (0700), removed at the end of the test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
