//! Event-mapper plugins: loading one (the embedded default or a digest-pinned file),
//! and calling `to-event` in a fresh instance with fuel and a memory cap. The plugin's
//! answer comes back as plain host types ([`MappedEvent`]); this module does not judge
//! it (that is `events::validate`) and does not decide what to emit on failure (that is
//! `events::mapper`).

use super::bindings::mapper::EventMapperPluginPre;
use super::bindings::mapper::exports::edge_runner::plugin::event_mapper as wit;
use super::{
    FaultKind, LoadedBytes, Origin, PinnedFile, PluginError, PluginFault, PluginHost, embedded,
    plugin_text, store,
};
use crate::events::record::{Disposition, ExecutionRecord, Termination};
use std::fmt;

/// The WIT world a mapper implements.
const WORLD: &str = "event-mapper-plugin";
/// Upper bounds on what `info()` may return.
const MAX_NAME_LEN: usize = 64;
const MAX_EVENT_TYPES: usize = 32;

/// One loaded mapper component, ready to instantiate.
pub struct MapperPlugin {
    pub name: String,
    pub version: String,
    /// The event types the plugin says it emits.
    pub event_types: Vec<String>,
    pub origin: Origin,
    pub sha256: String,
    pre: EventMapperPluginPre<store::PluginState>,
}

impl fmt::Debug for MapperPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapperPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("event_types", &self.event_types)
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

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

impl PluginHost {
    /// Loads the mapper: the pinned file when configured, else the embedded default.
    pub fn load_mapper(&self, file: Option<&PinnedFile>) -> Result<MapperPlugin, PluginError> {
        let loaded = match file {
            Some(f) => self.pinned_bytes(f)?,
            None => PluginHost::builtin_bytes(&embedded::MAPPER),
        };
        let component = self.component(&loaded)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|source| PluginError::Ungranted {
                    label: loaded.label.clone(),
                    source,
                })?;
        let pre =
            EventMapperPluginPre::new(instance_pre).map_err(|source| PluginError::WrongWorld {
                label: loaded.label.clone(),
                world: WORLD,
                source,
            })?;
        let LoadedBytes {
            sha256,
            origin,
            label,
            ..
        } = loaded;
        let mut plugin = MapperPlugin {
            name: label.clone(),
            version: String::new(),
            event_types: Vec::new(),
            origin,
            sha256,
            pre,
        };
        let info = self
            .call_mapper(&plugin, |b, s| {
                b.edge_runner_plugin_event_mapper().call_info(s)
            })
            .map_err(|fault| PluginError::Info {
                label: label.clone(),
                fault,
            })?;
        if info.name.is_empty() || info.name.len() > MAX_NAME_LEN {
            return Err(PluginError::BadInfo {
                label,
                problem: format!("name must be 1 to {MAX_NAME_LEN} bytes"),
            });
        }
        if info.event_types.len() > MAX_EVENT_TYPES {
            return Err(PluginError::BadInfo {
                label,
                problem: format!("lists more than {MAX_EVENT_TYPES} event types"),
            });
        }
        plugin.name = plugin_text(&info.name);
        plugin.version = plugin_text(&info.version);
        plugin.event_types = info.event_types.iter().map(|t| plugin_text(t)).collect();
        Ok(plugin)
    }

    /// Calls `to-event` in a fresh instance.
    pub(crate) fn map_event(
        &self,
        plugin: &MapperPlugin,
        input: &MapInput<'_>,
    ) -> Result<MapAnswer, PluginFault> {
        let record = to_wit(input);
        let answer = self.call_mapper(plugin, |b, s| {
            b.edge_runner_plugin_event_mapper()
                .call_to_event(s, &record)
        })?;
        Ok(match answer {
            Ok(ev) => MapAnswer::Event(from_wit(ev)),
            Err(message) => MapAnswer::Refused(plugin_text(&message)),
        })
    }

    fn call_mapper<R>(
        &self,
        plugin: &MapperPlugin,
        f: impl FnOnce(
            &super::bindings::mapper::EventMapperPlugin,
            &mut wasmtime::Store<store::PluginState>,
        ) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFault> {
        let mut store = store::new_store(&self.engine, &self.limits).map_err(|e| PluginFault {
            plugin: plugin.name.clone(),
            kind: FaultKind::Instantiate(format!("{e:#}")),
        })?;
        let instance = match plugin.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.classify(&plugin.name, e, &store)),
        };
        f(&instance, &mut store).map_err(|e| self.classify(&plugin.name, e, &store))
    }
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
