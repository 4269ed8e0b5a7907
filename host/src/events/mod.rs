//! Telemetry: every task outcome and every denial leaves the runner as a CloudEvents v1.0
//! event. Flow, top to bottom:
//!
//! ```text
//! ExecutionRecord ─▶ envelope (id = UUIDv7, time, source)
//!   ─▶ mapper: cut output to the size budget ─▶ plugin to-event [WASM] ─▶ validate
//!        (any fault, refusal, invalid or oversized event ─▶ built-in fallback, flagged)
//!   ─▶ serialize once ─▶ sign (`signing`, when configured) ─▶ every sink: stdout | file (fsync, rotation) | http (spool first)
//! ```
//!
//! The event id is chosen once, before mapping, so every retry and redelivery of the
//! same event carries the same id (receivers deduplicate on `source` + `id`). Failures
//! never lose an event silently: a sink that cannot take it says so in the
//! [`EmitReport`], and [`EventPipeline::emit`] returns [`EventsError::Undelivered`] when
//! any sink dead-lettered or failed, so a caller using `?` cannot miss it.
//!
//! Event types and data: see `plugins/cloudevents-mapper` (the default mapping),
//! [`record::TYPE_COMPLETED`] and [`record::TYPE_DENIED`]; the fallback (`fallback`)
//! keeps the same members except that stdout/stderr appear only as digests and counts.

pub mod config;
mod fallback;
pub mod mapper;
pub mod record;
pub mod signing;
pub mod sinks;
pub mod validate;

pub use config::{EventsConfig, SigningConfig, SinkConfig};
pub use mapper::{Mapped, Mapping};
pub use record::{
    Denial, Disposition, EventKind, ExecutionRecord, TYPE_COMPLETED, TYPE_DENIED, TaskContext,
};
pub use sinks::{Delivery, FlushReport};
pub use validate::InvalidEvent;

use crate::plugins::{MapperPlugin, PinnedFile, PluginError, PluginHost};
use mapper::{Envelope, Mapper};
use sinks::spool::{Spool, SpoolError};
use sinks::{FileSink, HttpSink, Sink, StdoutSink};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the event pipeline could not be set up or an event could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The mapper plugin could not be loaded.
    #[error("failed to load the event mapper plugin")]
    Mapper(#[source] PluginError),
    /// An HTTP sink's spool could not be opened.
    #[error("failed to open the event spool")]
    Spool(#[source] SpoolError),
    /// An HTTPS sink's TLS settings could not be built.
    #[error("failed to set up TLS for http sink {sink}")]
    Tls {
        /// The sink's name.
        sink: String,
        /// What went wrong.
        #[source]
        source: sinks::tls::TlsError,
    },
    /// The event signing key could not be loaded.
    #[error("failed to load the event signing key")]
    Signing(#[source] signing::SigningError),
    /// At least one sink failed to deliver or queue the event.
    #[error("failed to deliver event {event_id}: {summary}")]
    Undelivered {
        /// The event's id.
        event_id: String,
        /// `<sink>: <error>` for each sink that failed, joined by `; `.
        summary: String,
        /// What became of the event at every sink.
        report: Box<EmitReport>,
    },
}

/// What became of one emitted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitReport {
    /// The event's id.
    pub event_id: String,
    pub(crate) event_type: String,
    /// Serialized size in bytes.
    pub bytes: usize,
    pub(crate) mapping: Mapping,
    /// The event exceeds the size cap because its linkage fields alone do (it was
    /// emitted anyway; see `Mapped::over_cap`).
    pub over_cap: bool,
    /// One entry per sink, in configuration order.
    pub deliveries: Vec<(String, Delivery)>,
}

impl EmitReport {
    /// True when every sink has the event (or has it durably queued) and the mapper's
    /// own event was used.
    pub fn is_clean(&self) -> bool {
        matches!(self.mapping, Mapping::Plugin { .. })
            && !self.over_cap
            && self
                .deliveries
                .iter()
                .all(|(_, d)| matches!(d, Delivery::Delivered))
    }
}

/// The mapper and the sinks, built once from the configuration.
#[derive(Debug)]
pub struct EventPipeline {
    mapper: Mapper,
    signer: Option<signing::EventSigner>,
    sinks: EventSinks,
    source: String,
    max_event_bytes: usize,
}

/// The configured sinks alone: enough to flush, inspect or requeue the spools without
/// loading a mapper (a broken mapper pin must not strand spooled events).
#[derive(Debug)]
pub struct EventSinks {
    sinks: Vec<Sink>,
}

/// Where HTTP sinks keep their spools and dead letters, under `<state_dir>/events/`.
const SPOOL_DIR: &str = "spool";
const DEAD_LETTER_DIR: &str = "dead-letter";

/// Where an HTTP sink keeps its spool and dead letters.
pub fn spool_dirs(state_dir: &Path, sink_name: &str) -> (PathBuf, PathBuf) {
    let base = state_dir.join("events");
    (
        base.join(SPOOL_DIR).join(sink_name),
        base.join(DEAD_LETTER_DIR).join(sink_name),
    )
}

/// Every spool and dead-letter directory under `state_dir` that holds events, with how
/// many, whichever sink (configured or not) left them there.
pub fn spooled_events(state_dir: &Path) -> Vec<(PathBuf, usize)> {
    let mut found = Vec::new();
    for kind in [SPOOL_DIR, DEAD_LETTER_DIR] {
        let Ok(sinks) = std::fs::read_dir(state_dir.join("events").join(kind)) else {
            continue;
        };
        for sink in sinks.flatten() {
            let dir = sink.path();
            let n = sinks::spool::count_events(&dir);
            if n > 0 {
                found.push((dir, n));
            }
        }
    }
    found.sort();
    found
}

/// The receiver a spool directory's events are for (recorded when its sink opened it).
pub fn spool_destination(dir: &Path) -> Option<String> {
    sinks::spool::destination(dir)
}

/// What the event pipeline needs from the runner's configuration. The configuration
/// implements it (`crate::config`), so that configuration depends on events and not the
/// other way round.
pub trait EventsSettings {
    /// The `[events]` section.
    fn events(&self) -> &EventsConfig;
    /// Where HTTP sinks keep their spools: `<state_dir>/events/`.
    fn state_dir(&self) -> &Path;
    /// The configured mapper plugin file, if it replaces the embedded one.
    fn mapper_file(&self) -> Option<PinnedFile>;
    /// The input cap, to warn when an event could exceed its own cap.
    fn max_jws_bytes(&self) -> usize;
}

impl EventPipeline {
    /// Loads the mapper (`[plugins.mapper]` or the embedded default) on `plugins` and
    /// opens the sinks of `[events]` (creating spool directories 0700 under
    /// `state_dir`). The configuration is assumed checked (`Config::load` does).
    pub fn new(config: &impl EventsSettings, plugins: &PluginHost) -> Result<Self, EventsError> {
        let pinned = config.mapper_file();
        let plugin = plugins
            .load_mapper(pinned.as_ref())
            .map_err(EventsError::Mapper)?;
        Self::with_plugin(config, plugins.clone(), plugin)
    }

    fn with_plugin(
        config: &impl EventsSettings,
        host: PluginHost,
        plugin: MapperPlugin,
    ) -> Result<Self, EventsError> {
        let ev = config.events();
        if config.max_jws_bytes() + 8 * 1024 > ev.max_event_bytes {
            tracing::debug!(
                max_jws_bytes = config.max_jws_bytes(),
                max_event_bytes = ev.max_event_bytes,
                "a task near the input cap would produce an event over events.max_event_bytes \
                 (the manifest JWS is never cut); such events are emitted over the cap and logged"
            );
        }
        let signer = ev
            .signing
            .as_ref()
            .map(|s| signing::EventSigner::load(&s.key))
            .transpose()
            .map_err(EventsError::Signing)?;
        // The signature is appended after mapping: leave room for it under the cap.
        let reserve = signer.as_ref().map_or(0, signing::EventSigner::overhead);
        Ok(Self {
            mapper: Mapper::new(host, plugin, ev.max_event_bytes.saturating_sub(reserve)),
            signer,
            sinks: EventSinks::open(config)?,
            source: ev.source(),
            max_event_bytes: ev.max_event_bytes,
        })
    }

    /// The mapper plugin in use.
    pub fn mapper(&self) -> &MapperPlugin {
        self.mapper.plugin()
    }

    /// The CloudEvents `source` of this runner.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The size cap on one serialized event, in bytes (`events.max_event_bytes`).
    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Maps `record` to a validated event (plugin, or the flagged fallback) without
    /// delivering it: a fresh id and the current time; signed when a key is configured.
    pub fn build(&self, record: &ExecutionRecord) -> Mapped {
        let mut mapped = self.mapper.map(record, &self.envelope());
        if let Some(signer) = &self.signer {
            mapped.json = signer.sign(
                &mapped.json,
                &mapped.id,
                record.task.manifest_sha256.as_deref(),
            );
        }
        mapped
    }

    /// The key events are signed with, if any.
    pub fn signer(&self) -> Option<&signing::EventSigner> {
        self.signer.as_ref()
    }

    /// Builds the event for `record` and hands it to every sink.
    pub fn emit(&self, record: &ExecutionRecord) -> Result<EmitReport, EventsError> {
        let mapped = self.build(record);
        let event_id = mapped.id.clone();
        let event_type = mapped.ty.clone();
        let deliveries = self.sinks.deliver(&mapped.json);
        for (sink, d) in &deliveries {
            if let Delivery::Spooled { pending, reason } = d {
                tracing::warn!(event_id = %event_id, sink = %sink, pending, reason = %reason, "event spooled for later delivery");
            }
        }
        let report = EmitReport {
            event_id: event_id.clone(),
            event_type,
            bytes: mapped.json.len(),
            mapping: mapped.mapping,
            over_cap: mapped.over_cap,
            deliveries,
        };
        let failed: Vec<String> = report
            .deliveries
            .iter()
            .filter_map(|(sink, d)| match d {
                Delivery::DeadLettered { reason, .. } => {
                    Some(format!("{sink}: dead-lettered ({reason})"))
                }
                Delivery::Failed { error } => Some(format!("{sink}: {error}")),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            Ok(report)
        } else {
            Err(EventsError::Undelivered {
                event_id,
                summary: failed.join("; "),
                report: Box::new(report),
            })
        }
    }

    /// The sinks, for flushing and inspecting spools.
    pub fn sinks(&self) -> &EventSinks {
        &self.sinks
    }

    fn envelope(&self) -> Envelope {
        // UUIDv7: unique, and sortable by creation time, which helps receivers and
        // operators reading a spool.
        let now = chrono::Utc::now();
        Envelope {
            id: uuid::Uuid::now_v7().to_string(),
            time: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            source: self.source.clone(),
        }
    }
}

impl EventSinks {
    /// Opens the sinks of `[events]`, creating each HTTP sink's spool and dead-letter
    /// directories (0700) under `<state_dir>/events/`.
    pub fn open(config: &impl EventsSettings) -> Result<Self, EventsError> {
        let ev = config.events();
        let mut sinks = Vec::new();
        for s in ev.sinks() {
            let tls = s.tls_settings();
            sinks.push(match s {
                SinkConfig::Stdout => Sink::Stdout(StdoutSink),
                SinkConfig::File {
                    path,
                    max_bytes,
                    keep,
                } => Sink::File(FileSink::new(&path, max_bytes, keep)),
                SinkConfig::Http {
                    url,
                    name,
                    timeout_ms,
                    emit_timeout_ms,
                    ..
                } => {
                    let (dir, dead) = spool_dirs(config.state_dir(), &name);
                    let spool =
                        Spool::open(&dir, &dead, ev.spool.limits()).map_err(EventsError::Spool)?;
                    sinks::spool::bind_destination(&dir, url.as_str())
                        .map_err(EventsError::Spool)?;
                    let credentials =
                        tls.unwrap_or_default()
                            .load()
                            .map_err(|source| EventsError::Tls {
                                sink: name.clone(),
                                source,
                            })?;
                    Sink::Http(Box::new(HttpSink::new(
                        &name,
                        &url,
                        (
                            Duration::from_millis(timeout_ms),
                            Duration::from_millis(emit_timeout_ms),
                        ),
                        spool,
                        credentials,
                    )))
                }
            });
        }
        Ok(Self { sinks })
    }

    /// Hands serialized event `json` to every sink, in configuration order.
    pub fn deliver(&self, json: &[u8]) -> Vec<(String, Delivery)> {
        self.sinks
            .iter()
            .map(|s| (s.name(), s.deliver(json)))
            .collect()
    }

    /// Delivers every HTTP sink's spool, retrying with backoff for at most `wait`.
    pub fn flush(&self, wait: Duration) -> Result<Vec<FlushReport>, EventsError> {
        self.http_sinks()
            .map(|h| h.flush(wait).map_err(EventsError::Spool))
            .collect()
    }

    /// Per HTTP sink: (name, queued events, dead-lettered events).
    pub fn spool_status(&self) -> Result<Vec<SpoolStatus>, EventsError> {
        self.http_sinks()
            .map(|h| {
                let l = h.spool().lock().map_err(EventsError::Spool)?;
                let entries = l.entries().map_err(EventsError::Spool)?;
                let dead = l.dead_letters().map_err(EventsError::Spool)?;
                let backoff = l.backoff();
                Ok(SpoolStatus {
                    sink: format!("http:{}", h.name()),
                    spool_dir: h.spool().dir().to_owned(),
                    dead_letter_dir: h.spool().dead_dir().to_owned(),
                    pending: entries.len() as u64,
                    pending_bytes: entries.iter().map(|e| e.size).sum(),
                    dead_letters: dead.len() as u64,
                    failures: backoff.failures,
                    next_attempt_in: backoff.remaining(),
                })
            })
            .collect()
    }

    /// Moves dead-lettered events back into each HTTP sink's spool (after the cause was
    /// fixed); returns how many moved per sink.
    pub fn requeue(&self) -> Result<Vec<(String, u64)>, EventsError> {
        self.http_sinks()
            .map(|h| {
                let l = h.spool().lock().map_err(EventsError::Spool)?;
                let n = l.requeue_dead_letters().map_err(EventsError::Spool)?;
                Ok((format!("http:{}", h.name()), n))
            })
            .collect()
    }

    fn http_sinks(&self) -> impl Iterator<Item = &HttpSink> {
        self.sinks.iter().filter_map(|s| match s {
            Sink::Http(h) => Some(h.as_ref()),
            _ => None,
        })
    }
}

/// The state of one HTTP sink's spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStatus {
    /// The sink, as `http:<name>`.
    pub sink: String,
    /// Where its queued events wait.
    pub spool_dir: PathBuf,
    /// Where events it gave up on are kept.
    pub dead_letter_dir: PathBuf,
    /// Events queued for delivery.
    pub pending: u64,
    /// Their total size, in bytes.
    pub pending_bytes: u64,
    /// Events dead-lettered.
    pub dead_letters: u64,
    /// Consecutive failed delivery attempts.
    pub failures: u32,
    /// Time until the next attempt an `emit` would make.
    pub next_attempt_in: Duration,
}
