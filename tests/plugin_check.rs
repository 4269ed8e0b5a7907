//! Issue 11: `edge-runner plugin check`. Every shipped plugin passes the built-in suite; a
//! deliberately corrupted ES256 backend (accepts s = 0) fails naming the vectors; a file
//! that is not a component is a clear error with exit 2.

use crate::support::{bin, fixture_path};
use edge_runner::plugins::embedded;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn check(file: &Path, json: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("state_dir = {:?}\n", dir.path().join("state")),
    )
    .unwrap();
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "plugin",
        "check",
        file.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    std::process::Command::new(bin())
        .args(&args)
        .output()
        .unwrap()
}

fn report(file: &Path) -> (Option<i32>, Value) {
    let o = check(file, true);
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), v)
}

fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .map(|r| format!("{}: {}", r["check"], r["detail"]))
        .collect()
}

#[test]
fn every_shipped_plugin_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for b in embedded::VERIFIERS.iter().chain(embedded::MAPPERS) {
        let p = dir.path().join(format!("{}.wasm", b.name));
        std::fs::write(&p, b.bytes).unwrap();
        files.push((b.name.to_owned(), p));
    }
    files.push((
        "digest-mapper".into(),
        env!("EDGE_RUNNER_PLUGIN_DIGEST_MAPPER").into(),
    ));
    for (name, file) in files {
        let (code, r) = report(&file);
        assert_eq!(code, Some(0), "{name}: {:#?}", failed(&r));
        assert_eq!(r["passed"], true);
        let kind = if name.contains("mapper") {
            "mapper"
        } else {
            "verifier"
        };
        assert_eq!(r["kind"], kind, "{name}");
        // Every verifier row ran vectors, at least RFC, Wycheproof and attacks per alg.
        assert!(r["checks"].as_array().unwrap().len() >= 3, "{name}: {r:#}");
    }
}

#[test]
fn a_corrupted_backend_that_accepts_s_zero_fails_naming_the_vector() {
    let file = fixture_path("weak-es256");
    let (code, r) = report(&file);
    assert_eq!(code, Some(1), "{r:#}");
    assert_eq!(r["passed"], false);
    let failures = failed(&r).join("\n");
    assert!(
        failures.contains("s = 0: ACCEPTED an invalid signature"),
        "{failures}"
    );
    assert!(
        failures.contains("wycheproof tcId"),
        "Wycheproof's s = 0 vectors too: {failures}"
    );
    // The table says the same, and tells the operator not to pin it.
    let o = check(&file, false);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("FAIL") && table.contains("do not pin"),
        "{table}"
    );
}

#[test]
fn a_plugin_that_faults_fails_the_suite() {
    // Declares HS256 and ES256, answers "mismatch" to everything: refuses valid vectors.
    let (code, r) = report(&fixture_path("misbehaving"));
    assert_eq!(code, Some(1), "{r:#}");
    assert!(
        failed(&r).join("\n").contains("refused a valid signature"),
        "{r:#}"
    );
}

#[test]
fn a_misdeclaring_or_ungranted_plugin_fails_at_load() {
    let (code, r) = report(&fixture_path("declares-twice"));
    assert_eq!(code, Some(1), "{r:#}");
    assert!(failed(&r).join("\n").contains("twice"), "{r:#}");
    // Imports beyond the deny-all WASI set.
    let (code, r) = report(&fixture_path("ungranted"));
    assert_eq!(code, Some(1), "{r:#}");
    assert!(failed(&r).join("\n").contains("not granted"), "{r:#}");
}

#[test]
fn a_file_that_is_not_a_component_exits_2_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("elf.wasm", b"\x7fELF not a component".to_vec()),
        ("module.wasm", wat::parse_str("(module)").unwrap()),
        ("empty.wasm", wat::parse_str("(component)").unwrap()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = check(&p, false);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("not a valid WebAssembly component")
                || e.contains("implements neither world"),
            "{name}: {e}"
        );
    }
    let o = check(&dir.path().join("missing.wasm"), false);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn the_verifier_and_mapper_templates_build_with_one_command_and_pass_plugin_check() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name) in [("verifier", "tmpl-check"), ("mapper", "tmpl-mapper")] {
        let o = std::process::Command::new(bin())
            .args(["plugin", "new", kind, name, "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let root = dir.path().join(name);
        // The one command, offline: the template pins this release's Cargo.lock, whose
        // crates the workspace build already fetched. A shared target directory keeps
        // reruns fast.
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/template");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = std::process::Command::new(cargo)
            .args(["build", "--release", "--offline"])
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let wasm = target.join(format!(
            "wasm32-wasip2/release/{}.wasm",
            name.replace('-', "_")
        ));
        let (code, r) = report(&wasm);
        assert_eq!(code, Some(0), "{kind}: {:#?}", failed(&r));
        assert_eq!(r["plugin"], name);
        assert_eq!(r["kind"], kind);
        // An existing directory is never overwritten.
        let o = std::process::Command::new(bin())
            .args(["plugin", "new", kind, name, "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
    }
}
