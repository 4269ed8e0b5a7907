//! The fleet-wide replay guard: one JetStream key-value entry per (tenant, nonce), made
//! with an atomic `create` (it fails when the key exists), so of two runners racing on a
//! redelivered or duplicated task exactly one records it and runs it. Keys are never
//! deleted: they expire with the bucket's `max_age`, which is checked to outlive every
//! task that could carry the pair. Anything the guard cannot decide (server unreachable,
//! a timeout) fails closed as `replay_store_unavailable`.
//!
//! The pipeline is synchronous (the sandbox blocks), so the guard bridges into the async
//! client with the runtime's handle; it must be called from a blocking thread
//! (`spawn_blocking`), never from an async task.

use crate::manifest::{CheckedManifest, MAX_CLOCK_SKEW_SECS};
use crate::replay::{ReplayError, ReplayGuard, pair_key};
use async_nats::jetstream::kv::{self, CreateErrorKind};
use chrono::{DateTime, SecondsFormat, Utc};
use std::time::Duration;

/// How long one guard operation may take before it fails closed.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `max_age` the bucket needs so that an entry outlives every task carrying its pair:
/// the longest manifest lifetime, the largest clock skew on both sides, and a minute.
pub fn required_max_age(max_manifest_age_secs: u64) -> Duration {
    Duration::from_secs(max_manifest_age_secs + 2 * MAX_CLOCK_SKEW_SECS + 60)
}

/// The JetStream key-value replay guard.
#[derive(Clone)]
pub struct FleetGuard {
    kv: kv::Store,
    runtime: tokio::runtime::Handle,
    runner_id: String,
}

impl std::fmt::Debug for FleetGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetGuard")
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

impl FleetGuard {
    /// A guard on `kv`, recording `runner_id` with every pair.
    pub fn new(kv: kv::Store, runtime: tokio::runtime::Handle, runner_id: &str) -> Self {
        Self {
            kv,
            runtime,
            runner_id: runner_id.to_owned(),
        }
    }

    fn block_on<F: std::future::Future>(
        &self,
        what: &'static str,
        f: F,
    ) -> Result<F::Output, ReplayError> {
        self.runtime
            .block_on(async { tokio::time::timeout(OP_TIMEOUT, f).await })
            .map_err(|_| ReplayError::Remote {
                what,
                message: format!("no answer within {} s", OP_TIMEOUT.as_secs()),
            })
    }

    fn replayed(&self, manifest: &CheckedManifest, key: &str) -> ReplayError {
        // Who recorded it, for the operator; a missing or unreadable value still refuses.
        let first_seen = self
            .block_on("read a recorded pair", self.kv.get(key))
            .ok()
            .and_then(Result::ok)
            .flatten()
            .and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok())
            .map_or_else(
                || "an unknown time".to_owned(),
                |v| {
                    format!(
                        "{} by runner {}",
                        v["at"].as_str().unwrap_or("an unknown time"),
                        crate::text::printable(v["runner"].as_str().unwrap_or("?"))
                    )
                },
            );
        ReplayError::Replayed {
            tenant: manifest.task().tenant_id.clone(),
            nonce: manifest.nonce().to_owned(),
            first_seen,
        }
    }
}

impl ReplayGuard for FleetGuard {
    fn check(&self, manifest: &CheckedManifest) -> Result<(), ReplayError> {
        let key = pair_key(&manifest.task().tenant_id, manifest.nonce());
        match self.block_on("look up a pair", self.kv.get(&key))? {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(self.replayed(manifest, &key)),
            Err(e) => Err(ReplayError::Remote {
                what: "look up a pair",
                message: e.to_string(),
            }),
        }
    }

    fn check_and_record(
        &self,
        manifest: &CheckedManifest,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        let key = pair_key(&manifest.task().tenant_id, manifest.nonce());
        let value = serde_json::json!({
            "runner": self.runner_id,
            "task_id": manifest.task().task_id,
            "at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        })
        .to_string();
        match self.block_on("record a pair", self.kv.create(&key, value.into()))? {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                Err(self.replayed(manifest, &key))
            }
            Err(e) => Err(ReplayError::Remote {
                what: "record a pair",
                message: e.to_string(),
            }),
        }
    }
}
