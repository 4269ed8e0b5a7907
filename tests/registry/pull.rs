//! `armory push` and `armory pull` against the real registry, and each way a registry (or
//! what stands between it and the runner) can serve the wrong bytes: refused with a code,
//! nothing stored, no staging file left behind.

use super::{Proxy, Registry};
use crate::run::{Backend, ECHO_TOOL, World, assert_exit, stderr, stdout};

/// A world that trusts the registry's CA, with `extra` configuration.
pub fn world_for(registry: &Registry, extra: &str) -> World {
    let w = World::new(Backend::Native);
    w.write_config(&pull_config(registry, extra));
    w
}

pub fn pull_config(registry: &Registry, extra: &str) -> String {
    format!(
        "{extra}\n[armory.pull]\nca_file = {:?}\n",
        registry.ca.pem.to_str().unwrap()
    )
}

/// `armory push` of `script` to `host/repo`; returns (reference line, tool digest).
pub fn push(w: &World, script: &str, host: &str, repo: &str) -> (String, String) {
    let file = w.path(&format!("{}.tool", repo.replace('/', "_")));
    std::fs::write(&file, script).unwrap();
    let o = w.er(&[
        "armory",
        "push",
        file.to_str().unwrap(),
        &format!("{host}/{repo}"),
    ]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let reference = out.lines().next().unwrap().to_owned();
    let digest = reference.rsplit_once('@').unwrap().1.to_owned();
    assert_eq!(digest, edge_runner::digest::sha256_id(script.as_bytes()));
    assert!(out.contains("manifest sha256:"), "{out}");
    (reference, digest)
}

/// The manifest digest the last `push` of `script` printed (pushing again is idempotent).
pub fn manifest_of(w: &World, script: &str, host: &str, repo: &str) -> String {
    let file = w.path("again.tool");
    std::fs::write(&file, script).unwrap();
    let o = w.er(&[
        "armory",
        "push",
        file.to_str().unwrap(),
        &format!("{host}/{repo}"),
    ]);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let m = out.split("manifest ").nth(1).unwrap();
    m.split_whitespace().next().unwrap().to_owned()
}

/// The armory's tools (digests), and that its staging directory holds nothing.
pub fn stored(w: &World) -> Vec<String> {
    let armory = w.state().join("armory");
    if let Ok(dir) = std::fs::read_dir(armory.join("tmp")) {
        let left: Vec<_> = dir.flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "staging files left behind: {left:?}");
    }
    if let Ok(dir) = std::fs::read_dir(armory.join("blobs/sha256")) {
        let blobs: Vec<_> = dir.flatten().collect();
        let o = w.er(&["armory", "list", "--json"]);
        assert_exit(&o, 0);
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let digests: Vec<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["digest"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(blobs.len(), digests.len(), "blobs without index entries");
        return digests;
    }
    Vec::new()
}

fn refused_with(o: &std::process::Output, code: &str) {
    assert_exit(o, 3);
    let err = stderr(o);
    assert!(err.contains(&format!("error[{code}]")), "{err}");
}

#[test]
fn push_then_pull_stores_exactly_the_pushed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let w = world_for(&registry, "");
    let (reference, digest) = push(&w, ECHO_TOOL, &registry.host(), "tools/echo");
    // Pushing again changes nothing (blobs exist; the manifest is the same).
    let (again, _) = push(&w, ECHO_TOOL, &registry.host(), "tools/echo");
    assert_eq!(again, reference);

    let o = w.er(&["armory", "pull", &reference]);
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).trim(), digest);
    assert_eq!(stored(&w), vec![digest.clone()]);
    let blob = w
        .state()
        .join("armory/blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap());
    assert_eq!(std::fs::read(&blob).unwrap(), ECHO_TOOL.as_bytes());
    // Pulled is not authorized.
    let o = w.er(&["armory", "list"]);
    assert!(stdout(&o).contains("pending"), "{}", stdout(&o));
    assert!(stdout(&o).contains("echo"), "{}", stdout(&o));

    // A pinned manifest digest: the right one pulls; one the registry does not have is
    // unknown; a manifest altered in flight no longer hashes to the pin.
    let manifest = manifest_of(&w, ECHO_TOOL, &registry.host(), "tools/echo");
    let w2 = world_for(&registry, "");
    let o = w2.er(&["armory", "pull", &reference, "--manifest", &manifest]);
    assert_exit(&o, 0);
    assert_eq!(stored(&w2), vec![digest.clone()]);
    let wrong = format!("sha256:{}", "0".repeat(64));
    let w3 = world_for(&registry, "");
    let o = w3.er(&["armory", "pull", &reference, "--manifest", &wrong]);
    refused_with(&o, "digest_unknown");
    let altered = Proxy::start(&registry, "huge-layer", "");
    let o = w3.er(&[
        "armory",
        "pull",
        &format!("{}/tools/echo@{digest}", altered.host()),
        "--manifest",
        &manifest,
    ]);
    refused_with(&o, "registry_digest_mismatch");
    assert!(stderr(&o).contains("the manifest"), "{}", stderr(&o));
    assert!(stored(&w3).is_empty());
}

#[test]
fn a_manifest_whose_layer_is_another_digest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let w = world_for(&registry, "");
    let (_, b) = push(&w, ECHO_TOOL, &registry.host(), "tools/x");
    // Someone with push access tags B's manifest as if it were tool A.
    let a = edge_runner::digest::sha256_id(b"#!/bin/sh\necho the tool that was authorized\n");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.edge-runner.tool.v1",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": edge_runner::digest::sha256_id(b"{}"),
            "size": 2
        },
        "layers": [{
            "mediaType": "application/vnd.edge-runner.tool.v1",
            "digest": b,
            "size": ECHO_TOOL.len()
        }]
    });
    let tag = format!("sha256-{}", a.strip_prefix("sha256:").unwrap());
    assert_eq!(
        registry.put_manifest("tools/x", &tag, manifest.to_string().as_bytes()),
        201
    );
    let w2 = world_for(&registry, "");
    let o = w2.er(&[
        "armory",
        "pull",
        &format!("{}/tools/x@{a}", registry.host()),
    ]);
    refused_with(&o, "registry_digest_mismatch");
    assert!(stderr(&o).contains(&b), "{}", stderr(&o));
    assert!(stored(&w2).is_empty());
}

/// Pulls `reference` (rewritten to go through `proxy`) into a fresh world.
fn pull_via(
    registry: &Registry,
    proxy: &Proxy,
    digest: &str,
    extra: &str,
) -> (World, std::process::Output) {
    let w = world_for(registry, extra);
    let o = w.er(&[
        "armory",
        "pull",
        &format!("{}/tools/echo@{digest}", proxy.host()),
    ]);
    (w, o)
}

fn pushed(registry: &Registry) -> String {
    let w = world_for(registry, "");
    push(&w, ECHO_TOOL, &registry.host(), "tools/echo").1
}

#[test]
fn bytes_corrupted_in_flight_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let digest = pushed(&registry);
    let pass = Proxy::start(&registry, "pass", "");
    let (w, o) = pull_via(&registry, &pass, &digest, "");
    assert_exit(&o, 0);
    assert_eq!(stored(&w), vec![digest.clone()]);

    let corrupt = Proxy::start(&registry, "corrupt", "");
    let (w, o) = pull_via(&registry, &corrupt, &digest, "");
    refused_with(&o, "registry_digest_mismatch");
    assert!(stderr(&o).contains("hash to"), "{}", stderr(&o));
    assert!(stored(&w).is_empty());
}

#[test]
fn a_truncated_layer_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let digest = pushed(&registry);
    let proxy = Proxy::start(&registry, "truncate", "");
    let (w, o) = pull_via(&registry, &proxy, &digest, "");
    refused_with(&o, "registry_digest_mismatch");
    assert!(stderr(&o).contains("truncated"), "{}", stderr(&o));
    assert!(stored(&w).is_empty());
}

#[test]
fn an_oversize_layer_is_refused_before_its_bytes_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let digest = pushed(&registry);

    // The real registry, a limit below the tool's size: refused from the manifest alone.
    let small = "[armory]\nmax_tool_bytes = 64\n";
    let w = world_for(&registry, small);
    let o = w.er(&[
        "armory",
        "pull",
        &format!("{}/tools/echo@{digest}", registry.host()),
    ]);
    refused_with(&o, "tool_too_large");
    assert!(stored(&w).is_empty());

    // A manifest announcing a 10 GiB layer: refused without requesting the blob.
    let huge = Proxy::start(&registry, "huge-layer", "");
    let (w, o) = pull_via(&registry, &huge, &digest, "");
    refused_with(&o, "tool_too_large");
    assert!(stderr(&o).contains("10737418240"), "{}", stderr(&o));
    assert!(
        !huge.requests().iter().any(|r| r.contains("/blobs/")),
        "{:?}",
        huge.requests()
    );
    assert!(stored(&w).is_empty());

    // A blob response announcing 10 GiB (and streaming zeros): refused from its
    // Content-Length, quickly, without buffering.
    let body = Proxy::start(&registry, "huge-body", "");
    let started = std::time::Instant::now();
    let (w, o) = pull_via(&registry, &body, &digest, "");
    refused_with(&o, "tool_too_large");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the pull read the 10 GiB body"
    );
    assert!(stored(&w).is_empty());
}

#[test]
fn a_redirect_to_another_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let digest = pushed(&registry);
    // The blob is redirected to the real registry itself: the same bytes, another origin
    // (another port), so only the origin rule can refuse it.
    let proxy = Proxy::start(
        &registry,
        "redirect",
        &format!("https://localhost:{}", registry.port),
    );
    let (w, o) = pull_via(&registry, &proxy, &digest, "");
    refused_with(&o, "registry_redirect_refused");
    assert!(stderr(&o).contains("another origin"), "{}", stderr(&o));
    assert!(stored(&w).is_empty());

    // A redirect within the same origin is followed.
    let same = Proxy::start(&registry, "redirect-same", "");
    let (w, o) = pull_via(&registry, &same, &digest, "");
    assert_exit(&o, 0);
    assert_eq!(stored(&w), vec![digest.clone()]);
    assert!(
        same.requests().iter().any(|r| r.contains("?moved=1")),
        "{:?}",
        same.requests()
    );
}

#[test]
fn a_registry_with_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::start(dir.path());
    let digest = pushed(&registry);
    // No ca_file: the system roots do not know the test CA.
    let w = World::new(Backend::Native);
    let o = w.er(&[
        "armory",
        "pull",
        &format!("{}/tools/echo@{digest}", registry.host()),
    ]);
    assert_exit(&o, 4);
    assert!(
        stderr(&o).contains("error[registry_failed]"),
        "{}",
        stderr(&o)
    );
    assert!(stored(&w).is_empty());
}
