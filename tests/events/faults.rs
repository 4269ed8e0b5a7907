//! A mapper that traps, loops, hogs memory, refuses, or returns an invalid event never
//! loses the result: the runner emits its built-in event of the same kind, flagged
//! `mapperfailed`, saying why (issue 5, "Mapping"; DESIGN invariant 4). The swap to a
//! second mapper pinned by sha256 is here too.

use super::*;
use edge_runner::digest::sha256_id;
use edge_runner::events::{Mapping, TYPE_COMPLETED, TYPE_DENIED, validate};
use edge_runner::plugins::PluginError;

fn faults_config(dir: &Path) -> String {
    let path = env!("EDGE_RUNNER_FIXTURE_MAPPER_FAULTS");
    let bytes = std::fs::read(path).unwrap();
    let copy = dir.join("mapper-faults.wasm");
    std::fs::write(&copy, &bytes).unwrap();
    format!(
        "[plugins.mapper]\npath = {:?}\nsha256 = \"{}\"\n",
        copy.display().to_string(),
        sha256_id(&bytes)
    )
}

/// Every fault mode of the fixture, with the stable code the fallback must report.
pub const FAULTS: &[(&str, &str)] = &[
    ("trap", "mapper_fault"),
    ("loop", "mapper_fault"),
    ("hog", "mapper_fault"),
    ("garbage", "mapper_fault"),
    ("error", "mapper_refused"),
    ("empty-type", "attribute_empty"),
    ("wrong-id", "id_mismatch"),
    ("wrong-source", "source_mismatch"),
    ("bad-time", "bad_time"),
    ("bad-extension-name", "extension_name"),
    ("long-extension-name", "extension_name"),
    ("reserved-extension", "extension_reserved"),
    ("int64-extension", "extension_range"),
    ("forged-flag", "extension_reserved"),
    ("control-subject", "attribute_bad_string"),
    ("not-json", "data_not_json"),
    ("not-object", "data_not_object"),
    ("binary-data", "data_not_object"),
    ("drop-linkage", "linkage_missing"),
    ("wrong-linkage", "linkage_missing"),
    ("duplicate-linkage", "data_not_json"),
    ("oversize", "event_too_large"),
    ("text-content-type", "datacontenttype_not_json"),
    ("bad-dataschema", "bad_dataschema"),
];

/// All fallback events the fixture can provoke, completed and denied (for the corpus).
pub fn fallback_events(dir: &Path) -> Vec<Vec<u8>> {
    let p = EventPipeline::new(&config(dir, &faults_config(dir)), &host()).unwrap();
    let mut out = Vec::new();
    for (mode, _) in FAULTS {
        for r in [
            completed(b"out", b"err"),
            denied(Reason::SignatureInvalid, task()),
        ] {
            out.push(p.build(&with_task_id(r, mode)).json);
        }
    }
    out
}

#[test]
fn every_mapper_fault_yields_the_flagged_fallback_of_the_same_kind() {
    let dir = tempfile::tempdir().unwrap();
    let p = EventPipeline::new(&config(dir.path(), &faults_config(dir.path())), &host()).unwrap();
    assert_eq!(p.mapper().name, "mapper-faults");
    for (mode, code) in FAULTS {
        for (record, ty) in [
            (completed(b"the result", b""), TYPE_COMPLETED),
            (denied(Reason::ReplayedNonce, task()), TYPE_DENIED),
        ] {
            let started = std::time::Instant::now();
            let m = p.build(&with_task_id(record, mode));
            assert!(
                started.elapsed().as_secs() < 10,
                "{mode} took {:?}",
                started.elapsed()
            );
            let Mapping::Fallback { code: got, reason } = &m.mapping else {
                panic!(
                    "{mode}: the plugin's event was accepted: {}",
                    String::from_utf8_lossy(&m.json)
                );
            };
            assert_eq!(got, code, "{mode}: {reason}");
            let v = json(&m);
            assert_eq!(v["type"], ty, "{mode}: same kind");
            assert_eq!(v["mapperfailed"], true, "{mode}");
            assert_eq!(v["data"]["mapper_failed"], true);
            assert!(!v["data"]["mapper_error"].as_str().unwrap().is_empty());
            assert_eq!(v["data"]["task_id"], *mode);
            assert_eq!(v["data"]["tenant_id"], "tenant-a");
            assert_eq!(v["data"]["manifest_jws"], JWS);
            assert_eq!(
                v["data"]["tool_sha256"],
                format!("sha256:{}", "ab".repeat(32))
            );
            if ty == TYPE_COMPLETED {
                assert_eq!(
                    v["data"]["status"], "succeeded",
                    "{mode}: the result survives"
                );
                assert_eq!(v["data"]["exit_code"], 0);
                assert_eq!(v["data"]["sandbox"]["seccomp"], "filter");
                assert_eq!(v["data"]["stdout_sha256"], sha256_id(b"the result"));
                assert_eq!(v["data"]["stdout_bytes"], 10);
                assert!(
                    !String::from_utf8_lossy(&m.json).contains("the result"),
                    "{mode}: a failed mapper must not leak output it may have been meant to hide"
                );
            } else {
                assert_eq!(v["data"]["reason"], "replayed_nonce");
            }
            validate::check_json(&m.json, Some(p.max_event_bytes())).unwrap();
        }
    }
}

#[test]
fn the_fault_fixture_maps_normally_when_asked_to_behave() {
    // Proves each fallback above is caused by the fault, not by the fixture.
    let dir = tempfile::tempdir().unwrap();
    let p = EventPipeline::new(&config(dir.path(), &faults_config(dir.path())), &host()).unwrap();
    let m = p.build(&with_task_id(completed(b"", b""), "behave"));
    assert_eq!(m.mapping, Mapping::Plugin { attempts: 1 });
    assert_eq!(json(&m)["type"], "dev.edge-runner.test.fixture.v1");
}

#[test]
fn fault_reasons_name_the_budget_that_stopped_the_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let p = EventPipeline::new(&config(dir.path(), &faults_config(dir.path())), &host()).unwrap();
    let reason = |mode: &str| match p.build(&with_task_id(completed(b"", b""), mode)).mapping {
        Mapping::Fallback { reason, .. } => reason,
        other => panic!("{other:?}"),
    };
    assert!(reason("loop").contains("fuel"), "{}", reason("loop"));
    assert!(reason("hog").contains("memory"), "{}", reason("hog"));
    assert!(reason("trap").contains("trapped"), "{}", reason("trap"));
}

#[test]
fn digest_mapper_swaps_in_by_pin_and_keeps_only_digests() {
    let dir = tempfile::tempdir().unwrap();
    let path = env!("EDGE_RUNNER_PLUGIN_DIGEST_MAPPER");
    let bytes = std::fs::read(path).unwrap();
    let pin = |sha: &str| format!("[plugins.mapper]\npath = {path:?}\nsha256 = \"{sha}\"\n");
    let p = EventPipeline::new(&config(dir.path(), &pin(&sha256_id(&bytes))), &host()).unwrap();
    assert_eq!(p.mapper().name, "digest-mapper");
    let stdout = b"secret output that must not leave the host".repeat(10);
    let m = p.build(&completed(&stdout, b"secret stderr"));
    assert_eq!(m.mapping, Mapping::Plugin { attempts: 1 });
    let v = json(&m);
    assert_eq!(v["type"], "dev.edge-runner.task.completed.digest.v1");
    let d = &v["data"];
    assert!(d.get("stdout").is_none() && d.get("stderr").is_none());
    assert!(!String::from_utf8_lossy(&m.json).contains("secret"));
    assert_eq!(d["stdout_sha256"], sha256_id(&stdout));
    assert_eq!(d["stdout_captured_bytes"], stdout.len());
    assert_eq!(d["stderr_sha256"], sha256_id(b"secret stderr"));
    assert_eq!(d["manifest_jws"], JWS);
    validate::check_json(&m.json, Some(p.max_event_bytes())).unwrap();
    // Denials keep the default type.
    let v = json(&p.build(&denied(Reason::KidUnknown, task())));
    assert_eq!(v["type"], TYPE_DENIED);

    // A wrong pin refuses to load, naming both digests.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let e = EventPipeline::new(&config(dir.path(), &pin(&wrong)), &host()).unwrap_err();
    let chain = format!("{e}: {:?}", std::error::Error::source(&e));
    assert!(
        matches!(
            &e,
            edge_runner::events::EventsError::Mapper(PluginError::DigestMismatch { .. })
        ),
        "{chain}"
    );
}

#[test]
fn a_verifier_component_is_refused_as_a_mapper_naming_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let path = env!("EDGE_RUNNER_FIXTURE_MISBEHAVING");
    let sha = sha256_id(&std::fs::read(path).unwrap());
    let cfg = format!("[plugins.mapper]\npath = {path:?}\nsha256 = \"{sha}\"\n");
    let e = EventPipeline::new(&config(dir.path(), &cfg), &host()).unwrap_err();
    let text = format!("{:?}", e);
    assert!(text.contains("event-mapper-plugin"), "{text}");
}
