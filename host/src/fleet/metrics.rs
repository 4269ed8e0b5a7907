//! What `serve` reports about itself: Prometheus metrics (through `prometheus-client`,
//! never a hand-written exposition) and the `/healthz` verdict, served over a minimal
//! HTTP/1.1 endpoint on the configured local address. Only `GET /healthz` and
//! `GET /metrics` exist; anything else is a 404, and requests are bounded in size and
//! time. This module observes; it decides nothing about tasks.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Labels of a finished task.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// `completed`, `denied` or `failed`.
    pub outcome: String,
    /// The stable reason code of a refusal, `ok` or `tool_failed` for a task that ran.
    pub reason: String,
}

/// Labels of a pipeline stage.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `decide`, `launch`, `publish` or `task` (from receipt to acknowledgement).
    pub stage: String,
}

/// Every metric of one `serve` process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Tasks by outcome and reason code.
    pub tasks: Family<TaskLabels, Counter>,
    /// Stage latency, seconds.
    pub stages: Family<StageLabels, Histogram>,
    /// Tasks running now.
    pub in_flight: Gauge,
    /// Events waiting in the outbox.
    pub outbox_depth: Gauge,
    /// Whether the NATS connection is up (1) or not (0).
    pub connected: Gauge,
    /// Plugin calls that ran out of fuel.
    fuel: Counter,
    fuel_seen: AtomicU64,
    /// Set once the sandbox check passed at start.
    pub sandbox_ok: AtomicBool,
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("edge_runner");
        let tasks = Family::<TaskLabels, Counter>::default();
        registry.register(
            "tasks",
            "Tasks handled, by outcome and reason code",
            tasks.clone(),
        );
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            // 100 us to ~100 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 21))
        });
        registry.register(
            "stage_seconds",
            "Latency of each stage of a task",
            stages.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("tasks_in_flight", "Tasks running now", in_flight.clone());
        let outbox_depth = Gauge::default();
        registry.register(
            "event_outbox_depth",
            "Events waiting in the outbox for JetStream",
            outbox_depth.clone(),
        );
        let connected = Gauge::default();
        registry.register(
            "nats_connected",
            "1 while the NATS connection is up",
            connected.clone(),
        );
        let fuel = Counter::default();
        registry.register(
            "plugin_fuel_exhausted",
            "Plugin calls that ran out of fuel",
            fuel.clone(),
        );
        Self {
            registry,
            tasks,
            stages,
            in_flight,
            outbox_depth,
            connected,
            fuel,
            fuel_seen: AtomicU64::new(0),
            sandbox_ok: AtomicBool::new(false),
        }
    }

    /// Records one stage's duration.
    pub fn stage(&self, stage: &str, d: std::time::Duration) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.to_owned(),
            })
            .observe(d.as_secs_f64());
    }

    /// Counts one finished task.
    pub fn task(&self, outcome: &str, reason: &str) {
        self.tasks
            .get_or_create(&TaskLabels {
                outcome: outcome.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The text exposition (OpenMetrics).
    pub fn encode(&self) -> String {
        let now = crate::plugins::fuel_exhaustions();
        let before = self.fuel_seen.swap(now, Ordering::Relaxed);
        self.fuel.inc_by(now.saturating_sub(before));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `/healthz` and `/metrics` on `listener` until the process ends.
pub async fn serve_http(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut got = 0;
            // The request head, bounded in size and time.
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while got < buf.len() {
                    let n = conn.read(&mut buf[got..]).await?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                    if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                std::io::Result::Ok(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let line = buf[..got].split(|&b| b == b'\r').next().unwrap_or_default();
            let (status, ctype, body) = route(line, &metrics);
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).await;
            let _ = conn.write_all(body.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

fn route(line: &[u8], metrics: &Metrics) -> (&'static str, &'static str, String) {
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next(), parts.next());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics")) => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.encode(),
        ),
        (Some(b"GET"), Some(b"/healthz")) => {
            let nats = metrics.connected.get() == 1;
            let sandbox = metrics.sandbox_ok.load(Ordering::Relaxed);
            let body = serde_json::json!({
                "status": if nats && sandbox { "ok" } else { "unhealthy" },
                "nats": if nats { "connected" } else { "disconnected" },
                "sandbox": if sandbox { "ok" } else { "failed" },
                "in_flight": metrics.in_flight.get(),
                "outbox": metrics.outbox_depth.get(),
            })
            .to_string();
            let status = if nats && sandbox {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            (status, "application/json", body)
        }
        _ => ("404 Not Found", "text/plain", "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_and_health_follows_the_checks() {
        let m = Metrics::new();
        m.task("denied", "audience_mismatch");
        m.stage("decide", std::time::Duration::from_millis(2));
        let text = m.encode();
        for name in [
            "edge_runner_tasks_total{outcome=\"denied\",reason=\"audience_mismatch\"} 1",
            "edge_runner_stage_seconds_bucket",
            "edge_runner_tasks_in_flight",
            "edge_runner_event_outbox_depth",
            "edge_runner_nats_connected",
            "edge_runner_plugin_fuel_exhausted_total",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
        assert_eq!(
            route(b"GET /healthz HTTP/1.1", &m).0,
            "503 Service Unavailable"
        );
        m.connected.set(1);
        m.sandbox_ok.store(true, Ordering::Relaxed);
        assert_eq!(route(b"GET /healthz HTTP/1.1", &m).0, "200 OK");
        assert_eq!(route(b"POST /metrics HTTP/1.1", &m).0, "404 Not Found");
        assert_eq!(route(b"GET /../etc HTTP/1.1", &m).0, "404 Not Found");
    }
}
