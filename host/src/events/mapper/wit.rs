//! The event pipeline's side of the mapper contract: the host's execution record turned
//! into the WIT `execution-record` for one `to-event` call, and the plugin's `cloud-event`
//! turned back into plain host types ([`MappedEvent`]) for validation. Conversions only,
//! field for field; nothing is judged here.

use crate::events::record::{Disposition, ExecutionRecord};
use crate::plugins::mapper::wit;
use crate::plugins::{MapperPlugin, PluginFault, PluginHost, plugin_text};
use crate::sandbox::Termination;

/// One output stream as the host hands it to the mapper for one attempt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamView<'a> {
    /// The kept prefix (cut for the event size cap).
    pub kept: &'a [u8],
    pub total_bytes: u64,
    pub truncated: bool,
    pub captured_bytes: u64,
    pub captured_sha256: &'a str,
}

/// Everything one `to-event` call is made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MapInput<'a> {
    pub event_id: &'a str,
    pub time: &'a str,
    pub source: &'a str,
    pub record: &'a ExecutionRecord,
    pub stdout: StreamView<'a>,
    pub stderr: StreamView<'a>,
}

/// The event a plugin returned, unvalidated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MappedEvent {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub subject: Option<String>,
    pub time: Option<String>,
    pub datacontenttype: Option<String>,
    pub dataschema: Option<String>,
    pub data: Option<MappedData>,
    pub extensions: Vec<(String, MappedValue)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MappedData {
    Json(String),
    Binary(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MappedValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Uri(String),
}

/// What a `to-event` call produced.
#[derive(Debug)]
pub(crate) enum MapAnswer {
    Event(MappedEvent),
    /// The plugin declined with this (sanitized) message.
    Refused(String),
}

/// Calls `to-event` in a fresh instance with `input`, converting both ways.
pub(crate) fn map_event(
    host: &PluginHost,
    plugin: &MapperPlugin,
    input: &MapInput<'_>,
) -> Result<MapAnswer, PluginFault> {
    let record = to_wit(input);
    Ok(match host.call_to_event(plugin, &record)? {
        Ok(ev) => MapAnswer::Event(from_wit(ev)),
        Err(message) => MapAnswer::Refused(plugin_text(&message)),
    })
}

fn stream(v: &StreamView<'_>) -> wit::CapturedOutput {
    wit::CapturedOutput {
        bytes: v.kept.to_vec(),
        total_bytes: v.total_bytes,
        truncated: v.truncated,
        captured_bytes: v.captured_bytes,
        captured_sha256: v.captured_sha256.to_owned(),
    }
}

fn to_wit(input: &MapInput<'_>) -> wit::ExecutionRecord {
    let t = &input.record.task;
    let disposition = match &input.record.disposition {
        Disposition::Completed(o) => wit::Disposition::Completed(wit::Outcome {
            termination: match o.termination {
                Termination::Exited(c) => wit::Termination::Exited(c),
                Termination::Signaled(s) => wit::Termination::Signaled(s),
            },
            timed_out: o.timed_out,
            stdout: stream(&input.stdout),
            stderr: stream(&input.stderr),
            wall_ms: o.wall_ms,
            cpu_ms: o.cpu_ms,
            peak_memory_bytes: o.peak_memory_bytes,
            posture: wit::SandboxPosture {
                backend: o.posture.backend.clone(),
                namespaces: o.posture.namespaces.clone(),
                capabilities: o.posture.capabilities.clone(),
                seccomp: o.posture.seccomp.clone(),
                seccomp_extra: o.posture.seccomp_extra.clone(),
                landlock: o.posture.landlock.clone(),
                cgroup: o.posture.cgroup.clone(),
                apparmor: o.posture.apparmor.clone(),
                network: o.posture.network.clone(),
                uid: o.posture.uid,
                gid: o.posture.gid,
                no_new_privs: o.posture.no_new_privs,
                read_only_root: o.posture.read_only_root,
            },
        }),
        Disposition::Denied(d) => wit::Disposition::Denied(wit::Denial {
            stage: d.stage().as_str().to_owned(),
            reason: d.reason.code().to_owned(),
            message: d.message.clone(),
        }),
    };
    wit::ExecutionRecord {
        event_id: input.event_id.to_owned(),
        time: input.time.to_owned(),
        source: input.source.to_owned(),
        task: wit::Task {
            task_id: t.task_id.clone(),
            tenant_id: t.tenant_id.clone(),
            operator_id: t.operator_id.clone(),
            target_urn: t.target_urn.clone(),
            tool_sha256: t.tool_sha256.clone(),
            action: t.action.clone(),
            manifest_jws: t.manifest_jws.clone(),
            manifest_sha256: t.manifest_sha256.clone(),
        },
        disposition,
    }
}

fn from_wit(ev: wit::CloudEvent) -> MappedEvent {
    MappedEvent {
        id: ev.id,
        source: ev.source,
        ty: ev.type_,
        subject: ev.subject,
        time: ev.time,
        datacontenttype: ev.datacontenttype,
        dataschema: ev.dataschema,
        data: ev.data.map(|d| match d {
            wit::EventData::Json(j) => MappedData::Json(j),
            wit::EventData::Binary(b) => MappedData::Binary(b),
        }),
        extensions: ev
            .extensions
            .into_iter()
            .map(|e| {
                let v = match e.value {
                    wit::AttributeValue::String(s) => MappedValue::String(s),
                    wit::AttributeValue::Integer(i) => MappedValue::Integer(i),
                    wit::AttributeValue::Boolean(b) => MappedValue::Boolean(b),
                    wit::AttributeValue::Uri(u) => MappedValue::Uri(u),
                };
                (e.name, v)
            })
            .collect(),
    }
}
