//! Signed authorization end to end through `edge-runner run`: statements made with
//! `armory policy sign`, installed with `armory policy apply`, and the run-time answers
//! (authorized, not listed, revoked by a newer statement, expired, another tenant, no
//! statement), each denial with its code and a denial event; the refusals at apply time
//! (rollback, another audience, unsigned, wrongly signed, a task offered as a statement,
//! a statement offered as a task); and a tool pulled on demand from the real registry.

use super::Registry;
use super::pull::{pull_config, push, stored};
use crate::run::{
    Backend, ECHO_TOOL, World, assert_denial_event, assert_exit, assert_refused, stderr, stdout,
};
use serde_json::{Value, json};
use std::path::PathBuf;

fn runner_id() -> String {
    edge_runner::config::RunnerConfig::default().id
}

/// The configuration of a signed-mode world (`extra` goes before any table).
fn signed_config(w: &World, extra: &str) -> String {
    format!(
        "keys = {:?}\n{extra}\n[armory]\nauthorization = \"signed\"\n[claims]\nclock_skew_secs = 0\n",
        w.path("keys.json").to_str().unwrap()
    )
}

fn signed_world() -> World {
    let w = World::new(Backend::Native);
    w.write_config(&signed_config(&w, ""));
    w
}

fn tool(digest: &str, name: &str) -> Value {
    json!({"digest": digest, "name": name})
}

/// Signs a statement with `key` (default: the world's task key, which is in its key set).
fn statement_with(w: &World, body: &Value, key: &str, ttl: Option<u32>) -> PathBuf {
    let n = std::fs::read_dir(w.path("")).unwrap().count();
    let file = w.path(&format!("statement-{n}.json"));
    std::fs::write(&file, body.to_string()).unwrap();
    let mut args = vec![
        "armory".to_owned(),
        "policy".into(),
        "sign".into(),
        "--key".into(),
        key.into(),
    ];
    if let Some(t) = ttl {
        args.extend(["--ttl".to_owned(), t.to_string()]);
    }
    args.push(file.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = w.er(&args);
    assert_exit(&o, 0);
    let out = w.path(&format!("statement-{n}.jws"));
    std::fs::write(&out, &o.stdout).unwrap();
    out
}

fn statement(w: &World, sequence: u64, tools: Vec<Value>) -> PathBuf {
    statement_with(
        w,
        &json!({
            "statement_version": "1",
            "aud": runner_id(),
            "sequence": sequence,
            "tools": tools,
        }),
        "signing-key.jwk",
        Some(3600),
    )
}

fn apply(w: &World, file: &std::path::Path) -> std::process::Output {
    w.er(&["armory", "policy", "apply", file.to_str().unwrap()])
}

#[test]
fn a_signed_statement_decides_what_runs_and_a_newer_one_revokes() {
    let w = signed_world();
    // Added but not locally authorized: in signed mode the statement decides.
    let echo = w.add_tool("echo-tool", ECHO_TOOL, false);
    let other = w.add_tool("other-tool", "#!/bin/sh\necho other\n", false);

    // No statement yet: every task is refused.
    let task = w.sign(&w.manifest("t-none", &echo));
    let o = w.run(&task);
    assert_refused(&o, "authorization_missing", "armory");
    assert_denial_event(&w.only_event(), &task, "authorization_missing", "armory");

    let s1 = statement(&w, 1, vec![tool(&echo, "echo-tool")]);
    let o = apply(&w, &s1);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("sequence 1 installed"),
        "{}",
        stdout(&o)
    );
    let o = w.er(&["armory", "policy", "show", "--json"]);
    assert_exit(&o, 0);
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["sequence"], 1);
    assert_eq!(shown["tools"][0]["digest"], echo.as_str());

    let o = w.er(&["config", "check"]);
    assert!(
        stdout(&o).contains("armory authorization: signed (statement sequence 1"),
        "{}",
        stdout(&o)
    );

    let task = w.sign(&w.manifest("t-ok", &echo));
    assert_exit(&w.run(&task), 0);
    let refused = w.sign(&w.manifest("t-other", &other));
    let o = w.run(&refused);
    assert_refused(&o, "digest_unauthorized", "armory");
    assert!(stderr(&o).contains("does not list it"), "{}", stderr(&o));

    // Revocation: a newer statement without the digest.
    let s2 = statement(&w, 2, vec![tool(&other, "other-tool")]);
    let o = apply(&w, &s2);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("replacing sequence 1"),
        "{}",
        stdout(&o)
    );
    let task = w.sign(&w.manifest("t-revoked", &echo));
    let o = w.run(&task);
    assert_refused(&o, "digest_unauthorized", "armory");
    let events = w.events();
    assert_denial_event(
        events.last().unwrap(),
        &task,
        "digest_unauthorized",
        "armory",
    );
    let task = w.sign(&w.manifest("t-other-now", &other));
    assert_exit(&w.run(&task), 0);

    // Rollback: the older statement cannot come back, nor another one numbered 2.
    let o = apply(&w, &s1);
    assert_refused(&o, "authorization_rollback", "armory");
    let s2b = statement(&w, 2, vec![tool(&echo, "echo-tool")]);
    let o = apply(&w, &s2b);
    assert_refused(&o, "authorization_rollback", "armory");
    assert!(stderr(&o).contains("different contents"), "{}", stderr(&o));
    // Re-applying the installed one is harmless.
    let o = apply(&w, &s2);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("already installed"), "{}", stdout(&o));
    // And a local `armory authorize` does not override the statement.
    assert_exit(&w.er(&["armory", "authorize", &echo]), 0);
    let task = w.sign(&w.manifest("t-local", &echo));
    assert_refused(&w.run(&task), "digest_unauthorized", "armory");
    // A local revocation is a brake the statement cannot release.
    assert_exit(&w.er(&["armory", "revoke", &other]), 0);
    let task = w.sign(&w.manifest("t-braked", &other));
    let o = w.run(&task);
    assert_refused(&o, "digest_unauthorized", "armory");
    assert!(stderr(&o).contains("revoked"), "{}", stderr(&o));
}

#[test]
fn an_expired_statement_stops_authorizing() {
    let w = signed_world();
    let echo = w.add_tool("echo-tool", ECHO_TOOL, false);
    let now = chrono::Utc::now();
    let fmt =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = |seq: u64, exp: chrono::DateTime<chrono::Utc>| {
        json!({
            "statement_version": "1",
            "aud": runner_id(),
            "sequence": seq,
            "issued_at": fmt(now - chrono::TimeDelta::seconds(60)),
            "expires_at": fmt(exp),
            "tools": [tool(&echo, "echo-tool")],
        })
    };
    // Already expired: refused at apply.
    let past = statement_with(
        &w,
        &body(1, now - chrono::TimeDelta::seconds(1)),
        "signing-key.jwk",
        None,
    );
    assert_refused(&apply(&w, &past), "authorization_expired", "armory");

    let soon = statement_with(
        &w,
        &body(2, now + chrono::TimeDelta::seconds(3)),
        "signing-key.jwk",
        None,
    );
    assert_exit(&apply(&w, &soon), 0);
    let task = w.sign(&w.manifest("t-before", &echo));
    assert_exit(&w.run(&task), 0);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let task = w.sign(&w.manifest("t-after", &echo));
    let o = w.run(&task);
    assert_refused(&o, "authorization_expired", "armory");
    let events = w.events();
    assert_denial_event(
        events.last().unwrap(),
        &task,
        "authorization_expired",
        "armory",
    );
    let o = w.er(&["armory", "policy", "show"]);
    assert!(stdout(&o).contains("EXPIRED"), "{}", stdout(&o));
}

#[test]
fn tenants_audience_and_signatures_are_enforced() {
    let w = signed_world();
    let echo = w.add_tool("echo-tool", ECHO_TOOL, false);

    // Listed for another tenant only (the world's tasks are tenant "acme").
    let mut t = tool(&echo, "echo-tool");
    t["tenants"] = json!(["globex"]);
    assert_exit(&apply(&w, &statement(&w, 1, vec![t])), 0);
    let task = w.sign(&w.manifest("t-tenant", &echo));
    let o = w.run(&task);
    assert_refused(&o, "digest_unauthorized", "armory");
    assert!(stderr(&o).contains("tenant \"acme\""), "{}", stderr(&o));
    let mut t = tool(&echo, "echo-tool");
    t["tenants"] = json!(["globex", "acme"]);
    assert_exit(&apply(&w, &statement(&w, 2, vec![t])), 0);
    let task = w.sign(&w.manifest("t-tenant-ok", &echo));
    assert_exit(&w.run(&task), 0);

    // Another runner's statement.
    let other = statement_with(
        &w,
        &json!({"statement_version": "1", "aud": ["edge-somewhere-else"], "sequence": 9,
                "tools": [tool(&echo, "echo-tool")]}),
        "signing-key.jwk",
        Some(3600),
    );
    assert_refused(
        &apply(&w, &other),
        "authorization_audience_mismatch",
        "armory",
    );

    // Wrongly signed: the same kid, another key.
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "ES256",
        "--kid",
        "k1",
        "--private",
        "impostor.jwk",
        "--public",
        "impostor.json",
    ]);
    assert_exit(&o, 0);
    let forged = statement_with(
        &w,
        &json!({"statement_version": "1", "aud": runner_id(), "sequence": 10,
                "tools": [tool(&echo, "echo-tool")]}),
        "impostor.jwk",
        Some(3600),
    );
    assert_refused(&apply(&w, &forged), "signature_invalid", "signature");

    // Unsigned (alg none), made by hand: with no signature, and with a made-up one.
    let b64 = |v: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let header = json!({"alg": "none", "kid": "k1", "typ": "edge-runner-authorization+jws"});
    let payload = json!({"statement_version": "1", "aud": runner_id(), "sequence": 11,
                         "issued_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                         "tools": [tool(&echo, "echo-tool")]});
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes())
    );
    let file = w.path("unsigned.jws");
    std::fs::write(&file, format!("{signing_input}.")).unwrap();
    assert_refused(&apply(&w, &file), "jws_malformed", "parse");
    std::fs::write(&file, format!("{signing_input}.{}", b64(&[7u8; 64]))).unwrap();
    assert_refused(&apply(&w, &file), "alg_forbidden", "parse");

    // The installed statement is still sequence 2.
    let o = w.er(&["armory", "policy", "show", "--json"]);
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["sequence"], 2);
}

#[test]
fn a_task_is_never_a_statement_and_a_statement_never_a_task() {
    let w = signed_world();
    let echo = w.add_tool("echo-tool", ECHO_TOOL, false);
    // A task (same key, typ edge-runner-task+jws) offered as a statement.
    let task = w.sign(&w.manifest("t-as-statement", &echo));
    let o = apply(&w, &task);
    assert_refused(&o, "authorization_invalid", "armory");
    assert!(
        stderr(&o).contains("edge-runner-task+jws"),
        "{}",
        stderr(&o)
    );

    // A statement offered as a task, also with claims.require_typ relaxed.
    let s = statement(&w, 1, vec![tool(&echo, "echo-tool")]);
    assert_exit(&apply(&w, &s), 0);
    let o = w.run(&s);
    assert_refused(&o, "typ_invalid", "claims");
    w.write_config(&signed_config(&w, "").replace(
        "[claims]\nclock_skew_secs = 0\n",
        "[claims]\nclock_skew_secs = 0\nrequire_typ = false\n",
    ));
    let o = w.run(&s);
    assert_refused(&o, "typ_invalid", "claims");
    assert!(
        stderr(&o).contains("authorization statement"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn local_mode_is_the_default_and_config_check_says_so() {
    let w = World::new(Backend::Native);
    let o = w.er(&["config", "check"]);
    assert!(
        stdout(&o).contains("armory authorization: local, the default"),
        "{}",
        stdout(&o)
    );
    let echo = w.add_tool("echo-tool", ECHO_TOOL, true);
    let task = w.sign(&w.manifest("t-local", &echo));
    assert_exit(&w.run(&task), 0);
}

#[test]
fn an_authorized_tool_is_pulled_on_demand_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let w = World::new(Backend::Native);
    let extra = signed_config(&w, "");
    w.write_config(&pull_config(&registry, &extra).replace(
        "[armory.pull]\n",
        &format!(
            "[armory.pull]\non_demand = true\nregistries = [\"{}\"]\n",
            registry.host()
        ),
    ));
    let (_, digest) = push(&w, ECHO_TOOL, &registry.host(), "tools/echo");
    assert!(stored(&w).is_empty());

    // Authorized without a source: nothing to pull from.
    let s1 = statement(&w, 1, vec![tool(&digest, "echo-tool")]);
    assert_exit(&apply(&w, &s1), 0);
    let task = w.sign(&w.manifest("t-nosource", &digest));
    let o = w.run(&task);
    assert_refused(&o, "digest_unknown", "armory");
    assert!(stderr(&o).contains("source"), "{}", stderr(&o));

    // A source on a registry that is not allowed.
    let mut t = tool(&digest, "echo-tool");
    t["source"] = json!("registry.elsewhere.example/tools/echo");
    assert_exit(&apply(&w, &statement(&w, 2, vec![t])), 0);
    let task = w.sign(&w.manifest("t-notallowed", &digest));
    let o = w.run(&task);
    assert_refused(&o, "digest_unknown", "armory");
    assert!(
        stderr(&o).contains("armory.pull.registries"),
        "{}",
        stderr(&o)
    );

    let mut t = tool(&digest, "echo-tool");
    t["source"] = json!(format!("{}/tools/echo", registry.host()));
    assert_exit(&apply(&w, &statement(&w, 3, vec![t])), 0);
    let task = w.sign(&w.manifest("t-pulled", &digest));
    let o = w.run(&task);
    assert_exit(&o, 0);
    assert_eq!(stored(&w), vec![digest.clone()]);
    let events = w.events();
    let done = events.last().unwrap();
    assert_eq!(done["type"], crate::run::COMPLETED, "{done:#}");
    assert_eq!(done["data"]["tool_sha256"], digest.as_str(), "{done:#}");
    assert!(
        done["data"]["stdout"]
            .as_str()
            .unwrap()
            .contains("uid=65534"),
        "{done:#}"
    );

    // A digest authorized on demand but served wrong is never stored (a tag that lies).
    let a = edge_runner::digest::sha256_id(b"#!/bin/sh\necho a\n");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                   "digest": edge_runner::digest::sha256_id(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.edge-runner.tool.v1",
                    "digest": digest, "size": ECHO_TOOL.len()}]
    });
    let tag = format!("sha256-{}", a.strip_prefix("sha256:").unwrap());
    assert_eq!(
        registry.put_manifest("tools/echo", &tag, manifest.to_string().as_bytes()),
        201
    );
    let mut t = tool(&a, "a-tool");
    t["source"] = json!(format!("{}/tools/echo", registry.host()));
    assert_exit(&apply(&w, &statement(&w, 4, vec![t])), 0);
    let task = w.sign(&w.manifest("t-lying-tag", &a));
    let o = w.run(&task);
    assert_refused(&o, "registry_digest_mismatch", "armory");
    let events = w.events();
    assert_denial_event(
        events.last().unwrap(),
        &task,
        "registry_digest_mismatch",
        "armory",
    );
    assert_eq!(stored(&w), vec![digest]);
}

#[test]
fn a_statement_written_into_the_armory_by_hand_must_still_verify() {
    // Whoever can write the armory (but has no control-plane key) cannot authorize.
    let w = signed_world();
    let echo = w.add_tool("echo-tool", ECHO_TOOL, false);
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "ES256",
        "--kid",
        "k1",
        "--private",
        "impostor.jwk",
        "--public",
        "impostor.json",
    ]);
    assert_exit(&o, 0);
    let forged = statement_with(
        &w,
        &json!({"statement_version": "1", "aud": runner_id(), "sequence": 1,
                "tools": [tool(&echo, "echo-tool")]}),
        "impostor.jwk",
        Some(3600),
    );
    let installed = w.state().join("armory/authorization.jws");
    std::fs::copy(&forged, &installed).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&installed, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let task = w.sign(&w.manifest("t-forged", &echo));
    let o = w.run(&task);
    assert_refused(&o, "signature_invalid", "signature");
    assert_denial_event(&w.only_event(), &task, "signature_invalid", "signature");
}

#[test]
fn wrong_bytes_from_the_registry_refuse_the_task_through_run() {
    // Pull-on-demand through the misbehaving proxy: each way of serving the wrong bytes
    // is a denial event with its code, and nothing is stored.
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let publisher = World::new(Backend::Native);
    publisher.write_config(&pull_config(&registry, ""));
    let (_, digest) = push(&publisher, ECHO_TOOL, &registry.host(), "tools/echo");
    for (mode, code) in [
        ("corrupt", "registry_digest_mismatch"),
        ("truncate", "registry_digest_mismatch"),
        ("huge-layer", "tool_too_large"),
        ("huge-body", "tool_too_large"),
        ("redirect", "registry_redirect_refused"),
    ] {
        let redirect_to = format!("https://localhost:{}", registry.port);
        let proxy = super::Proxy::start(&registry, mode, &redirect_to);
        let w = World::new(Backend::Native);
        let extra = signed_config(&w, "");
        w.write_config(&pull_config(&registry, &extra).replace(
            "[armory.pull]\n",
            &format!(
                "[armory.pull]\non_demand = true\nregistries = [\"{}\"]\n",
                proxy.host()
            ),
        ));
        let mut t = tool(&digest, "echo-tool");
        t["source"] = json!(format!("{}/tools/echo", proxy.host()));
        assert_exit(&apply(&w, &statement(&w, 1, vec![t])), 0);
        let task = w.sign(&w.manifest(&format!("t-{mode}"), &digest));
        let o = w.run(&task);
        assert_refused(&o, code, "armory");
        assert_denial_event(&w.only_event(), &task, code, "armory");
        assert!(stored(&w).is_empty(), "{mode}: something was stored");
    }
}
