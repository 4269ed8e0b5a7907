//! Issue 15: signed events end to end, from `edge-runner run` through the file sink and an
//! HTTPS sink (a real TLS receiver) to `edge-runner events verify --keys`. The runner's
//! event key is made with `keys generate`, like an operator would.

use super::{Backend, ECHO_TOOL, World, assert_exit, stdout};
use crate::events::https::{TlsReceiver, ca, leaf};

/// A world whose runner signs its events with a key made by `keys generate`; `sinks` is
/// added to the configuration.
fn signing_world(sinks: &str) -> (World, String) {
    let w = World::new(Backend::Native);
    let o = w.er(&[
        "keys",
        "generate",
        "--alg",
        "ES256",
        "--kid",
        "edge-7-events",
        "--private",
        "event-signing.jwk",
        "--public",
        "runner-events.jwks",
    ]);
    assert_exit(&o, 0);
    w.write_config(&format!(
        "[events.signing]\nkey = {:?}\n{sinks}",
        w.path("event-signing.jwk").to_str().unwrap()
    ));
    let digest = w.add_tool("echo-tool", ECHO_TOOL, true);
    (w, digest)
}

fn verify(w: &World, file: &std::path::Path) -> std::process::Output {
    w.er(&[
        "events",
        "verify",
        "--keys",
        "runner-events.jwks",
        file.to_str().unwrap(),
    ])
}

#[test]
fn events_of_run_verify_from_the_file_sink_and_an_edit_is_named() {
    let (w, digest) = signing_world("");
    let task = w.sign(&w.manifest("t-signed", &digest));
    assert_exit(&w.run(&task), 0);
    let unauthorized = w.add_tool("other-tool", "#!/bin/sh\necho no\n", false);
    let refused = w.sign(&w.manifest("t-refused", &unauthorized));
    assert_exit(&w.run(&refused), 3);
    let events = w.events();
    assert_eq!(events.len(), 2);
    assert!(
        events.iter().all(|e| e["runnersig"].is_string()),
        "{events:#?}"
    );

    let o = verify(&w, &w.events_file());
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("2 events, 2 verified, 0 failed"),
        "{}",
        stdout(&o)
    );

    // Someone who can write to the events file changes what the tool printed.
    let text = std::fs::read_to_string(w.events_file()).unwrap();
    let forged = w.path("forged.jsonl");
    std::fs::write(&forged, text.replacen("uid=", "uid=0 # ", 1)).unwrap();
    let o = verify(&w, &forged);
    assert_exit(&o, 3);
    let out = stdout(&o);
    let id = events[0]["id"].as_str().unwrap();
    assert!(
        out.contains(&format!(
            "line 1: event {id}: FAILED [event_signature_invalid]"
        )),
        "{out}"
    );
    assert!(
        out.contains("line 2: event") && out.contains("verified"),
        "{out}"
    );
}

#[test]
fn events_of_run_verify_after_an_https_sink() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "e2e");
    let (cert, key) = leaf(dir.path(), &ca, "server", "localhost", &["localhost"]);
    let rx = TlsReceiver::start(dir.path(), &cert, &key, &[]);
    let (w, digest) = signing_world(&format!(
        "[[events.sinks]]\ntype = \"http\"\nurl = \"https://localhost:{}/events\"\nname = \"tls\"\nca_file = {:?}\n",
        rx.port,
        ca.pem.to_str().unwrap()
    ));
    let task = w.sign(&w.manifest("t-https", &digest));
    // No --events: the configured https sink takes the event.
    let o = w.er(&[
        "run",
        "--keys",
        "keys.json",
        "--sandbox",
        "native",
        "--apparmor",
        "if-available",
        task.to_str().unwrap(),
    ]);
    assert_exit(&o, 0);
    let bodies: Vec<String> = rx
        .log()
        .iter()
        .filter_map(|e| e["body"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(bodies.len(), 1, "{:?}", rx.log());
    let received = w.path("received.jsonl");
    std::fs::write(&received, format!("{}\n", bodies[0])).unwrap();
    let o = verify(&w, &received);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("1 events, 1 verified"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn config_check_names_a_signing_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt as _;
    let (w, _) = signing_world("");
    let o = w.er(&["config", "check"]);
    assert!(
        stdout(&o).contains("events are signed with ES256 key edge-7-events"),
        "{}",
        stdout(&o)
    );
    std::fs::set_permissions(
        w.path("event-signing.jwk"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = w.er(&["config", "check"]);
    assert_exit(&o, 2);
    let all = format!("{}{}", stdout(&o), super::stderr(&o));
    assert!(
        all.contains("events.signing.key") && all.contains("chmod 600"),
        "{all}"
    );
}
