//! Every kind of event the runner can emit, checked by the host's own rules and by an
//! independent implementation: the official JSON schema plus the Python CloudEvents SDK
//! (`tests/interop/check_events.py`). Issue 5, "Tests".

use super::*;
use edge_runner::events::validate;

/// Completed events of every status and output shape, denials for every reason code with
/// little or full context, fallbacks for every mapper fault, digest-mapper events, under
/// the default and a small cap.
fn corpus(dir: &Path) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for cap in [65536usize, 4096] {
        let p = pipeline(dir, &format!("[events]\nmax_event_bytes = {cap}\n"));
        let mut records = vec![
            completed(b"", b""),
            completed(b"ok\n", b"warning\n"),
            completed(&[0u8, 159, 146, 150, 0xff], b"\x01\x02 control \x7f"),
            completed("é€😀".repeat(50_000).as_bytes(), &[0xfe; 100_000]),
        ];
        for (t, timed_out) in [
            (Termination::Exited(1), false),
            (Termination::Exited(-1), false),
            (Termination::Signaled(9), false),
            (Termination::Signaled(15), true),
        ] {
            let mut r = completed(b"partial", b"");
            if let Disposition::Completed(o) = &mut r.disposition {
                o.termination = t;
                o.timed_out = timed_out;
            }
            records.push(r);
        }
        let mut odd = completed(b"x", b"");
        odd.task.task_id = Some("id with\nnewline".into());
        odd.task.tenant_id = Some(String::new());
        records.push(odd);
        for reason in edge_runner::reason::Reason::ALL {
            records.push(denied(*reason, TaskContext::default()));
            records.push(denied(*reason, TaskContext::received(b"\xff not utf8")));
            records.push(denied(*reason, task()));
        }
        for r in &records {
            out.push((cap, p.build(r).json));
        }
    }
    let faults = tempfile::tempdir().unwrap();
    out.extend(
        super::faults::fallback_events(faults.path())
            .into_iter()
            .map(|j| (65536, j)),
    );
    let path = env!("EDGE_RUNNER_PLUGIN_DIGEST_MAPPER");
    let sha = edge_runner::digest::sha256_id(&std::fs::read(path).unwrap());
    let digest_dir = tempfile::tempdir().unwrap();
    let digest = EventPipeline::new(
        &config(
            digest_dir.path(),
            &format!("[plugins.mapper]\npath = {path:?}\nsha256 = \"{sha}\"\n"),
        ),
        &host(),
    )
    .unwrap();
    for r in [
        completed(b"a", &[0xff; 10]),
        denied(Reason::DigestUnknown, task()),
    ] {
        out.push((65536, digest.build(&r).json));
    }
    out
}

#[test]
fn every_event_the_runner_can_emit_passes_the_schema_the_extra_rules_and_the_python_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let events = corpus(dir.path());
    assert!(events.len() > 150, "{}", events.len());
    for (cap, json) in &events {
        if let Err(e) = validate::check_json(json, Some(*cap)) {
            panic!("{e} [{}]: {}", e.code(), String::from_utf8_lossy(json));
        }
    }
    for cap in [65536usize, 4096] {
        let lines: Vec<Vec<u8>> = events
            .iter()
            .filter(|(c, _)| *c == cap)
            .map(|(_, j)| j.clone())
            .collect();
        let (ok, report) = python_check(&lines, cap);
        assert!(ok, "independent checker refused events:\n{report}");
        assert!(
            report.contains(&format!("{} passed, 0 failed", lines.len())),
            "{report}"
        );
    }
}

#[test]
fn the_independent_checker_can_fail() {
    // Each line breaks one rule the schema alone would miss or one the SDK enforces.
    let bad = [
        r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"t","Tenant":"a"}"#,
        r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"t","big":4294967296}"#,
        r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"t","data":{},"data_base64":"AA=="}"#,
        r#"{"specversion":"1.0","id":"","source":"urn:x","type":"t"}"#,
        r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"t","time":"noon"}"#,
        r#"{"specversion":"1.0","id":"1","source":"a b","type":"t"}"#,
        r#"{"specversion":"1.0","id":"1","source":"urn:x","type":"dev.edge-runner.task.completed.v1","data":{"task_id":"t"}}"#,
    ];
    for line in bad {
        let (ok, report) = python_check(&[line.as_bytes().to_vec()], 0);
        assert!(!ok, "accepted: {line}\n{report}");
        assert!(
            validate::check_json(line.as_bytes(), None).is_err() || line.contains("edge-runner"),
            "{line}"
        );
    }
    let (ok, report) = python_check(&[vec![b'x'; 10]], 0);
    assert!(!ok, "{report}");
}
