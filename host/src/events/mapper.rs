//! From record to validated, serialized event: the size budget, the plugin call, the
//! checks, and the fallback. The event size cap is met by cutting stdout/stderr (never the
//! linkage fields): the host cuts the output it hands the mapper to an estimated budget,
//! measures the serialized event, and maps again with a smaller budget while it is too
//! large; a mapper that faults, refuses, returns an invalid event, or cannot get under the
//! cap is replaced by the built-in fallback (`fallback`), flagged and logged. This module
//! delivers nothing.

use super::fallback;
use super::record::{CapturedOutput, Disposition, ExecutionRecord};
use super::validate::{self, Expect, InvalidEvent};
use crate::plugins::mapper::{MapAnswer, MapInput, StreamView};
use crate::plugins::{MapperPlugin, PluginHost};
use cloudevents::Event;

/// Plugin calls per event before the fallback takes over: the estimate, up to two
/// corrections, then no output at all.
const MAX_ATTEMPTS: u32 = 4;
/// Bytes of attribute and member names in a completed event, beyond the values the
/// estimate counts (the default mapping needs about 900).
const FIXED_OVERHEAD: usize = 1536;
/// Extra bytes removed per correction, for base64 rounding and char boundaries.
const SLACK: usize = 16;

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
    Plugin { attempts: u32 },
    /// The built-in fallback; `code` is stable (`mapper_fault`, `mapper_refused`, or an
    /// `InvalidEvent` code), `reason` says what went wrong.
    Fallback { code: String, reason: String },
}

/// A validated event, serialized once.
#[derive(Debug, Clone)]
pub struct Mapped {
    pub event: Event,
    /// The structured-mode JSON (`application/cloudevents+json`), one line.
    pub json: Vec<u8>,
    pub mapping: Mapping,
    /// True only when even the fallback with no output exceeds the cap (linkage fields
    /// alone too large); the event is emitted anyway, never dropped.
    pub over_cap: bool,
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
    out: [&'a CapturedOutput; 2],
    sha256: [String; 2],
}

static EMPTY: CapturedOutput = CapturedOutput {
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
                crate::plugins::sha256_id(&out[0].bytes),
                crate::plugins::sha256_id(&out[1].bytes),
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
            let mapped = match self.host.map_event(&self.plugin, &input) {
                Err(fault) => break ("mapper_fault".to_owned(), fault.to_string()),
                Ok(MapAnswer::Refused(m)) => {
                    break (
                        "mapper_refused".to_owned(),
                        format!("plugin {} refused the record: {m}", self.plugin.name),
                    );
                }
                Ok(MapAnswer::Event(m)) => m,
            };
            let event = match validate::build(mapped, &expect) {
                Ok(e) => e,
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
            match serialize(&event) {
                Ok(json) if json.len() <= self.max_event_bytes => {
                    return Mapped {
                        event,
                        json,
                        mapping: Mapping::Plugin { attempts },
                        over_cap: false,
                    };
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
        Mapped {
            event,
            json,
            mapping: Mapping::Fallback { code, reason },
            over_cap,
        }
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
    Mapped {
        event,
        json,
        mapping: Mapping::Fallback { code, reason },
        over_cap: false,
    }
}

/// An estimate of everything but the output: the values the event repeats, plus names.
fn overhead(record: &ExecutionRecord, env: &Envelope) -> usize {
    let t = &record.task;
    let opt = |v: &Option<String>| v.as_deref().map_or(4, escaped_len);
    let mut n = FIXED_OVERHEAD + env.id.len() * 2 + env.time.len() + env.source.len() + 64;
    // task id and tenant id appear twice (attribute and data).
    n += 2 * opt(&t.task_id) + 2 * opt(&t.tenant_id);
    n += opt(&t.operator_id) + opt(&t.target_urn) + opt(&t.tool_sha256) + opt(&t.action);
    n += opt(&t.manifest_jws) + opt(&t.manifest_sha256);
    match &record.disposition {
        Disposition::Completed(o) => {
            let p = &o.posture;
            n += 2 * 72; // the two digests
            n += [&p.backend, &p.seccomp, &p.apparmor, &p.network]
                .iter()
                .map(|s| escaped_len(s))
                .sum::<usize>();
            n += p
                .namespaces
                .iter()
                .chain(&p.capabilities)
                .map(|s| escaped_len(s) + 3)
                .sum::<usize>();
        }
        Disposition::Denied(d) => n += escaped_len(&d.message),
    }
    n
}

/// Length of `s` inside a JSON string as serde_json writes it: `"` and `\` and the short
/// escapes take 2 bytes, other control characters 6 (`\u00XX`), everything else itself.
fn escaped_len(s: &str) -> usize {
    s.bytes().map(escaped_byte_len).sum()
}

fn escaped_byte_len(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0x00..=0x1f => 6,
        _ => 1,
    }
}

/// Serialized length of an output as the default mapping encodes it: JSON-escaped text
/// when it is UTF-8, else padded base64.
fn encoded_len(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(s) => escaped_len(s),
        Err(_) => bytes.len().div_ceil(3) * 4,
    }
}

/// The longest prefix of `bytes` whose encoding fits `budget` bytes, cut at a character
/// boundary when the bytes are UTF-8 (so text stays text).
fn prefix_for_encoded(bytes: &[u8], budget: usize) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            let mut used = 0;
            for (i, c) in s.char_indices() {
                let mut buf = [0u8; 4];
                let cost: usize = c.encode_utf8(&mut buf).bytes().map(escaped_byte_len).sum();
                if used + cost > budget {
                    return i;
                }
                used += cost;
            }
            bytes.len()
        }
        Err(_) => (budget / 4 * 3).min(bytes.len()),
    }
}

/// Removes at least `excess` (+ slack) raw bytes from the kept output, fairly.
fn shrink(s: &Streams<'_>, keep: [usize; 2], excess: usize) -> [usize; 2] {
    let target = (keep[0] + keep[1]).saturating_sub(excess + SLACK);
    let share = fair_split(keep, target);
    [
        floor_boundary(&s.out[0].bytes, share[0]),
        floor_boundary(&s.out[1].bytes, share[1]),
    ]
}

/// Moves a cut back to a character boundary when the bytes are UTF-8.
fn floor_boundary(bytes: &[u8], at: usize) -> usize {
    let at = at.min(bytes.len());
    match std::str::from_utf8(bytes) {
        Ok(s) => (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0),
        Err(_) => at,
    }
}

/// Splits `budget` between two needs: each gets what it needs when that is under half,
/// the other gets the rest; otherwise half each.
fn fair_split(need: [usize; 2], budget: usize) -> [usize; 2] {
    if need[0] + need[1] <= budget {
        return need;
    }
    let half = budget / 2;
    if need[0] <= half {
        [need[0], budget - need[0]]
    } else if need[1] <= half {
        [budget - need[1], need[1]]
    } else {
        [half, budget - half]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fair_split_gives_small_streams_all_they_need() {
        assert_eq!(fair_split([10, 20], 100), [10, 20]);
        assert_eq!(fair_split([10, 200], 100), [10, 90]);
        assert_eq!(fair_split([200, 10], 100), [90, 10]);
        assert_eq!(fair_split([200, 300], 100), [50, 50]);
    }

    #[test]
    fn cuts_respect_utf8_and_escapes() {
        let text = "aé\"b".as_bytes(); // a(1) é(2 bytes, 1 cost each) "(2) b(1)
        assert_eq!(encoded_len(text), 1 + 2 + 2 + 1);
        assert_eq!(prefix_for_encoded(text, 2), 1); // é would split mid-budget: cut before
        assert_eq!(prefix_for_encoded(text, 3), 3);
        assert_eq!(prefix_for_encoded(text, 4), 3);
        assert_eq!(prefix_for_encoded(text, 5), 4);
        assert_eq!(floor_boundary(text, 2), 1);
        let bin = [0xffu8; 10];
        assert_eq!(encoded_len(&bin), 16);
        assert_eq!(prefix_for_encoded(&bin, 8), 6);
        assert_eq!(floor_boundary(&bin, 7), 7);
    }
}
