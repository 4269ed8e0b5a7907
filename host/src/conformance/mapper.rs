//! Runs the mapper suite on one loaded plugin: every record shape (completed with each
//! termination and output kind, refused for every reason code with no, partial and full
//! context) goes through the host's own mapping path (`events::mapper`: budget, plugin
//! call, CloudEvents validation with the linkage rules), and must come out as the
//! plugin's event, never the fallback. Output must stay proportional to input.

use super::Row;
use crate::events::mapper::{Envelope, Mapper, Mapping};
use crate::events::record::{Denial, Disposition, ExecutionRecord, TaskContext};
use crate::plugins::{MapperPlugin, PluginHost};
use crate::reason::{Reason, Refusal};
use crate::sandbox::{Captured, Outcome, Posture, Termination};

/// The event size caps the suite maps under: the default and a small one.
const CAPS: [usize; 2] = [65536, 4096];

fn task() -> TaskContext {
    let jws = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsifQ.eyJ0YXNrX2lkIjoidC0xIn0.c2lnbmF0dXJl";
    TaskContext {
        task_id: Some("task-42".into()),
        tenant_id: Some("tenant-a".into()),
        operator_id: Some("operator-7".into()),
        target_urn: Some("urn:edge:target:pump-3".into()),
        tool_sha256: Some(format!("sha256:{}", "ab".repeat(32))),
        action: Some("inspect".into()),
        ..TaskContext::received(jws.as_bytes())
    }
}

// `..Posture::default()` keeps this compiling when the posture record gains fields.
#[allow(clippy::needless_update)]
fn completed(
    termination: Termination,
    timed_out: bool,
    stdout: &[u8],
    stderr: &[u8],
) -> ExecutionRecord {
    ExecutionRecord {
        task: task(),
        disposition: Disposition::Completed(Outcome {
            termination,
            timed_out,
            stdout: Captured::complete(stdout),
            stderr: Captured::complete(stderr),
            wall_ms: 12,
            cpu_ms: 3,
            peak_memory_bytes: 4 << 20,
            posture: Posture {
                backend: "native".into(),
                namespaces: ["pid", "net", "mount", "ipc", "uts", "user"]
                    .map(String::from)
                    .to_vec(),
                capabilities: Vec::new(),
                seccomp: "filter".into(),
                apparmor: "unavailable".into(),
                network: "none".into(),
                uid: 65534,
                gid: 65534,
                no_new_privs: true,
                read_only_root: true,
                ..Posture::default()
            },
        }),
    }
}

fn denied(reason: Reason, task: TaskContext) -> ExecutionRecord {
    ExecutionRecord {
        task,
        disposition: Disposition::Denied(Denial::from(Refusal::new(
            reason,
            format!("refused by the conformance suite: {}", reason.code()),
        ))),
    }
}

/// Every record shape, with a name for the report.
fn records() -> Vec<(String, ExecutionRecord)> {
    let mut out = vec![
        (
            "completed, no output".to_owned(),
            completed(Termination::Exited(0), false, b"", b""),
        ),
        (
            "completed, text output".to_owned(),
            completed(Termination::Exited(0), false, b"ok\n", b"warning\n"),
        ),
        (
            "completed, binary output".to_owned(),
            completed(
                Termination::Exited(0),
                false,
                &[0, 159, 146, 150, 0xff],
                b"\x01\x02 control \x7f",
            ),
        ),
        (
            "completed, 300 KB of output".to_owned(),
            completed(
                Termination::Exited(0),
                false,
                "é€😀".repeat(30_000).as_bytes(),
                &[0xfe; 100_000],
            ),
        ),
        (
            "exited 1".to_owned(),
            completed(Termination::Exited(1), false, b"partial", b""),
        ),
        (
            "exited -1".to_owned(),
            completed(Termination::Exited(-1), false, b"", b""),
        ),
        (
            "killed by signal 9".to_owned(),
            completed(Termination::Signaled(9), false, b"", b""),
        ),
        (
            "timed out".to_owned(),
            completed(Termination::Signaled(15), true, b"", b""),
        ),
    ];
    let mut odd = completed(Termination::Exited(0), false, b"x", b"");
    odd.task.task_id = Some("id with\nnewline".into());
    odd.task.tenant_id = Some(String::new());
    out.push(("odd task id and empty tenant".to_owned(), odd));
    for reason in Reason::ALL {
        out.push((
            format!("denied {}, no context", reason.code()),
            denied(*reason, TaskContext::default()),
        ));
        out.push((
            format!("denied {}, non-UTF-8 JWS", reason.code()),
            denied(*reason, TaskContext::received(b"\xff not utf8")),
        ));
        out.push((
            format!("denied {}, full context", reason.code()),
            denied(*reason, task()),
        ));
    }
    out
}

fn envelope(n: usize) -> Envelope {
    Envelope {
        id: format!("0190c0de-0000-7000-8000-{n:012}"),
        time: "2026-01-01T00:00:00.000Z".into(),
        source: "urn:edge-runner:conformance".into(),
    }
}

/// Every row for a mapper.
pub(crate) fn check(host: &PluginHost, plugin: MapperPlugin) -> Vec<Row> {
    let mut rows = vec![Row::pass(
        "info: loads",
        format!(
            "{} {}: event types {} (contract {})",
            plugin.name,
            plugin.version,
            if plugin.event_types.is_empty() {
                "(none listed)".to_owned()
            } else {
                plugin.event_types.join(", ")
            },
            plugin.contract().version()
        ),
    )];
    let records = records();
    let mapper_for = |cap| Mapper::new(host.clone(), plugin.clone(), cap);
    for cap in CAPS {
        let mapper = mapper_for(cap);
        let mut failures = Vec::new();
        for (i, (name, record)) in records.iter().enumerate() {
            let mapped = mapper.map(record, &envelope(i));
            if let Mapping::Fallback { code, reason } = &mapped.mapping {
                failures.push(format!(
                    "{name}: the host used the fallback ({code}: {reason})"
                ));
            }
        }
        let check =
            format!("every record shape -> valid CloudEvent, linkage kept (cap {cap} bytes)");
        rows.push(if failures.is_empty() {
            Row::pass(
                &check,
                format!("{} records mapped and validated", records.len()),
            )
        } else {
            Row::fail(
                &check,
                format!(
                    "{} of {} failed: {}",
                    failures.len(),
                    records.len(),
                    failures
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
        });
    }
    // Proportional output: a small record gives a small event, and the event for 300 KB of
    // output fits the cap on the first or second call.
    let mapper = mapper_for(CAPS[0]);
    let small = mapper.map(
        &completed(Termination::Exited(0), false, b"ok", b""),
        &envelope(0),
    );
    let big = mapper.map(
        &completed(
            Termination::Exited(0),
            false,
            &vec![b'a'; 300_000],
            &vec![b'b'; 300_000],
        ),
        &envelope(1),
    );
    let check = "output proportional to input";
    let attempts = match big.mapping {
        Mapping::Plugin { attempts } => Some(attempts),
        Mapping::Fallback { .. } => None,
    };
    rows.push(match attempts {
        _ if small.json.len() > 16 * 1024 => Row::fail(
            check,
            format!(
                "a record with 2 bytes of output became a {}-byte event",
                small.json.len()
            ),
        ),
        None => Row::fail(
            check,
            "600 KB of output could not be mapped under the cap".into(),
        ),
        Some(n) if n > 2 => Row::fail(
            check,
            format!("600 KB of output needed {n} calls to fit the cap (the host allows 4)"),
        ),
        Some(n) => Row::pass(
            check,
            format!(
                "{} bytes for 2 bytes of output; 600 KB fits {} bytes in {n} call(s)",
                small.json.len(),
                big.json.len()
            ),
        ),
    });
    rows
}
