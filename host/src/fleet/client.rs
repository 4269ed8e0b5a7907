//! The control plane's side, for operators and tests: publish a signed task to its
//! tenant's subject (`task submit`), and read the event stream (`events tail`). Neither
//! trusts what it handles: a submitted task is verified by the runner that pulls it, and
//! events are printed as the stream holds them.

use super::{FleetConfig, FleetError, js_err};
use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use std::time::Duration;

/// What the server said about a submitted task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The subject it was published on.
    pub subject: String,
    /// Its sequence number in the task stream.
    pub sequence: u64,
    /// True when the server already had it (same `Nats-Msg-Id` within the window).
    pub duplicate: bool,
}

/// Publishes `task` (a compact JWS) on `tenant`'s subject, with the task's digest as
/// `Nats-Msg-Id` (submitting the same task twice within the window stores it once), and
/// waits for the server's acknowledgement.
pub async fn submit(
    fleet: &FleetConfig,
    task: &[u8],
    tenant: &str,
) -> Result<Submitted, FleetError> {
    if !crate::config::is_subject_token(tenant) {
        return Err(FleetError::Config(format!(
            "tenant {:?} cannot be a subject token",
            crate::text::printable(tenant)
        )));
    }
    let client = super::connect(fleet, "edge-runner task submit").await?;
    let js = jetstream::new(client.clone());
    let subject = fleet.task_subject(tenant);
    let mut headers = async_nats::HeaderMap::new();
    let id = crate::digest::sha256_id(task);
    headers.insert("Nats-Msg-Id", id.as_str());
    let ack = js
        .publish_with_headers(subject.clone(), headers, task.to_vec().into())
        .await
        .map_err(|e| js_err(format!("publish on {subject}"))(e.to_string()))?
        .await
        .map_err(|e| {
            js_err(format!(
                "have {subject} stored (is a stream bound to it? `serve` creates it)"
            ))(e.to_string())
        })?;
    let _ = client.flush().await;
    Ok(Submitted {
        subject,
        sequence: ack.sequence,
        duplicate: ack.duplicate,
    })
}

/// The tenant a task names, read from its payload without verifying anything: only to
/// route it (the runner refuses a task published under another tenant's subject).
pub fn tenant_of_task(task: &[u8]) -> Option<String> {
    use base64::Engine as _;
    let text = std::str::from_utf8(task.trim_ascii()).ok()?;
    let payload = text.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    doc.pointer("/task_context/tenant_id")?
        .as_str()
        .map(str::to_owned)
}

/// Reads events from the event stream (all of them, or only `tenant`'s), calling `each`
/// with every event's bytes, until `count` were read or no event came for `idle`.
pub async fn tail(
    fleet: &FleetConfig,
    tenant: Option<&str>,
    count: Option<u64>,
    idle: Duration,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<u64, FleetError> {
    let client = super::connect(fleet, "edge-runner events tail").await?;
    let js = jetstream::new(client);
    let stream = js.get_stream(&fleet.event_stream).await.map_err(|e| {
        js_err(format!("open the event stream {}", fleet.event_stream))(e.to_string())
    })?;
    let filter = match tenant {
        Some(t) => format!("{}.{t}.>", fleet.event_subject_prefix),
        None => format!("{}.>", fleet.event_subject_prefix),
    };
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter,
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| js_err("read the event stream")(e.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| js_err("read the event stream")(e.to_string()))?;
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        match tokio::time::timeout(idle, messages.next()).await {
            Ok(Some(Ok(m))) => {
                each(&m.payload).map_err(|e| js_err("write an event")(e.to_string()))?;
                seen += 1;
            }
            Ok(Some(Err(e))) => return Err(js_err("read the event stream")(e.to_string())),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(seen)
}
