//! From record to validated, serialized event: the size budget, the plugin call, the
//! checks, and the fallback. The event size cap is met by cutting stdout/stderr (never the
//! linkage fields): the host cuts the output it hands the mapper to an estimated budget,
//! measures the serialized event, and maps again with a smaller budget while it is too
//! large; a mapper that faults, refuses, returns an invalid event, or cannot get under the
//! cap is replaced by the built-in fallback (`fallback`), flagged and logged. This module
//! delivers nothing.

mod budget;
pub(crate) mod wit;

use super::fallback;
use super::record::{Disposition, ExecutionRecord};
use super::validate::{self, Expect, InvalidEvent};
use crate::plugins::{MapperPlugin, PluginHost};
use crate::sandbox::Captured;
use budget::{encoded_len, fair_split, overhead, prefix_for_encoded, shrink};
use cloudevents::Event;
use wit::{MapAnswer, MapInput, StreamView};

/// Plugin calls per event before the fallback takes over: the estimate, up to two
/// corrections, then no output at all.
const MAX_ATTEMPTS: u32 = 4;

/// The host-chosen envelope of one event: stable across every mapping attempt and every
/// delivery retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub id: String,
    /// RFC 3339, UTC, millisecond precision.
    pub time: String,
    pub source: String,
}

/// How the event was produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// The mapper plugin's event, after `attempts` calls (more than one when the output
    /// had to be cut further to fit the cap).
    Plugin {
        /// Calls made to the plugin, from 1.
        attempts: u32,
    },
    /// The built-in fallback; `code` is stable (`mapper_fault`, `mapper_refused`, or an
    /// `InvalidEvent` code), `reason` says what went wrong.
    Fallback {
        /// The stable code of what went wrong.
        code: String,
        /// What went wrong, for a person.
        reason: String,
    },
}

/// A validated event, serialized once.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The event's `id` attribute.
    pub id: String,
    /// The event's `type` attribute.
    pub ty: String,
    /// The structured-mode JSON (`application/cloudevents+json`), one line.
    pub json: Vec<u8>,
    /// Whether the plugin's event was used, or the fallback.
    pub mapping: Mapping,
    /// True only when even the fallback with no output exceeds the cap (linkage fields
    /// alone too large); the event is emitted anyway, never dropped.
    pub over_cap: bool,
}

impl Mapped {
    fn new(event: &Event, json: Vec<u8>, mapping: Mapping, over_cap: bool) -> Self {
        use cloudevents::AttributesReader as _;
        Self {
            id: event.id().to_owned(),
            ty: event.ty().to_owned(),
            json,
            mapping,
            over_cap,
        }
    }

    /// The event as a cloudevents-sdk [`Event`], read back from [`Mapped::json`] with the
    /// checks of `validate::check_json`.
    pub fn event(&self) -> Result<Event, InvalidEvent> {
        validate::check_json(&self.json, None)
    }
}

/// The mapper plugin with the host that runs it and the cap it must meet.
pub(crate) struct Mapper {
    host: PluginHost,
    plugin: MapperPlugin,
    max_event_bytes: usize,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("plugin", &self.plugin)
            .field("max_event_bytes", &self.max_event_bytes)
            .finish_non_exhaustive()
    }
}

/// The captured output of both streams with their digests, computed once per event.
struct Streams<'a> {
    out: [&'a Captured; 2],
    sha256: [String; 2],
}

static EMPTY: Captured = Captured {
    bytes: Vec::new(),
    total_bytes: 0,
    truncated: false,
};

impl<'a> Streams<'a> {
    fn of(record: &'a ExecutionRecord) -> Self {
        let out = match &record.disposition {
            Disposition::Completed(o) => [&o.stdout, &o.stderr],
            Disposition::Denied(_) => [&EMPTY, &EMPTY],
        };
        Self {
            sha256: [
                crate::digest::sha256_id(&out[0].bytes),
                crate::digest::sha256_id(&out[1].bytes),
            ],
            out,
        }
    }

    fn view(&self, i: usize, keep: usize) -> StreamView<'_> {
        let o = self.out[i];
        let keep = keep.min(o.bytes.len());
        let captured = o.bytes.len() as u64;
        StreamView {
            kept: &o.bytes[..keep],
            total_bytes: o.total_bytes.max(captured),
            truncated: o.truncated || keep < o.bytes.len(),
            captured_bytes: captured,
            captured_sha256: &self.sha256[i],
        }
    }

    fn full(&self) -> [usize; 2] {
        [self.out[0].bytes.len(), self.out[1].bytes.len()]
    }
}

impl Mapper {
    pub(crate) fn new(host: PluginHost, plugin: MapperPlugin, max_event_bytes: usize) -> Self {
        Self {
            host,
            plugin,
            max_event_bytes,
        }
    }

    pub(crate) fn plugin(&self) -> &MapperPlugin {
        &self.plugin
    }

    /// Maps `record` to a validated event under the cap, or to the flagged fallback.
    pub(crate) fn map(&self, record: &ExecutionRecord, env: &Envelope) -> Mapped {
        let streams = Streams::of(record);
        let first = self.first_cut(record, env, &streams);
        let mut keep = first;
        let expect = Expect {
            id: &env.id,
            source: &env.source,
            record,
        };
        let mut attempts = 0;
        let failure = loop {
            attempts += 1;
            let input = input(record, env, &streams, keep);
            let mapped = match wit::map_event(&self.host, &self.plugin, &input) {
                Err(fault) => break ("mapper_fault".to_owned(), fault.to_string()),
                Ok(MapAnswer::Refused(m)) => {
                    break (
                        "mapper_refused".to_owned(),
                        format!("plugin {} refused the record: {m}", self.plugin.name),
                    );
                }
                Ok(MapAnswer::Event(m)) => m,
            };
            let checked = match validate::build(mapped, &expect) {
                Ok(c) => c,
                Err(invalid) => {
                    break (
                        invalid.code().to_owned(),
                        format!(
                            "plugin {} returned an invalid event: {invalid}",
                            self.plugin.name
                        ),
                    );
                }
            };
            match checked.to_json() {
                Ok(json) if json.len() <= self.max_event_bytes => {
                    return Mapped::new(&checked.event, json, Mapping::Plugin { attempts }, false);
                }
                Ok(json) => {
                    if keep == [0, 0] || attempts >= MAX_ATTEMPTS {
                        let e = InvalidEvent::TooLarge {
                            size: json.len(),
                            cap: self.max_event_bytes,
                        };
                        break (
                            e.code().to_owned(),
                            format!(
                                "plugin {} returned an event over the cap even with the output cut: {e}",
                                self.plugin.name
                            ),
                        );
                    }
                    keep = if attempts + 1 >= MAX_ATTEMPTS {
                        [0, 0]
                    } else {
                        shrink(&streams, keep, json.len() - self.max_event_bytes)
                    };
                }
                Err(e) => break (e.code().to_owned(), e.to_string()),
            }
        };
        let (code, reason) = failure;
        tracing::error!(
            event_id = %env.id,
            plugin = %self.plugin.name,
            code = %code,
            reason = %reason,
            "event mapper failed; emitting the built-in fallback event"
        );
        self.fallback(record, env, &streams, code, reason)
    }

    /// The fallback (digests instead of output, so its size does not depend on the
    /// output); over the cap only when the linkage fields alone do not fit, and then
    /// emitted anyway, never dropped.
    fn fallback(
        &self,
        record: &ExecutionRecord,
        env: &Envelope,
        streams: &Streams<'_>,
        code: String,
        reason: String,
    ) -> Mapped {
        let input = input(record, env, streams, streams.full());
        let built = fallback::event(&input, &reason).and_then(|e| serialize(&e).map(|j| (e, j)));
        let (event, json) = match built {
            Ok(ej) => ej,
            Err(e) => {
                // Host-built data from a checked configuration cannot be refused.
                tracing::error!(event_id = %env.id, error = %e, "failed to build the fallback event");
                return last_resort(env, record, code, reason);
            }
        };
        let over_cap = json.len() > self.max_event_bytes;
        if over_cap {
            tracing::error!(
                event_id = %env.id,
                bytes = json.len(),
                cap = self.max_event_bytes,
                "event exceeds the size cap with no output at all (the linkage fields alone \
                 are too large); emitting it anyway rather than dropping it"
            );
        }
        Mapped::new(&event, json, Mapping::Fallback { code, reason }, over_cap)
    }

    /// The first cut: everything when the estimate fits, else a fair share of the
    /// estimated room for each stream.
    fn first_cut(&self, record: &ExecutionRecord, env: &Envelope, s: &Streams<'_>) -> [usize; 2] {
        let room = self.max_event_bytes.saturating_sub(overhead(record, env));
        let need = [encoded_len(&s.out[0].bytes), encoded_len(&s.out[1].bytes)];
        if need[0] + need[1] <= room {
            return s.full();
        }
        let share = fair_split(need, room);
        [
            prefix_for_encoded(&s.out[0].bytes, share[0]),
            prefix_for_encoded(&s.out[1].bytes, share[1]),
        ]
    }
}

fn input<'a>(
    record: &'a ExecutionRecord,
    env: &'a Envelope,
    s: &'a Streams<'a>,
    keep: [usize; 2],
) -> MapInput<'a> {
    MapInput {
        event_id: &env.id,
        time: &env.time,
        source: &env.source,
        record,
        stdout: s.view(0, keep[0]),
        stderr: s.view(1, keep[1]),
    }
}

fn serialize(event: &Event) -> Result<Vec<u8>, InvalidEvent> {
    serde_json::to_vec(event).map_err(|e| InvalidEvent::Malformed(e.to_string()))
}

/// A last resort that cannot fail to serialize: reached only if the fallback builder
/// itself refused every attempt, which host-built data never triggers.
fn last_resort(env: &Envelope, record: &ExecutionRecord, code: String, reason: String) -> Mapped {
    use cloudevents::{EventBuilder as _, EventBuilderV10};
    let event = EventBuilderV10::new()
        .id(env.id.clone())
        .source(env.source.clone())
        .ty(record.kind().default_type())
        .build()
        .unwrap_or_default();
    let json = serde_json::to_vec(&event).unwrap_or_default();
    Mapped::new(&event, json, Mapping::Fallback { code, reason }, false)
}
