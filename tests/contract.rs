//! Issue 11 item 5: contract evolution. The shipped HS256 verifier and CloudEvents mapper,
//! built against the previous contract (`wit/compat/0.1.0`), still load, pass the whole
//! conformance suite through the host's adapter and verify a real task; a plugin built
//! against a version this host does not implement is refused with a sentence naming the
//! version it targets and the ones the host loads; `plugin wit` publishes both contracts.

use crate::support::{bin, fixture_path};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// Runs the binary in `dir` with `dir/config.toml` (`state_dir` plus `extra`).
fn run(dir: &Path, extra: &str, args: &[&str]) -> Output {
    std::fs::write(
        dir.join("config.toml"),
        format!("state_dir = {:?}\n{extra}", dir.join("state")),
    )
    .unwrap();
    std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("EDGE_RUNNER_CONFIG", dir.join("config.toml"))
        .env_remove("EDGE_RUNNER_LOG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn check_report(dir: &Path, plugin: &Path) -> (Option<i32>, Value) {
    let o = run(
        dir,
        "",
        &["plugin", "check", plugin.to_str().unwrap(), "--json"],
    );
    let report =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    (o.status.code(), report)
}

fn pin(table: &str, plugin: &Path) -> String {
    let sha = edge_runner::digest::sha256_id(&std::fs::read(plugin).unwrap());
    format!("[{table}]\npath = {plugin:?}\nsha256 = \"{sha}\"\n")
}

#[test]
fn plugins_built_against_the_previous_contract_pass_the_whole_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    for (name, kind) in [
        ("hs256-contract-0-1", "verifier"),
        ("cloudevents-mapper-contract-0-1", "mapper"),
    ] {
        let (code, r) = check_report(dir.path(), &fixture_path(name));
        let rows = r["checks"].as_array().unwrap();
        let failed: Vec<_> = rows.iter().filter(|c| c["passed"] == false).collect();
        assert_eq!(code, Some(0), "{name}: {failed:#?}");
        assert_eq!(r["kind"], kind, "{name}");
        // The vectors and record shapes really ran, through the adapter.
        assert!(rows.len() >= 3, "{name}: {r:#}");
        let info = rows[0]["detail"].as_str().unwrap();
        assert!(info.contains("(contract 0.1.0)"), "{name}: {info}");
    }
}

#[test]
fn a_previous_contract_verifier_and_mapper_serve_a_real_task() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = format!(
        "{}{}",
        pin(
            "plugins.verifiers.HS256",
            &fixture_path("hs256-contract-0-1")
        ),
        pin(
            "plugins.mapper",
            &fixture_path("cloudevents-mapper-contract-0-1")
        )
    );
    let o = run(d, &config, &["plugins", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = list.as_array().unwrap();
    let hs = rows
        .iter()
        .find(|p| p["algorithm"] == "HS256" && p["active"] == true)
        .unwrap();
    assert_eq!(hs["contract"], "0.1.0", "{hs:#}");
    assert!(
        hs["origin"].as_str().unwrap().starts_with("file:"),
        "{hs:#}"
    );
    let mapper = rows.iter().find(|p| p["kind"] == "mapper").unwrap();
    assert_eq!(mapper["contract"], "0.1.0", "{mapper:#}");
    let es = rows.iter().find(|p| p["algorithm"] == "ES256").unwrap();
    assert_eq!(es["contract"], "0.2.0", "{es:#}");

    // A real HS256 task verifies through the 0.1 verifier, and a forged one is refused.
    let env = crate::cli_verify::Env::new();
    let state = env.path("state");
    std::fs::write(
        env.path("config.toml"),
        format!("state_dir = {state:?}\n{config}"),
    )
    .unwrap();
    let task = env.signed("HS256", "t-old-contract");
    let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let token = std::fs::read_to_string(&task).unwrap();
    let token = token.trim();
    let (head, sig) = token.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    let forged = env.path("forged.jws");
    std::fs::write(&forged, format!("{head}.{flipped}{}", &sig[1..])).unwrap();
    let o = env.run(&["verify", "--keys", "keys.json", forged.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

#[test]
fn a_plugin_built_for_an_unknown_contract_version_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let future = fixture_path("future-contract");
    let (code, r) = check_report(dir.path(), &future);
    assert_eq!(code, Some(1), "{r:#}");
    let detail = r["checks"][0]["detail"].as_str().unwrap();
    for needle in [
        "edge-runner:plugin/verifier@0.3.0",
        "version 0.3.0",
        "0.2.x (current) and 0.1.x (previous, adapted)",
    ] {
        assert!(detail.contains(needle), "{needle:?} not in {detail}");
    }
    // Pinned as a backend, it stops the runner before any task, with the same sentence.
    let o = run(
        dir.path(),
        &pin("plugins.verifiers.HS256", &future),
        &["plugins"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("edge-runner:plugin/verifier@0.3.0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plugin_wit_publishes_the_contracts_the_host_loads() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let o = run(dir.path(), "", &["plugin", "wit"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(root.join("wit/plugin.wit")).unwrap()
    );
    let o = run(dir.path(), "", &["plugin", "wit", "--version", "0.1.0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        o.stdout,
        std::fs::read(root.join("wit/compat/0.1.0/plugin.wit")).unwrap()
    );
    let o = run(dir.path(), "", &["plugin", "wit", "--version", "0.3.0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("0.2.0"), "{}", stderr(&o));
}
