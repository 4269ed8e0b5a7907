//! Issue 11 through `edge-runner run`: the same kind of task runs under either ES256
//! backend (one configuration line), and an EdDSA task runs end to end.

use super::{Backend, COMPLETED, World, assert_exit, assert_linked};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

on_both_backends!(
    a_task_runs_under_both_es256_backends,
    an_eddsa_task_signed_outside_the_runner_runs_end_to_end,
    an_eddsa_key_from_keys_generate_signs_tasks_that_run,
);

fn a_task_runs_under_both_es256_backends(backend: Backend) {
    let w = World::new(backend);
    let digest = w.add_tool("true-tool", "#!/bin/sh\necho ok\n", true);
    for (n, config) in ["", "[plugins.verifiers]\nES256 = \"es256-libcrux\"\n"]
        .into_iter()
        .enumerate()
    {
        w.write_config(config);
        let task = w.sign(&w.manifest(&format!("t-{n}"), &digest));
        let o = w.run(&task);
        assert_exit(&o, 0);
    }
    let events = w.events();
    assert_eq!(events.len(), 2);
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["type"], COMPLETED, "{e:#}");
        assert_linked(e, &format!("t-{n}"), &digest);
    }
}

/// RFC 8037 appendix A.1's key.
const D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn an_eddsa_task_signed_outside_the_runner_runs_end_to_end(backend: Backend) {
    use ed25519_dalek::Signer as _;
    let w = World::new(backend);
    let digest = w.add_tool("true-tool", "#!/bin/sh\necho ok\n", true);
    for (n, alg) in ["EdDSA", "Ed25519"].into_iter().enumerate() {
        std::fs::write(
            w.path("keys.json"),
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": alg, "x": X}]})
                .to_string(),
        )
        .unwrap();
        let now = chrono::Utc::now();
        let stamp =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut m = w.manifest(&format!("t-ed-{n}"), &digest);
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).unwrap();
        m["nonce"] = json!(URL_SAFE_NO_PAD.encode(nonce));
        m["issued_at"] = json!(stamp(now));
        m["expires_at"] = json!(stamp(now + chrono::TimeDelta::seconds(300)));
        let header = json!({"alg": alg, "kid": "ed-1", "typ": edge_runner::manifest::TASK_TYP});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(m.to_string())
        );
        let d: [u8; 32] = URL_SAFE_NO_PAD.decode(D).unwrap().try_into().unwrap();
        let sig = ed25519_dalek::SigningKey::from_bytes(&d).sign(input.as_bytes());
        let task = w.path(&format!("task-ed-{n}.jws"));
        std::fs::write(
            &task,
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes())),
        )
        .unwrap();
        let o = w.run(&task);
        assert_exit(&o, 0);
    }
    let events = w.events();
    assert_eq!(events.len(), 2);
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["type"], COMPLETED, "{e:#}");
        assert_linked(e, &format!("t-ed-{n}"), &digest);
    }
}

fn an_eddsa_key_from_keys_generate_signs_tasks_that_run(backend: Backend) {
    let w = World::new(backend);
    let digest = w.add_tool("true-tool", "#!/bin/sh\necho ok\n", true);
    std::fs::remove_file(w.path("keys.json")).unwrap();
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "EdDSA",
        "--kid",
        "ed-cp",
        "--private",
        "ed.jwk",
    ]);
    assert_exit(&o, 0);
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("keys.json")).unwrap()).unwrap();
    assert_eq!(keys["keys"][0]["kty"], "OKP", "{keys}");
    assert_eq!(keys["keys"][0]["crv"], "Ed25519", "{keys}");
    let task = w.sign_with(&w.manifest("t-ed-cli", &digest), "ed.jwk");
    assert_exit(&w.run(&task), 0);
    let e = w.only_event();
    assert_eq!(e["type"], COMPLETED, "{e:#}");
    assert_linked(&e, "t-ed-cli", &digest);
}
