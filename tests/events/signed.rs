//! Issue 15, signed events: every event the runner emits carries its detached ES256
//! signature (`runnersig`), and `edge-runner events verify --keys` names each event that
//! is forged, altered, bound to another manifest, re-signed with another key, or replayed.
//! Each attack below is one the check exists for; removing the check fails its test.

use super::*;
use edge_runner::events::signing::{self, EventCheck, EventSigner};
use edge_runner::sign::{SignAlg, SigningKey};
use std::os::unix::fs::PermissionsExt as _;

/// A runner signing key on disk (0600) and its public key set, in `dir`.
fn runner_key(dir: &Path, kid: &str) -> (PathBuf, PathBuf, SigningKey) {
    let key = SigningKey::generate(SignAlg::Es256, kid).unwrap();
    let private = dir.join(format!("{kid}.jwk"));
    std::fs::write(&private, serde_json::to_vec(&key.private_jwk()).unwrap()).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = dir.join(format!("{kid}.jwks"));
    std::fs::write(
        &public,
        serde_json::to_vec(&serde_json::json!({ "keys": [key.public_jwk()] })).unwrap(),
    )
    .unwrap();
    (private, public, key)
}

fn signing_section(key: &Path) -> String {
    format!("[events.signing]\nkey = {:?}\n", key.display().to_string())
}

/// Emits a denial and a completion through a signing pipeline with a file sink; returns
/// the file's lines.
fn emit_signed(dir: &Path, key: &Path) -> Vec<Vec<u8>> {
    let p = pipeline(dir, &signing_section(key));
    p.emit(&completed(b"hello\n", b"")).unwrap();
    p.emit(&denied(Reason::DigestUnauthorized, task())).unwrap();
    std::fs::read(dir.join("events.jsonl"))
        .unwrap()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn verify_cli(keys: &Path, lines: &[Vec<u8>]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stream.jsonl");
    std::fs::write(&file, lines.join(&b'\n')).unwrap();
    let out = Command::new(crate::support::bin())
        .args(["events", "verify", "--keys"])
        .arg(keys)
        .arg(&file)
        .env_remove("EDGE_RUNNER_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Replaces `from` by `to` once in `line` (an attacker editing a stored event).
fn edit(line: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(line.to_vec()).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn every_emitted_event_is_signed_and_verifies_through_the_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, key) = runner_key(dir.path(), "runner-1");
    let lines = emit_signed(dir.path(), &private);
    assert_eq!(lines.len(), 2);
    let verifier = crate::support::signature_verifier(&[key.public_jwk()]);
    for line in &lines {
        // Still a valid CloudEvent for receivers that ignore the signature.
        edge_runner::events::validate::check_json(line, Some(65536)).unwrap();
        let v = signing::verify(line, &verifier).unwrap();
        assert_eq!(v.kid, "runner-1");
        assert_eq!(
            v.manifest_sha256.as_deref(),
            task().manifest_sha256.as_deref()
        );
    }
    let (ok, report) = python_check(&lines, 65536);
    assert!(ok, "signed events fail the independent checker: {report}");
    let (code, out) = verify_cli(&public, &lines);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 events, 2 verified, 0 failed"), "{out}");
}

#[test]
fn forged_altered_rebound_resigned_and_replayed_events_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public, _) = runner_key(dir.path(), "runner-1");
    let lines = emit_signed(dir.path(), &private);
    let good = &lines[0];
    let v: serde_json::Value = serde_json::from_slice(good).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    let digest = v["data"]["manifest_sha256"].as_str().unwrap().to_owned();

    // 1. Forged: an event written by someone who can write to the sink, with a made-up
    //    signature in the right shape.
    let (unsigned, header, _) = signing::split(&lines[1]).unwrap();
    let mut forged_sig = unsigned[..unsigned.len() - 1].to_vec();
    forged_sig
        .extend_from_slice(format!(",\"runnersig\":\"{header}..{}\"}}", "A".repeat(86)).as_bytes());
    // ... and one with no signature at all.
    // 2. Its manifest digest changed (moved to another task).
    let other = format!("sha256:{}", "cd".repeat(32));
    let rebound = edit(good, &digest, &other);
    // 3. Altered output under a valid signature.
    let altered = edit(good, "hello", "HELLO");
    // 4. Re-signed by an attacker's key using the runner's kid (after changing the data).
    let attacker =
        EventSigner::new(SigningKey::generate(SignAlg::Es256, "runner-1").unwrap()).unwrap();
    let (body, _, _) = signing::split(good).unwrap();
    let body = String::from_utf8(body)
        .unwrap()
        .replacen("hello", "evil!", 1);
    let resigned = attacker.sign(body.as_bytes(), &id, Some(&digest));
    // 5. Replayed: the good event again.
    let stream = vec![
        good.clone(),
        forged_sig,
        unsigned,
        rebound,
        altered,
        resigned,
        good.clone(),
    ];
    let (code, out) = verify_cli(&public, &stream);
    assert_eq!(code, 3, "{out}");
    let line = |n: usize| {
        out.lines()
            .find(|l| l.starts_with(&format!("line {n}: ")))
            .unwrap_or_else(|| panic!("no report for line {n}: {out}"))
            .to_owned()
    };
    assert!(line(1).contains("verified"), "{out}");
    for (n, code) in [
        (2, "event_signature_invalid"),
        (3, "event_unsigned"),
        (4, "event_signature_invalid"),
        (5, "event_signature_invalid"),
        (6, "event_signature_invalid"),
        (7, "event_replayed"),
    ] {
        let l = line(n);
        assert!(
            l.contains(&format!("FAILED [{code}]")),
            "line {n}: {l}\n{out}"
        );
    }
    // Each failing event is named by its id.
    assert!(line(7).contains(&id), "{}", line(7));
    assert!(out.contains("7 events, 1 verified, 6 failed"), "{out}");
}

#[test]
fn a_signature_bound_to_another_event_id_or_manifest_is_refused() {
    // A signer that is fed the wrong id or manifest (or an attacker who can sign with the
    // runner's key for one task and replays it for another) must not verify.
    let key = SigningKey::generate(SignAlg::Es256, "runner-1").unwrap();
    let verifier = crate::support::signature_verifier(&[key.public_jwk()]);
    let signer = EventSigner::new(key).unwrap();
    let event = br#"{"specversion":"1.0","id":"e-1","source":"urn:x","type":"t","datacontenttype":"application/json","data":{"manifest_sha256":"sha256:aa"}}"#;
    let ok = signer.sign(event, "e-1", Some("sha256:aa"));
    assert!(signing::verify(&ok, &verifier).is_ok());
    let wrong_id = signer.sign(event, "e-2", Some("sha256:aa"));
    assert!(matches!(
        signing::verify(&wrong_id, &verifier),
        Err(EventCheck::IdMismatch { .. })
    ));
    let wrong_manifest = signer.sign(event, "e-1", Some("sha256:bb"));
    assert!(matches!(
        signing::verify(&wrong_manifest, &verifier),
        Err(EventCheck::ManifestMismatch { .. })
    ));
}

#[test]
fn a_task_signature_is_not_an_event_signature() {
    // The same key signing a task (typ JWT) and events: a task JWS over event bytes must
    // not pass as an event signature.
    let key = SigningKey::generate(SignAlg::Es256, "shared").unwrap();
    let verifier = crate::support::signature_verifier(&[key.public_jwk()]);
    let event = br#"{"specversion":"1.0","id":"e-1","source":"urn:x","type":"t"}"#;
    let task_jws = key.sign_compact(event);
    let mut parts = task_jws.split('.');
    let (h, _, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let mut line = event[..event.len() - 1].to_vec();
    line.extend_from_slice(format!(",\"runnersig\":\"{h}..{s}\"}}").as_bytes());
    let e = signing::verify(&line, &verifier).unwrap_err();
    assert_eq!(e.code(), "event_signature_header", "{e}");
}

#[test]
fn a_readable_or_hmac_signing_key_stops_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _, _) = runner_key(dir.path(), "runner-1");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = config(dir.path(), &signing_section(&private));
    let e = EventPipeline::new(&cfg, &host()).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::new(e));
    assert!(chain.contains("chmod 600"), "{chain}");

    let hs = SigningKey::generate(SignAlg::Hs256, "h").unwrap();
    let hs_path = dir.path().join("hs.jwk");
    std::fs::write(&hs_path, serde_json::to_vec(&hs.private_jwk()).unwrap()).unwrap();
    std::fs::set_permissions(&hs_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = config(dir.path(), &signing_section(&hs_path));
    let e = EventPipeline::new(&cfg, &host()).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::new(e));
    assert!(chain.contains("ES256"), "{chain}");
}

#[test]
fn signed_events_still_fit_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (private, _, _) = runner_key(dir.path(), &"k".repeat(128));
    let p = pipeline(dir.path(), &signing_section(&private));
    let report = p.emit(&completed(&vec![b'x'; 200_000], b"")).unwrap();
    assert!(report.bytes <= 65536, "{} bytes", report.bytes);
    assert!(!report.over_cap);
}
