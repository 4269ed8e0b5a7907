//! Manifest decoding through the real pipeline (sign, verify through the plugins, decode)
//! and the `manifest sign` / `manifest schema` commands. Field-by-field refusals are unit
//! tests in `host/src/manifest/tests.rs`.

use crate::task_kit::{self, BIN, Kit};
use edge_runner::manifest;
use edge_runner::reason::Reason;
use edge_runner::reason::Refuse as _;
use serde_json::json;
use std::process::Command;

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn a_verified_task_decodes_with_its_signer() {
    let kit = Kit::new();
    let m = kit.checked(&task_kit::manifest(DIGEST, &task_kit::nonce()));
    assert_eq!(m.kid(), "test-key");
    assert_eq!(m.alg(), "HS256");
    assert_eq!(m.tool().as_str(), DIGEST);
    assert_eq!(m.task().tenant_id, "acme");
}

#[test]
fn refusals_through_the_pipeline_keep_their_codes() {
    let kit = Kit::new();
    let now = chrono::Utc::now();
    let mut m = task_kit::manifest(DIGEST, &task_kit::nonce());
    m["env"] = json!({"LD_PRELOAD": "/tmp/x.so"});
    let e = manifest::decode(&kit.verified(&m), &task_kit::policy(), now).unwrap_err();
    assert_eq!(e.to_refusal().reason, Reason::EnvNotAllowed);
    assert!(e.to_refusal().message.contains("LD_PRELOAD"));

    let mut m = task_kit::manifest(DIGEST, &task_kit::nonce());
    m["issued_at"] = json!("2020-01-01T00:00:00Z");
    m["expires_at"] = json!("2020-01-01T00:05:00Z");
    let e = manifest::decode(&kit.verified(&m), &task_kit::policy(), now).unwrap_err();
    assert_eq!(e.reason(), Reason::ManifestExpired);

    let mut m = task_kit::manifest(DIGEST, &task_kit::nonce());
    m["limits"] = json!({"memory_bytes": 1u64 << 40});
    let e = manifest::decode(&kit.verified(&m), &task_kit::policy(), now).unwrap_err();
    assert_eq!(e.reason(), Reason::LimitsExceeded);
}

#[test]
fn manifest_sign_refuses_what_a_runner_would_refuse() {
    let dir = task_kit::tempdir();
    let key = dir.path().join("k.jwk");
    std::fs::write(
        &key,
        serde_json::to_vec(&Kit::new().key.private_jwk()).unwrap(),
    )
    .unwrap();
    let file = dir.path().join("m.json");
    let mut m = task_kit::manifest(DIGEST, &task_kit::nonce());
    m["env"] = json!({"PATH": "/evil"});
    std::fs::write(&file, serde_json::to_vec(&m).unwrap()).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "").unwrap();
    let sign = |path: &std::path::Path, extra: &[&str]| {
        Command::new(BIN)
            .args(["--config"])
            .arg(&cfg)
            .args(["manifest", "sign", "--key"])
            .arg(&key)
            .args(extra)
            .arg(path)
            .output()
            .unwrap()
    };
    let out = sign(&file, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("env.PATH") && err.contains("env_not_allowed"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // A stale template: refused as expired, signed with --fill.
    let mut m = task_kit::manifest(DIGEST, "0");
    m["issued_at"] = json!("2020-01-01T00:00:00Z");
    m["expires_at"] = json!("2020-01-01T00:05:00Z");
    std::fs::write(&file, serde_json::to_vec(&m).unwrap()).unwrap();
    assert_eq!(sign(&file, &[]).status.code(), Some(2));
    let out = sign(&file, &["--fill", "--ttl", "120"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compact = String::from_utf8(out.stdout).unwrap();
    let kit = Kit::new();
    let parsed = edge_runner::jws::parse(compact.trim().as_bytes(), &Default::default()).unwrap();
    let verified = kit.verifier.verify(parsed).unwrap();
    let checked = manifest::decode(&verified, &task_kit::policy(), chrono::Utc::now()).unwrap();
    assert_eq!(checked.nonce().len(), 43); // 256 bits, base64url
    assert_eq!(
        (checked.expires_at() - checked.issued_at()).num_seconds(),
        120
    );
    // --fill beyond the runner's maximum age is refused too.
    assert_eq!(
        sign(&file, &["--fill", "--ttl", "100000"]).status.code(),
        Some(2)
    );
}

#[test]
fn manifest_schema_is_printed_as_json() {
    let out = Command::new(BIN)
        .args(["--config", "/dev/null", "manifest", "schema"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["additionalProperties"], false);
    let required = schema["required"].as_array().unwrap();
    for f in [
        "manifest_version",
        "task_context",
        "tool_sha256",
        "nonce",
        "issued_at",
        "expires_at",
    ] {
        assert!(required.contains(&json!(f)), "{f}");
    }
}
