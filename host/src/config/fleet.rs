//! The `[fleet]` section: where a `serve` runner pulls tasks from and publishes events to
//! (a NATS JetStream server), which tenants it serves, how many tasks it runs at once,
//! and where its health endpoint listens. Checked here; used by `fleet`, which sits above
//! the pipeline (so the section lives with the configuration, not with `fleet`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[fleet]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The NATS server (`nats://host:port`, or `tls://` for TLS).
    #[serde(default = "default_url")]
    pub nats_url: String,
    /// A CA certificate (PEM) for a `tls://` server, instead of the system roots.
    #[serde(default)]
    pub nats_ca_file: Option<PathBuf>,
    /// The tenants this runner serves: it pulls `<task_subject_prefix>.<tenant>` for each.
    #[serde(default)]
    pub tenants: Vec<String>,
    /// The JetStream stream holding tasks (work-queue retention: a task is removed once
    /// a runner acknowledged it).
    #[serde(default = "default_task_stream")]
    pub task_stream: String,
    /// Task subjects are `<task_subject_prefix>.<tenant>`.
    #[serde(default = "default_task_prefix")]
    pub task_subject_prefix: String,
    /// The JetStream stream events are published to (deduplicated on the event id).
    #[serde(default = "default_event_stream")]
    pub event_stream: String,
    /// Event subjects are `<event_subject_prefix>.<tenant>.<event type>`.
    #[serde(default = "default_event_prefix")]
    pub event_subject_prefix: String,
    /// The key-value bucket of the fleet-wide replay guard.
    #[serde(default = "default_bucket")]
    pub replay_bucket: String,
    /// Durable consumer name prefix; the consumer of a tenant is `<consumer>-<tenant>`,
    /// shared by every runner serving that tenant.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Create the streams, consumers and bucket when missing (off: they must exist).
    #[serde(default = "yes")]
    pub create: bool,
    /// Tasks run at once [default: the number of CPUs].
    #[serde(default)]
    pub concurrency: usize,
    /// How long the server waits for an acknowledgement before redelivering, seconds. A
    /// runner tells the server it is still working at a third of this.
    #[serde(default = "default_ack_wait")]
    pub ack_wait_secs: u64,
    /// Deliveries of one task before the server gives up on it.
    #[serde(default = "default_max_deliver")]
    pub max_deliver: i64,
    /// On SIGTERM, how long running tasks may take to finish before the runner exits.
    #[serde(default = "default_drain")]
    pub drain_grace_secs: u64,
    /// `host:port` of the health and metrics endpoint (`/healthz`, `/metrics`); off when
    /// absent. Keep it on loopback or a management network.
    #[serde(default)]
    pub health_addr: Option<String>,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            nats_url: default_url(),
            nats_ca_file: None,
            tenants: Vec::new(),
            task_stream: default_task_stream(),
            task_subject_prefix: default_task_prefix(),
            event_stream: default_event_stream(),
            event_subject_prefix: default_event_prefix(),
            replay_bucket: default_bucket(),
            consumer: default_consumer(),
            create: true,
            concurrency: 0,
            ack_wait_secs: default_ack_wait(),
            max_deliver: default_max_deliver(),
            drain_grace_secs: default_drain(),
            health_addr: None,
        }
    }
}

fn default_url() -> String {
    "nats://127.0.0.1:4222".into()
}
fn default_task_stream() -> String {
    "EDGE_RUNNER_TASKS".into()
}
fn default_task_prefix() -> String {
    "tasks".into()
}
fn default_event_stream() -> String {
    "EDGE_RUNNER_EVENTS".into()
}
fn default_event_prefix() -> String {
    "events".into()
}
fn default_bucket() -> String {
    "edge-runner-replay".into()
}
fn default_consumer() -> String {
    "edge-runner".into()
}
fn default_ack_wait() -> u64 {
    60
}
fn default_max_deliver() -> i64 {
    10
}
fn default_drain() -> u64 {
    30
}
fn yes() -> bool {
    true
}

/// One subject token: what a tenant name or a prefix token may be (no `.`, `*`, `>` or
/// whitespace, which NATS gives meaning to).
pub fn is_subject_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'@'))
}

/// A stream, consumer or bucket name.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

impl FleetConfig {
    /// Refuses what would make subjects ambiguous or the runner unable to work, naming
    /// the key.
    pub fn check(&self) -> Result<(), String> {
        if !(self.nats_url.starts_with("nats://") || self.nats_url.starts_with("tls://")) {
            return Err(format!(
                "fleet.nats_url {:?} must start with nats:// or tls://",
                crate::text::printable(&self.nats_url)
            ));
        }
        for t in &self.tenants {
            if !is_subject_token(t) {
                return Err(format!(
                    "fleet.tenants: {:?} cannot be a subject token (letters, digits, _ - : @; \
                     no dots)",
                    crate::text::printable(t)
                ));
            }
        }
        for (key, v) in [
            ("fleet.task_subject_prefix", &self.task_subject_prefix),
            ("fleet.event_subject_prefix", &self.event_subject_prefix),
        ] {
            if !is_subject_token(v) {
                return Err(format!("{key} {v:?} must be one subject token (no dots)"));
            }
        }
        for (key, v) in [
            ("fleet.task_stream", &self.task_stream),
            ("fleet.event_stream", &self.event_stream),
            ("fleet.replay_bucket", &self.replay_bucket),
            ("fleet.consumer", &self.consumer),
        ] {
            if !is_name(v) {
                return Err(format!(
                    "{key} {v:?} must be 1 to 64 letters, digits, _ or -"
                ));
            }
        }
        if self.ack_wait_secs < 3 || self.max_deliver < 1 || self.drain_grace_secs == 0 {
            return Err(
                "fleet.ack_wait_secs must be at least 3, fleet.max_deliver and \
                 fleet.drain_grace_secs at least 1"
                    .into(),
            );
        }
        if let Some(addr) = &self.health_addr
            && addr.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!(
                "fleet.health_addr {addr:?} is not host:port (for example 127.0.0.1:9465)"
            ));
        }
        Ok(())
    }

    /// Tasks run at once: the configured number, or one per CPU.
    pub fn concurrency(&self) -> usize {
        if self.concurrency > 0 {
            return self.concurrency;
        }
        std::thread::available_parallelism().map_or(2, |n| n.get())
    }

    /// The subject a tenant's tasks arrive on.
    pub fn task_subject(&self, tenant: &str) -> String {
        format!("{}.{tenant}", self.task_subject_prefix)
    }

    /// The subject an event of `event_type` for `tenant` is published on.
    pub fn event_subject(&self, tenant: &str, event_type: &str) -> String {
        format!("{}.{tenant}.{event_type}", self.event_subject_prefix)
    }

    /// The tenant a task subject names, when it is one of this prefix.
    pub fn tenant_of<'s>(&self, subject: &'s str) -> Option<&'s str> {
        subject
            .strip_prefix(self.task_subject_prefix.as_str())?
            .strip_prefix('.')
            .filter(|t| is_subject_token(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_built_from_single_tokens() {
        let c = FleetConfig {
            tenants: vec!["acme".into()],
            ..FleetConfig::default()
        };
        assert!(c.check().is_ok());
        assert_eq!(c.task_subject("acme"), "tasks.acme");
        assert_eq!(c.tenant_of("tasks.acme"), Some("acme"));
        assert_eq!(c.tenant_of("tasks.acme.x"), None);
        assert_eq!(c.tenant_of("other.acme"), None);
        assert_eq!(
            c.event_subject("acme", "dev.edge-runner.task.completed.v1"),
            "events.acme.dev.edge-runner.task.completed.v1"
        );
        for bad in ["a.b", "*", ">", "", "a b"] {
            let c = FleetConfig {
                tenants: vec![bad.into()],
                ..FleetConfig::default()
            };
            assert!(c.check().is_err(), "{bad:?} accepted");
        }
        let c = FleetConfig {
            nats_url: "http://x".into(),
            ..FleetConfig::default()
        };
        assert!(c.check().is_err());
    }
}
