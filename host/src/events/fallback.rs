//! The built-in event the runner emits when the mapper plugin traps, runs out of budget,
//! refuses, or returns an event the host refuses: the same kind and type as the default
//! mapping (`dev.edge-runner.task.completed.v1` / `...denied.v1`), flagged by the
//! extension `mapperfailed=true` and the data members `mapper_failed: true` and
//! `mapper_error` (why). Native code, no plugin: it must not be able to fail in the ways a
//! plugin can. It keeps every linkage field and the whole result (status, exit code or
//! signal, timings, posture), but carries stdout/stderr only as sha256 digests and byte
//! counts: an operator may have swapped in a mapper precisely to keep output off the
//! wire (a redacting or digest-only mapper), and its failure must not leak it.

use super::mapper::wit::{MapInput, StreamView};
use super::record::{Disposition, ExecutionRecord};
use super::validate::{self, InvalidEvent, MAPPER_FAILED_EXTENSION};
use crate::sandbox::Termination;
use cloudevents::event::ExtensionValue;
use cloudevents::{Event, EventBuilder as _, EventBuilderV10};
use serde_json::{Map, Value, json};

/// Longest `mapper_error` text kept, in characters.
const MAX_ERROR_CHARS: usize = 512;

/// Builds the fallback event for `input`, saying `why` the mapper's event was not used.
pub(crate) fn event(input: &MapInput<'_>, why: &str) -> Result<Event, InvalidEvent> {
    let record = input.record;
    let mut data = Map::new();
    task_members(&mut data, record);
    match &record.disposition {
        Disposition::Completed(o) => {
            let status = match (o.timed_out, o.termination) {
                (true, _) => "timed_out",
                (false, Termination::Exited(0)) => "succeeded",
                (false, Termination::Exited(_)) => "failed",
                (false, Termination::Signaled(_)) => "signaled",
            };
            data.insert("status".into(), status.into());
            let (code, signal) = match o.termination {
                Termination::Exited(c) => (json!(c), Value::Null),
                Termination::Signaled(s) => (Value::Null, json!(s)),
            };
            data.insert("exit_code".into(), code);
            data.insert("signal".into(), signal);
            data.insert("timed_out".into(), o.timed_out.into());
            stream(&mut data, "stdout", &input.stdout);
            stream(&mut data, "stderr", &input.stderr);
            data.insert("wall_ms".into(), o.wall_ms.into());
            data.insert("cpu_ms".into(), o.cpu_ms.into());
            data.insert("peak_memory_bytes".into(), o.peak_memory_bytes.into());
            let p = &o.posture;
            data.insert(
                "sandbox".into(),
                json!({
                    "backend": p.backend,
                    "namespaces": p.namespaces,
                    "capabilities": p.capabilities,
                    "seccomp": p.seccomp,
                    "seccomp_extra": p.seccomp_extra,
                    "landlock": p.landlock,
                    "cgroup": p.cgroup,
                    "apparmor": p.apparmor,
                    "network": p.network,
                    "uid": p.uid,
                    "gid": p.gid,
                    "no_new_privs": p.no_new_privs,
                    "read_only_root": p.read_only_root,
                }),
            );
        }
        Disposition::Denied(d) => {
            data.insert("status".into(), "denied".into());
            data.insert("stage".into(), d.stage().as_str().into());
            data.insert("reason".into(), d.reason.code().into());
            data.insert("message".into(), d.message.clone().into());
        }
    }
    data.insert("mapper_failed".into(), true.into());
    data.insert(
        "mapper_error".into(),
        why.chars().take(MAX_ERROR_CHARS).collect::<String>().into(),
    );

    let mut b = EventBuilderV10::new()
        .id(input.event_id)
        .source(input.source)
        .ty(record.kind().default_type())
        .time(input.time)
        .extension(MAPPER_FAILED_EXTENSION, ExtensionValue::Boolean(true));
    // Attributes only when they are valid CloudEvents strings; `data` keeps the raw value.
    if let Some(id) = record
        .task
        .task_id
        .as_deref()
        .filter(|s| validate::is_attribute_string(s))
    {
        b = b.subject(id);
    }
    if let Some(t) = record
        .task
        .tenant_id
        .as_deref()
        .filter(|s| validate::is_attribute_string(s))
    {
        b = b.extension("tenantid", t);
    }
    let event = b
        .data("application/json", Value::Object(data))
        .build()
        .map_err(|e| InvalidEvent::Malformed(e.to_string()))?;
    validate::check(&event)?;
    Ok(event)
}

fn task_members(data: &mut Map<String, Value>, record: &ExecutionRecord) {
    let t = &record.task;
    for (name, value) in [
        ("task_id", &t.task_id),
        ("tenant_id", &t.tenant_id),
        ("operator_id", &t.operator_id),
        ("target_urn", &t.target_urn),
        ("tool_sha256", &t.tool_sha256),
        ("action", &t.action),
        ("manifest_jws", &t.manifest_jws),
        ("manifest_sha256", &t.manifest_sha256),
    ] {
        data.insert(
            name.into(),
            value.clone().map_or(Value::Null, Value::String),
        );
    }
}

/// Digests and counts of one stream, never its content.
fn stream(data: &mut Map<String, Value>, name: &str, s: &StreamView<'_>) {
    data.insert(format!("{name}_sha256"), s.captured_sha256.into());
    data.insert(format!("{name}_captured_bytes"), s.captured_bytes.into());
    data.insert(format!("{name}_bytes"), s.total_bytes.into());
    data.insert(
        format!("{name}_truncated"),
        (s.captured_bytes < s.total_bytes).into(),
    );
}
