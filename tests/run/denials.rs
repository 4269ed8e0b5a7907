//! Every denial class through `edge-runner run`: exit 3, `error[<reason>]` on stderr, and
//! exactly one denial event (so the tool did not run) carrying the stage, the reason and
//! what the runner knew of the task. Issue 6, "Tests".

use super::{
    Backend, COMPLETED, ECHO_TOOL, World, assert_denial_event, assert_exit, assert_linked,
    assert_refused,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use edge_runner::sign::SigningKey;
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

on_both_backends!(
    a_tampered_payload_is_refused_as_signature_invalid,
    an_unknown_kid_is_refused,
    a_header_alg_other_than_the_keys_is_refused,
    an_expired_manifest_is_refused_at_the_claims_stage,
    a_replayed_task_is_refused_the_second_time,
    an_unknown_digest_is_refused,
    an_unauthorized_digest_is_refused,
    a_script_whose_interpreter_is_missing_is_refused_before_launch,
    a_tampered_blob_is_refused_as_digest_mismatch,
    required_apparmor_on_a_kernel_without_it_is_refused,
    an_environment_variable_that_runs_code_is_refused,
    a_task_for_another_runner_is_refused,
    a_signed_object_that_is_not_a_task_is_refused,
);

/// A manifest signed by hand (what `manifest sign` would refuse to sign), with `edit`
/// applied, signed with `header`.
fn hand_signed(
    w: &World,
    digest: &str,
    task_id: &str,
    edit: impl FnOnce(&mut Value),
    header: Option<Value>,
) -> PathBuf {
    let key = SigningKey::load(&w.path("signing-key.jwk"), None).unwrap();
    let stamp =
        |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let now = chrono::Utc::now();
    let mut m = w.manifest(task_id, digest);
    m["nonce"] = json!(crate::task_kit::nonce());
    m["issued_at"] = json!(stamp(now));
    m["expires_at"] = json!(stamp(now + chrono::TimeDelta::minutes(5)));
    edit(&mut m);
    let payload = serde_json::to_vec(&m).unwrap();
    let jws = match header {
        Some(h) => key.sign_with_header(&h, &payload),
        None => key.sign_compact(&payload),
    };
    write_task(w, &format!("{task_id}.jws"), &jws)
}

/// Issue 13 (and 17 item 3): a captured task ran on every runner sharing the key set.
/// A task whose `aud` names another runner or pool is refused here, with an event.
fn a_task_for_another_runner_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let task = hand_signed(
        &w,
        &digest,
        "t-aud",
        |m| m["aud"] = json!(["edge-elsewhere", "pool-b"]),
        None,
    );
    let o = w.run(&task);
    assert_refused(&o, "audience_mismatch", "claims");
    assert_denial_event(&w.only_event(), &task, "audience_mismatch", "claims");
    // Without any audience: refused too, unless the operator relaxes it.
    let task = hand_signed(
        &w,
        &digest,
        "t-noaud",
        |m| {
            m.as_object_mut().unwrap().remove("aud");
        },
        None,
    );
    assert_refused(&w.run(&task), "audience_missing", "claims");
    // The runner's pool is an audience too.
    w.write_config("[runner]\npools = [\"pool-b\"]\n");
    let task = hand_signed(&w, &digest, "t-pool", |m| m["aud"] = json!("pool-b"), None);
    assert_exit(&w.run(&task), 0);
}

/// RFC 8725 section 3.11: an object of another type signed by the same key (here a
/// plain `JWT`) is not a task.
fn a_signed_object_that_is_not_a_task_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let key = SigningKey::load(&w.path("signing-key.jwk"), None).unwrap();
    let header = json!({"alg": "ES256", "kid": key.kid, "typ": "JWT"});
    let task = hand_signed(&w, &digest, "t-typ", |_| {}, Some(header));
    let o = w.run(&task);
    assert_refused(&o, "typ_invalid", "claims");
    assert_denial_event(&w.only_event(), &task, "typ_invalid", "claims");
}

/// Issue 17 item 4, the attack as found: `PYTHONWARNINGS` + `BROWSER` made a Python tool
/// run a shell command the manifest never named. Refused before anything runs, with a
/// denial event; an operator allowing other names does not allow these.
fn an_environment_variable_that_runs_code_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    w.write_config("[env]\nallow = [\"GREETING\"]\n");
    // `manifest sign` refuses to sign what this runner would refuse: sign by hand.
    let key = SigningKey::load(&w.path("signing-key.jwk"), None).unwrap();
    let stamp =
        |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let now = chrono::Utc::now();
    let mut m = w.manifest("t-env", &digest);
    m["nonce"] = json!(crate::task_kit::nonce());
    m["issued_at"] = json!(stamp(now));
    m["expires_at"] = json!(stamp(now + chrono::TimeDelta::minutes(5)));
    m["env"] = json!({"PYTHONWARNINGS": "::Warning:webbrowser", "BROWSER": "sh -c id %s"});
    let jws = key.sign_compact(&serde_json::to_vec(&m).unwrap());
    let task = write_task(&w, "env.jws", &jws);
    let o = w.run(&task);
    assert_refused(&o, "env_not_allowed", "claims");
    let event = w.only_event();
    assert_denial_event(&event, &task, "env_not_allowed", "claims");
}

/// A refusal before the signature verified: the event must not repeat anything the
/// unverified payload claims (task, tenant, tool), only what was received.
fn assert_unverified(event: &Value) {
    let d = &event["data"];
    for field in ["task_id", "tenant_id", "operator_id", "tool_sha256"] {
        assert!(
            d[field].is_null(),
            "unverified {field} in the event: {event:#}"
        );
    }
    assert!(event.get("subject").is_none(), "{event:#}");
}

/// A world with an authorized echo tool; returns it and the tool's digest.
fn world_with_tool(backend: Backend) -> (World, String) {
    let w = World::new(backend);
    let digest = w.add_tool("echo-tool", ECHO_TOOL, true);
    (w, digest)
}

fn write_task(w: &World, name: &str, jws: &str) -> PathBuf {
    let p = w.path(name);
    std::fs::write(&p, format!("{jws}\n")).unwrap();
    p
}

fn a_tampered_payload_is_refused_as_signature_invalid(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let task = w.sign(&w.manifest("t-tamper", &digest));
    // The attacker keeps header and signature and changes what the tool is asked to do.
    let text = std::fs::read_to_string(&task).unwrap();
    let parts: Vec<&str> = text.trim().split('.').collect();
    let mut payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["args"] = json!(["--delete-everything"]);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let forged = write_task(&w, "forged.jws", &forged);
    let o = w.run(&forged);
    assert_refused(&o, "signature_invalid", "signature");
    let event = w.only_event();
    assert_denial_event(&event, &forged, "signature_invalid", "signature");
    assert_unverified(&event);
    // The genuine task is untouched by the attempt.
    assert_exit(&w.run(&task), 0);
}

fn an_unknown_kid_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "ES256",
        "--kid",
        "k-rogue",
        "--private",
        "rogue.jwk",
        "--public",
        "rogue-keys.json",
    ]);
    assert_exit(&o, 0);
    let task = w.sign_with(&w.manifest("t-kid", &digest), "rogue.jwk");
    let o = w.run(&task);
    assert_refused(&o, "kid_unknown", "signature");
    let event = w.only_event();
    assert_denial_event(&event, &task, "kid_unknown", "signature");
    assert_unverified(&event);
}

fn a_header_alg_other_than_the_keys_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    // An HS256 key under the configured ES256 key's kid: the key, not the header, decides.
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "HS256",
        "--kid",
        "k1",
        "--private",
        "hs.jwk",
        "--public",
        "hs-keys.json",
    ]);
    assert_exit(&o, 0);
    let task = w.sign_with(&w.manifest("t-alg", &digest), "hs.jwk");
    let header: Value = serde_json::from_slice(
        &B64.decode(
            std::fs::read_to_string(&task)
                .unwrap()
                .split('.')
                .next()
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "k1");
    let o = w.run(&task);
    assert_refused(&o, "alg_mismatch", "signature");
    let event = w.only_event();
    assert_denial_event(&event, &task, "alg_mismatch", "signature");
    assert_unverified(&event);
}

fn an_expired_manifest_is_refused_at_the_claims_stage(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    // `manifest sign` refuses to sign what a runner would refuse: sign by hand.
    let key = SigningKey::load(&w.path("signing-key.jwk"), None).unwrap();
    let stamp =
        |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let now = chrono::Utc::now();
    let mut m = w.manifest("t-expired", &digest);
    m["nonce"] = json!(crate::task_kit::nonce());
    m["issued_at"] = json!(stamp(now - chrono::TimeDelta::minutes(20)));
    m["expires_at"] = json!(stamp(now - chrono::TimeDelta::minutes(10)));
    let jws = key.sign_compact(&serde_json::to_vec(&m).unwrap());
    let task = write_task(&w, "expired.jws", &jws);
    let o = w.run(&task);
    assert_refused(&o, "manifest_expired", "claims");
    let event = w.only_event();
    assert_denial_event(&event, &task, "manifest_expired", "claims");
}

fn a_replayed_task_is_refused_the_second_time(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let task = w.sign(&w.manifest("t-replay", &digest));
    assert_exit(&w.run(&task), 0);
    let o = w.run(&task);
    assert_refused(&o, "replayed_nonce", "replay");
    let events = w.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["type"], COMPLETED);
    assert_denial_event(&events[1], &task, "replayed_nonce", "replay");
    assert_linked(&events[1], "t-replay", &digest);
    // The same event id is never reused.
    assert_ne!(events[0]["id"], events[1]["id"]);
}

fn an_unknown_digest_is_refused(backend: Backend) {
    let (w, _) = world_with_tool(backend);
    let digest = edge_runner::digest::sha256_id(b"a tool this armory never saw");
    let task = w.sign(&w.manifest("t-unknown", &digest));
    let o = w.run(&task);
    assert_refused(&o, "digest_unknown", "armory");
    let event = w.only_event();
    assert_denial_event(&event, &task, "digest_unknown", "armory");
    assert_linked(&event, "t-unknown", &digest);
}

fn an_unauthorized_digest_is_refused(backend: Backend) {
    let (w, _) = world_with_tool(backend);
    let digest = w.add_tool("pending", "#!/bin/sh\necho pending tool ran\n", false);
    let task = w.sign(&w.manifest("t-unauthorized", &digest));
    let o = w.run(&task);
    assert_refused(&o, "digest_unauthorized", "armory");
    let event = w.only_event();
    assert_denial_event(&event, &task, "digest_unauthorized", "armory");
    assert_linked(&event, "t-unauthorized", &digest);
    // The refusal did not spend the nonce: once the operator authorizes the digest, the
    // same signed task runs (once).
    assert_exit(&w.er(&["armory", "authorize", &digest]), 0);
    assert_exit(&w.run(&task), 0);
    let events = w.events();
    assert_eq!(events[1]["type"], COMPLETED, "{events:#?}");
    assert_refused(&w.run(&task), "replayed_nonce", "replay");
}

/// Regression (e2e review): a script for an interpreter the sandbox root lacks used to fail
/// at exec with a bare ENOENT (exit 4); it is refused with the reason instead.
fn a_script_whose_interpreter_is_missing_is_refused_before_launch(backend: Backend) {
    let (w, _) = world_with_tool(backend);
    let digest = w.add_tool("needs-ruby", "#!/opt/nowhere/ruby -w\nputs 1\n", true);
    let task = w.sign(&w.manifest("t-interp", &digest));
    let o = w.run(&task);
    assert_refused(&o, "tool_not_executable", "armory");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("/opt/nowhere/ruby"),
        "names the interpreter"
    );
    let event = w.only_event();
    assert_denial_event(&event, &task, "tool_not_executable", "armory");
    assert_linked(&event, "t-interp", &digest);
}

fn blob_path(w: &World, digest: &str) -> PathBuf {
    w.state()
        .join("armory/blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn flip_a_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(path, &bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

fn a_tampered_blob_is_refused_as_digest_mismatch(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let task = w.sign(&w.manifest("t-swapped", &digest));
    // After authorization, someone edits the stored tool ("echo" -> "ecHo" keeps it a
    // script; any change must be caught).
    let blob = blob_path(&w, &digest);
    let at = ECHO_TOOL.find("echo").unwrap() + 2;
    flip_a_byte(&blob, at);
    let o = w.run(&task);
    assert_refused(&o, "digest_mismatch", "armory");
    let event = w.only_event();
    assert_denial_event(&event, &task, "digest_mismatch", "armory");
    assert_linked(&event, "t-swapped", &digest);
}

/// AppArmor is required by default; this kernel (like CI's) has none, so the sandbox stage
/// refuses, on either backend, rather than running without it. With runsc, a missing
/// runsc binary is refused as well.
fn required_apparmor_on_a_kernel_without_it_is_refused(backend: Backend) {
    let (w, digest) = world_with_tool(backend);
    let task = w.sign(&w.manifest("t-apparmor", &digest));
    let o = w.run_with(&task, "required", &[]);
    assert_refused(&o, "apparmor_unavailable", "sandbox");
    assert!(
        super::stderr(&o).contains("if-available"),
        "the message says how to relax it: {}",
        super::stderr(&o)
    );
    let event = w.only_event();
    assert_denial_event(&event, &task, "apparmor_unavailable", "sandbox");
    assert_linked(&event, "t-apparmor", &digest);
    // The refusal came before the nonce was recorded: with the protection relaxed, the
    // same signed task runs.
    assert_exit(&w.run_with(&task, "if-available", &[]), 0);
    assert_eq!(w.events()[1]["type"], COMPLETED);
    if backend == Backend::Native {
        return;
    }
    w.write_config(&format!(
        "[sandbox]\nrunsc_path = {:?}\n",
        w.path("no-such-runsc").to_str().unwrap()
    ));
    let task = w.sign(&w.manifest("t-no-runsc", &digest));
    let o = w.run(&task);
    assert_refused(&o, "sandbox_unavailable", "sandbox");
    assert!(
        super::stderr(&o).contains("no-such-runsc"),
        "{}",
        super::stderr(&o)
    );
    let events = w.events();
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_denial_event(&events[2], &task, "sandbox_unavailable", "sandbox");
    assert_linked(&events[2], "t-no-runsc", &digest);
}
