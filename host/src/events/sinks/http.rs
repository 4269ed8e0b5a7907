//! The HTTP sink: POSTs each event to a CloudEvents receiver in structured mode
//! (`Content-Type: application/cloudevents+json`, the event JSON as the body), through
//! the write-ahead spool so delivery is at-least-once and in order. 2xx is delivered;
//! 408, 425, 429, 5xx and network errors are transient (retry with capped exponential
//! backoff, honouring `Retry-After`); any other status is a permanent refusal and the
//! event moves to the dead-letter directory. No proxy from the environment, no redirects.
//! `https://` goes through rustls (roots, client certificate and bearer token from
//! `tls`) and is then the only transport the agent will use: a TLS failure spools the
//! event with the reason, never a retry in clear text. This module does not build events.

use super::Delivery;
use super::spool::{Enqueued, Entry, Locked, Spool};
use super::tls::{self, Credentials};
use std::io::Read as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Events delivered from the spool inside one `emit` before the rest is left for the
/// next emit or `events flush`, so one task never waits on a long backlog.
const EMIT_DRAIN_BATCH: usize = 256;
/// Bytes of a refusal's response body kept for the dead-letter reason.
const BODY_EXCERPT: u64 = 512;

pub(crate) struct HttpSink {
    name: String,
    url: String,
    agent: ureq::Agent,
    /// The same agent with the short deadline of a task's own delivery attempt.
    emit_agent: ureq::Agent,
    /// `Authorization` header value (a bearer token), never logged.
    authorization: Option<String>,
    spool: Spool,
}

impl std::fmt::Debug for HttpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

/// How one POST went.
#[derive(Debug)]
enum Post {
    Ok,
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Permanent {
        reason: String,
    },
}

/// What one pass over the spool did.
#[derive(Debug, Default)]
struct Drained {
    delivered: Vec<u64>,
    dead: Vec<(u64, PathBuf, String)>,
    /// Why the pass stopped early (the receiver is unavailable).
    blocked: Option<String>,
    /// Entries still queued after the pass.
    pending: u64,
}

/// The result of `events flush` for one sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// The sink, as `http:<name>`.
    pub sink: String,
    /// Events delivered by this flush.
    pub delivered: u64,
    /// Events given up on: where each was kept, and why.
    pub dead_lettered: Vec<(PathBuf, String)>,
    /// Events still queued afterwards.
    pub pending: u64,
    /// Why events are still pending, if they are.
    pub last_error: Option<String>,
}

impl HttpSink {
    pub(crate) fn new(
        name: &str,
        url: &str,
        timeouts: (Duration, Duration),
        spool: Spool,
        credentials: Credentials,
    ) -> Self {
        let (timeout, emit_timeout) = timeouts;
        // An https:// sink may only ever speak TLS: `https_only` makes ureq refuse a
        // plain connection outright (no redirects are followed either).
        let https = url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        let agent_with = |timeout: Duration| -> ureq::Agent {
            ureq::Agent::config_builder()
                .timeout_global(Some(timeout))
                .http_status_as_error(false)
                .max_redirects(0)
                .proxy(None)
                .https_only(https)
                .tls_config(credentials.tls.clone())
                .user_agent(concat!("edge-runner/", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        };
        let agent = agent_with(timeout);
        let emit_agent = agent_with(emit_timeout.min(timeout));
        Self {
            name: name.to_owned(),
            url: url.to_owned(),
            agent,
            emit_agent,
            authorization: credentials.authorization,
            spool,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Queues the event durably, then delivers the queue head first unless the retry
    /// schedule says the receiver is still resting.
    pub(crate) fn deliver(&self, json: &[u8]) -> Delivery {
        let locked = match self.spool.lock() {
            Ok(l) => l,
            Err(e) => return self.direct(json, &e.to_string()),
        };
        let seq = match locked.enqueue(json) {
            Ok(Enqueued::Queued { seq, .. }) => seq,
            Ok(Enqueued::Full { dead_letter }) => {
                let reason = format!("spool full; event moved to {}", dead_letter.display());
                tracing::error!(sink = %self.name, path = %dead_letter.display(), "event spool is full; event dead-lettered");
                return Delivery::DeadLettered {
                    path: dead_letter,
                    reason,
                };
            }
            Err(e) => {
                drop(locked);
                return self.direct(json, &e.to_string());
            }
        };
        let backoff = locked.backoff();
        if backoff.next_attempt_ms > super::spool::now_ms() {
            let pending = locked.entries().map_or(1, |e| e.len() as u64);
            return Delivery::Spooled {
                pending,
                reason: format!(
                    "receiver unavailable ({} failed attempts); next attempt in {} ms",
                    backoff.failures,
                    backoff.remaining().as_millis()
                ),
            };
        }
        // A task's own attempt has a short deadline: a hung receiver must not hold every
        // `run` for the whole timeout; the event waits in the spool for `events flush`.
        let drained = self.drain(&locked, EMIT_DRAIN_BATCH, &self.emit_agent);
        if drained.delivered.contains(&seq) {
            return Delivery::Delivered;
        }
        if let Some((_, path, reason)) = drained.dead.into_iter().find(|(s, _, _)| *s == seq) {
            return Delivery::DeadLettered { path, reason };
        }
        Delivery::Spooled {
            pending: drained.pending,
            reason: drained
                .blocked
                .unwrap_or_else(|| "queued behind earlier events".to_owned()),
        }
    }

    /// Delivers the whole spool, retrying with backoff until it is empty or `wait` has
    /// passed. The first pass ignores the retry schedule: an operator asked for it.
    pub(crate) fn flush(&self, wait: Duration) -> Result<FlushReport, super::spool::SpoolError> {
        let deadline = Instant::now() + wait;
        let mut report = FlushReport {
            sink: format!("http:{}", self.name),
            ..FlushReport::default()
        };
        loop {
            let locked = self.spool.lock()?;
            let d = self.drain(&locked, usize::MAX, &self.agent);
            report.delivered += d.delivered.len() as u64;
            report
                .dead_lettered
                .extend(d.dead.into_iter().map(|(_, p, r)| (p, r)));
            report.pending = d.pending;
            report.last_error = d.blocked;
            if report.last_error.is_none() {
                return Ok(report);
            }
            let rest = locked.backoff().remaining();
            drop(locked);
            if Instant::now() + rest > deadline {
                return Ok(report);
            }
            std::thread::sleep(rest);
        }
    }

    /// One pass: deliver from the head until the queue is empty, `max` events went, or
    /// the receiver is unavailable.
    fn drain(&self, locked: &Locked<'_>, max: usize, agent: &ureq::Agent) -> Drained {
        let mut d = Drained::default();
        let entries = match locked.entries() {
            Ok(e) => e,
            Err(e) => {
                d.blocked = Some(e.to_string());
                return d;
            }
        };
        let total = entries.len();
        let mut done = 0;
        for entry in entries.iter().take(max) {
            match self.send_entry(entry, agent) {
                Ok(Post::Ok) => {
                    locked.record_success();
                    if let Err(e) = locked.remove(entry) {
                        // It will be delivered again: at-least-once, same id.
                        tracing::error!(error = %e, "failed to remove a delivered event from the spool");
                        d.blocked = Some(e.to_string());
                        break;
                    }
                    d.delivered.push(entry.seq);
                }
                Ok(Post::Permanent { reason }) => match locked.dead_letter(entry, &reason) {
                    Ok(path) => {
                        tracing::error!(sink = %self.name, path = %path.display(), reason = %reason, "receiver refused an event for good; dead-lettered");
                        d.dead.push((entry.seq, path, reason));
                    }
                    Err(e) => {
                        d.blocked = Some(e.to_string());
                        break;
                    }
                },
                Ok(Post::Transient {
                    reason,
                    retry_after,
                }) => {
                    let b = locked.record_failure(retry_after);
                    tracing::warn!(
                        sink = %self.name,
                        reason = %reason,
                        failures = b.failures,
                        retry_in_ms = b.remaining().as_millis() as u64,
                        "event receiver unavailable; events stay spooled"
                    );
                    d.blocked = Some(reason);
                    break;
                }
                Err(e) => {
                    d.blocked = Some(e.to_string());
                    break;
                }
            }
            done += 1;
        }
        d.pending = (total - done) as u64;
        d
    }

    fn send_entry(
        &self,
        entry: &Entry,
        agent: &ureq::Agent,
    ) -> Result<Post, super::spool::SpoolError> {
        let body = std::fs::read(&entry.path).map_err(|source| super::spool::SpoolError::Io {
            action: "read an entry of",
            path: entry.path.clone(),
            source,
        })?;
        Ok(self.post(&body, agent))
    }

    /// Without a spool (it could not be written): one direct attempt, loudly.
    fn direct(&self, json: &[u8], spool_error: &str) -> Delivery {
        tracing::error!(sink = %self.name, error = %spool_error, "failed to spool an event; trying a direct delivery");
        match self.post(json, &self.emit_agent) {
            Post::Ok => Delivery::Delivered,
            Post::Transient { reason, .. } | Post::Permanent { reason } => Delivery::Failed {
                error: format!(
                    "failed to spool the event ({spool_error}) and to deliver it ({reason})"
                ),
            },
        }
    }

    fn post(&self, json: &[u8], agent: &ureq::Agent) -> Post {
        let mut request = agent.post(&self.url).header(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        );
        if let Some(a) = &self.authorization {
            request = request.header("authorization", a);
        }
        let mut response = match request.send(json) {
            Ok(r) => r,
            Err(e) => {
                let reason = tls::explain(&e, &self.url)
                    .unwrap_or_else(|| format!("failed to reach {}: {e}", self.url));
                return Post::Transient {
                    reason,
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Post::Ok;
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        let mut excerpt = Vec::new();
        let _ = response
            .body_mut()
            .as_reader()
            .take(BODY_EXCERPT)
            .read_to_end(&mut excerpt);
        let body = crate::text::printable(&String::from_utf8_lossy(&excerpt));
        let reason = format!("{} answered HTTP {status}: {body}", self.url);
        match status {
            408 | 425 | 429 | 500..=599 => Post::Transient {
                reason,
                retry_after,
            },
            _ => Post::Permanent { reason },
        }
    }
}

/// `Retry-After` (RFC 9110 section 10.2.3): delay-seconds, or an HTTP-date (any of the
/// three formats a recipient must accept, section 5.6.7) turned into the time left until
/// it, which is zero for a date in the past.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_takes_seconds_and_every_http_date_format() {
        // 1994-11-06T08:49:37Z, the RFC's own example, in its three formats.
        let date = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = date - Duration::from_secs(90);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after(v, now), Some(Duration::from_secs(90)), "{v}");
        }
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                date + Duration::from_secs(5)
            ),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after("soon", SystemTime::now()), None);
        assert_eq!(retry_after("-5", SystemTime::now()), None);
        assert_eq!(retry_after("", SystemTime::now()), None);
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX)),
            "huge values are capped by the spool's backoff_max"
        );
    }
}
