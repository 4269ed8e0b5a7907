//! An alternative event-mapper plugin that keeps only digests and byte counts of the
//! tool's output, never the output itself: for tenants whose stdout/stderr may carry
//! data that must not leave the host. Swap it in with a pinned `[plugins.mapper]` entry.
//! Built `no_std`; it imports nothing from WASI and keeps every linkage field.
//!
//! # `dev.edge-runner.task.completed.digest.v1` data
//!
//! The members of `dev.edge-runner.task.completed.v1` (see the default
//! `cloudevents-mapper`) except `stdout`, `stderr`, their `_encoding` and `_kept_bytes`;
//! per stream it carries:
//!
//! | member | JSON type | meaning |
//! | --- | --- | --- |
//! | `stdout_sha256`, `stderr_sha256` | string | `sha256:<hex>` of the bytes the runner captured |
//! | `stdout_captured_bytes`, `stderr_captured_bytes` | integer | how many bytes the digest covers |
//! | `stdout_bytes`, `stderr_bytes` | integer | true count of bytes the tool wrote |
//! | `stdout_truncated`, `stderr_truncated` | boolean | the digest covers only a prefix (capture cap) |
//!
//! Denials are `dev.edge-runner.task.denied.v1`, exactly as the default mapper writes them.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "event-mapper-plugin",
        generate_all,
    });
    use super::DigestMapper;
    export!(DigestMapper with_types_in self);
}

use alloc::string::{String, ToString};
use alloc::vec;
use bindings::exports::edge_runner::plugin::event_mapper::{
    AttributeValue, CapturedOutput, CloudEvent, Denial, Disposition, EventData, ExecutionRecord,
    Extension, Guest, MapperInfo, Outcome, SandboxPosture, Task, Termination,
};
use edge_runner_plugin_support::is_attribute_string;
use edge_runner_plugin_support::json::JsonWriter;

/// The event types this mapper emits. The suffix is the data schema's major version.
pub const COMPLETED: &str = "dev.edge-runner.task.completed.digest.v1";
pub const DENIED: &str = "dev.edge-runner.task.denied.v1";

struct DigestMapper;

impl Guest for DigestMapper {
    fn info() -> MapperInfo {
        MapperInfo {
            name: "digest-mapper".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            event_types: vec![COMPLETED.to_string(), DENIED.to_string()],
        }
    }

    fn to_event(input: ExecutionRecord) -> Result<CloudEvent, String> {
        let (ty, data) = match &input.disposition {
            Disposition::Completed(outcome) => (COMPLETED, completed_data(&input.task, outcome)),
            Disposition::Denied(denial) => (DENIED, denied_data(&input.task, denial)),
        };
        Ok(CloudEvent {
            subject: attribute(input.task.task_id.as_deref()),
            extensions: attribute(input.task.tenant_id.as_deref())
                .map(|t| Extension {
                    name: "tenantid".to_string(),
                    value: AttributeValue::String(t),
                })
                .into_iter()
                .collect(),
            id: input.event_id,
            source: input.source,
            type_: ty.to_string(),
            time: Some(input.time),
            datacontenttype: Some("application/json".to_string()),
            dataschema: None,
            data: Some(EventData::Json(data)),
        })
    }
}

/// `Some(value)` when it can be a CloudEvents attribute (non-empty, no control characters).
fn attribute(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| is_attribute_string(v))
        .map(ToString::to_string)
}

fn task_members(w: &mut JsonWriter, task: &Task) {
    w.member_opt_str("task_id", task.task_id.as_deref());
    w.member_opt_str("tenant_id", task.tenant_id.as_deref());
    w.member_opt_str("operator_id", task.operator_id.as_deref());
    w.member_opt_str("target_urn", task.target_urn.as_deref());
    w.member_opt_str("tool_sha256", task.tool_sha256.as_deref());
    w.member_opt_str("action", task.action.as_deref());
    w.member_opt_str("manifest_jws", task.manifest_jws.as_deref());
    w.member_opt_str("manifest_sha256", task.manifest_sha256.as_deref());
}

fn denied_data(task: &Task, denial: &Denial) -> String {
    let mut w = JsonWriter::with_capacity(512 + task.manifest_jws.as_ref().map_or(0, String::len));
    w.begin_object();
    task_members(&mut w, task);
    w.member_str("status", "denied");
    w.member_str("stage", &denial.stage);
    w.member_str("reason", &denial.reason);
    w.member_str("message", &denial.message);
    w.end_object();
    w.finish()
}

fn completed_data(task: &Task, o: &Outcome) -> String {
    let mut w = JsonWriter::with_capacity(1024 + task.manifest_jws.as_ref().map_or(0, String::len));
    w.begin_object();
    task_members(&mut w, task);
    let status = match (o.timed_out, &o.termination) {
        (true, _) => "timed_out",
        (false, Termination::Exited(0)) => "succeeded",
        (false, Termination::Exited(_)) => "failed",
        (false, Termination::Signaled(_)) => "signaled",
    };
    w.member_str("status", status);
    w.key("exit_code");
    match o.termination {
        Termination::Exited(code) => w.int(i64::from(code)),
        Termination::Signaled(_) => w.null(),
    }
    w.key("signal");
    match o.termination {
        Termination::Signaled(sig) => w.int(i64::from(sig)),
        Termination::Exited(_) => w.null(),
    }
    w.member_bool("timed_out", o.timed_out);
    stream(&mut w, "stdout", &o.stdout);
    stream(&mut w, "stderr", &o.stderr);
    w.member_uint("wall_ms", o.wall_ms);
    w.member_uint("cpu_ms", o.cpu_ms);
    w.member_uint("peak_memory_bytes", o.peak_memory_bytes);
    w.key("sandbox");
    posture(&mut w, &o.posture);
    w.end_object();
    w.finish()
}

/// The members describing one output stream, prefixed by its name: digests and counts
/// only. `bytes` (the kept prefix) is deliberately never read.
fn stream(w: &mut JsonWriter, name: &str, out: &CapturedOutput) {
    let member = |suffix: &str| -> String {
        let mut s = String::with_capacity(name.len() + suffix.len());
        s.push_str(name);
        s.push_str(suffix);
        s
    };
    w.member_str(&member("_sha256"), &out.captured_sha256);
    w.member_uint(&member("_captured_bytes"), out.captured_bytes);
    w.member_uint(&member("_bytes"), out.total_bytes);
    w.member_bool(&member("_truncated"), out.captured_bytes < out.total_bytes);
}

fn posture(w: &mut JsonWriter, p: &SandboxPosture) {
    w.begin_object();
    w.member_str("backend", &p.backend);
    w.member_str_array("namespaces", p.namespaces.iter().map(String::as_str));
    w.member_str_array("capabilities", p.capabilities.iter().map(String::as_str));
    w.member_str("seccomp", &p.seccomp);
    w.member_str_array("seccomp_extra", p.seccomp_extra.iter().map(String::as_str));
    w.member_str("landlock", &p.landlock);
    w.member_str("cgroup", &p.cgroup);
    w.member_str("apparmor", &p.apparmor);
    w.member_str("network", &p.network);
    w.member_uint("uid", u64::from(p.uid));
    w.member_uint("gid", u64::from(p.gid));
    w.member_bool("no_new_privs", p.no_new_privs);
    w.member_bool("read_only_root", p.read_only_root);
    w.end_object();
}
