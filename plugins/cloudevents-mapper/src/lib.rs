//! The default event-mapper plugin: turns an execution record into a CloudEvent of type
//! `dev.edge-runner.task.completed.v1` or `dev.edge-runner.task.denied.v1` whose `data` is
//! the JSON document described below. Glue to the WIT contract lives in `bindings`; this
//! crate must not import anything from WASI (it is built `no_std`), and it must keep every
//! linkage field: the host refuses an event without them.
//!
//! # `dev.edge-runner.task.completed.v1` data
//!
//! | member | JSON type | meaning |
//! | --- | --- | --- |
//! | `task_id`, `tenant_id`, `operator_id`, `target_urn`, `action` | string or null | from the manifest |
//! | `tool_sha256` | string or null | `sha256:<hex>` of the tool that ran |
//! | `manifest_jws` | string or null | the exact compact JWS received |
//! | `manifest_sha256` | string or null | `sha256:<hex>` of the JWS bytes |
//! | `status` | string | `succeeded`, `failed` (non-zero exit), `signaled`, `timed_out` |
//! | `exit_code` / `signal` | integer or null | exactly one is non-null |
//! | `timed_out` | boolean | the wall-clock limit killed the tool |
//! | `stdout`, `stderr` | string | the kept bytes, as text or base64 |
//! | `stdout_encoding`, `stderr_encoding` | string | `utf-8` or `base64` (standard, padded) |
//! | `stdout_bytes`, `stderr_bytes` | integer | true count of bytes the tool wrote |
//! | `stdout_kept_bytes`, `stderr_kept_bytes` | integer | bytes carried in this event |
//! | `stdout_truncated`, `stderr_truncated` | boolean | kept < written (capture or event cap) |
//! | `stdout_captured_bytes`, `stderr_captured_bytes` | integer | bytes the runner captured |
//! | `stdout_sha256`, `stderr_sha256` | string | `sha256:<hex>` of the captured bytes |
//! | `wall_ms`, `cpu_ms`, `peak_memory_bytes` | integer | timings and memory |
//! | `sandbox` | object | `backend`, `namespaces`, `capabilities`, `seccomp`, `seccomp_extra`, `landlock`, `cgroup`, `apparmor`, `network`, `uid`, `gid`, `no_new_privs`, `read_only_root` |
//!
//! # `dev.edge-runner.task.denied.v1` data
//!
//! The eight task members above (null when unknown at refusal time), `status` = `denied`,
//! `stage` (pipeline stage), `reason` (stable reason code) and `message`.
//!
//! Attributes: `subject` = task id, extension `tenantid` = tenant id (each only when known
//! and a valid CloudEvents string), `datacontenttype` = `application/json`; `id`, `source`
//! and `time` are the host's.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[cfg(not(feature = "contract-0-1"))]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "event-mapper-plugin",
        generate_all,
    });
    use super::CloudEventsMapper;
    export!(CloudEventsMapper with_types_in self);
}

/// The same mapper built against the previous contract (`wit/compat/0.1.0`, whose posture
/// has no `seccomp-extra`, `landlock` or `cgroup`): the test fixture
/// `cloudevents-mapper-contract-0-1` that shows a host still loads 0.1 plugins.
#[cfg(feature = "contract-0-1")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/compat/0.1.0",
        world: "event-mapper-plugin",
        generate_all,
    });
    use super::CloudEventsMapper;
    export!(CloudEventsMapper with_types_in self);
}

use alloc::string::{String, ToString};
use alloc::vec;
use bindings::exports::edge_runner::plugin::event_mapper::{
    AttributeValue, CapturedOutput, CloudEvent, Denial, Disposition, EventData, ExecutionRecord,
    Extension, Guest, MapperInfo, Outcome, SandboxPosture, Task, Termination,
};
use edge_runner_plugin_support::json::JsonWriter;
use edge_runner_plugin_support::{b64_encode, is_attribute_string};

/// The event types this mapper emits. The suffix is the data schema's major version.
pub const COMPLETED: &str = "dev.edge-runner.task.completed.v1";
pub const DENIED: &str = "dev.edge-runner.task.denied.v1";

struct CloudEventsMapper;

impl Guest for CloudEventsMapper {
    fn info() -> MapperInfo {
        MapperInfo {
            name: "cloudevents-mapper".to_string(),
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
    let out_len = o.stdout.bytes.len() + o.stderr.bytes.len();
    let mut w = JsonWriter::with_capacity(
        1024 + task.manifest_jws.as_ref().map_or(0, String::len) + out_len * 4 / 3,
    );
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

/// The members describing one output stream, prefixed by its name.
fn stream(w: &mut JsonWriter, name: &str, out: &CapturedOutput) {
    let member = |suffix: &str| -> String {
        let mut s = String::with_capacity(name.len() + suffix.len());
        s.push_str(name);
        s.push_str(suffix);
        s
    };
    match core::str::from_utf8(&out.bytes) {
        Ok(text) => {
            w.member_str(name, text);
            w.member_str(&member("_encoding"), "utf-8");
        }
        Err(_) => {
            w.member_str(name, &b64_encode(&out.bytes));
            w.member_str(&member("_encoding"), "base64");
        }
    }
    w.member_uint(&member("_bytes"), out.total_bytes);
    w.member_uint(&member("_kept_bytes"), out.bytes.len() as u64);
    w.member_bool(&member("_truncated"), out.truncated);
    w.member_uint(&member("_captured_bytes"), out.captured_bytes);
    w.member_str(&member("_sha256"), &out.captured_sha256);
}

fn posture(w: &mut JsonWriter, p: &SandboxPosture) {
    w.begin_object();
    w.member_str("backend", &p.backend);
    w.member_str_array("namespaces", p.namespaces.iter().map(String::as_str));
    w.member_str_array("capabilities", p.capabilities.iter().map(String::as_str));
    w.member_str("seccomp", &p.seccomp);
    #[cfg(not(feature = "contract-0-1"))]
    {
        w.member_str_array("seccomp_extra", p.seccomp_extra.iter().map(String::as_str));
        w.member_str("landlock", &p.landlock);
        w.member_str("cgroup", &p.cgroup);
    }
    w.member_str("apparmor", &p.apparmor);
    w.member_str("network", &p.network);
    w.member_uint("uid", u64::from(p.uid));
    w.member_uint("gid", u64::from(p.gid));
    w.member_bool("no_new_privs", p.no_new_privs);
    w.member_bool("read_only_root", p.read_only_root);
    w.end_object();
}
