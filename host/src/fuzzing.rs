//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off in every
//! normal build): thin public wrappers over crate-private stages, so that a fuzzer drives
//! exactly the code the runner runs. This module must not add checks or logic of its own:
//! a wrapper that judged anything would let a fuzzer test the wrapper instead.

use crate::events::mapper::wit::{MappedData, MappedEvent, MappedValue};
use crate::events::mapper::{Envelope, Mapped, Mapper};
use crate::events::record::ExecutionRecord;
use crate::events::sinks::spool;
use crate::events::validate::{self, Expect, InvalidEvent};
use crate::plugins::{CompileCache, MapperPlugin, PluginError, PluginHost, PluginLimits};
use std::path::{Path, PathBuf};

/// What a mapper plugin can return for one event (the WIT `cloud-event`), as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub subject: Option<String>,
    pub time: Option<String>,
    pub datacontenttype: Option<String>,
    pub dataschema: Option<String>,
    pub data: Option<PluginData>,
    pub extensions: Vec<(String, PluginValue)>,
}

/// The WIT `event-data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginData {
    Json(String),
    Binary(Vec<u8>),
}

/// The WIT `attribute-value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginValue {
    String(String),
    Integer(i64),
    Boolean(bool),
    Uri(String),
}

/// The host's judgement of a plugin's event for `record` (`events::validate::build`) and,
/// when it passes, the serialized event the sinks would get.
pub fn check_plugin_event(
    event: PluginEvent,
    id: &str,
    source: &str,
    record: &ExecutionRecord,
) -> Result<Vec<u8>, InvalidEvent> {
    let mapped = MappedEvent {
        id: event.id,
        source: event.source,
        ty: event.ty,
        subject: event.subject,
        time: event.time,
        datacontenttype: event.datacontenttype,
        dataschema: event.dataschema,
        data: event.data.map(|d| match d {
            PluginData::Json(t) => MappedData::Json(t),
            PluginData::Binary(b) => MappedData::Binary(b),
        }),
        extensions: event
            .extensions
            .into_iter()
            .map(|(n, v)| {
                let v = match v {
                    PluginValue::String(s) => MappedValue::String(s),
                    PluginValue::Integer(i) => MappedValue::Integer(i),
                    PluginValue::Boolean(b) => MappedValue::Boolean(b),
                    PluginValue::Uri(u) => MappedValue::Uri(u),
                };
                (n, v)
            })
            .collect(),
    };
    let expect = Expect { id, source, record };
    validate::build(mapped, &expect)?.to_json()
}

/// The event mapper as the pipeline runs it: size budget, plugin call, checks, fallback.
#[derive(Debug)]
pub struct EventMapper {
    mapper: Mapper,
}

impl EventMapper {
    /// The embedded default mapper, on a one-shot host with the default limits and no
    /// compile cache.
    pub fn embedded(max_event_bytes: usize) -> Result<Self, PluginError> {
        let host = PluginHost::new(PluginLimits::default(), CompileCache::disabled())?;
        let plugin = host.load_mapper(None)?;
        Ok(Self::with_plugin(host, plugin, max_event_bytes))
    }

    /// `plugin`, loaded on `host`.
    pub fn with_plugin(host: PluginHost, plugin: MapperPlugin, max_event_bytes: usize) -> Self {
        Self {
            mapper: Mapper::new(host, plugin, max_event_bytes),
        }
    }

    /// Maps `record` under the host-chosen envelope (`id`, `time`, `source`).
    pub fn map(&self, record: &ExecutionRecord, id: &str, time: &str, source: &str) -> Mapped {
        let envelope = Envelope {
            id: id.to_owned(),
            time: time.to_owned(),
            source: source.to_owned(),
        };
        self.mapper.map(record, &envelope)
    }
}

/// The spool's file-name decoder: the sequence number a file name stands for.
pub fn spool_entry_seq(name: &str) -> Option<u64> {
    spool::entry_seq(name)
}

/// The file name the spool writes for sequence number `seq`.
pub fn spool_entry_name(seq: u64) -> String {
    spool::entry_name(seq)
}

/// The spool's retry-state decoder: `(failures, next attempt in ms)`.
pub fn spool_backoff_parse(text: &str) -> Option<(u32, u64)> {
    spool::backoff::Backoff::parse(text).map(|b| (b.failures, b.next_attempt_ms))
}

/// The retry-state text the spool writes.
pub fn spool_backoff_render(failures: u32, next_attempt_ms: u64) -> String {
    spool::backoff::Backoff {
        failures,
        next_attempt_ms,
    }
    .render()
}

/// The queue of the spool in `dir` as the HTTP sink sees it: (sequence number, file),
/// oldest first, read under the spool lock.
pub fn spool_entries(dir: &Path, dead: &Path) -> Result<Vec<(u64, PathBuf)>, spool::SpoolError> {
    let limits = spool::SpoolLimits {
        max_events: u64::MAX,
        max_bytes: u64::MAX,
        backoff_initial: std::time::Duration::from_millis(1),
        backoff_max: std::time::Duration::from_millis(1),
    };
    let s = spool::Spool::open(dir, dead, limits)?;
    let locked = s.lock()?;
    Ok(locked
        .entries()?
        .into_iter()
        .map(|e| (e.seq, e.path))
        .collect())
}
