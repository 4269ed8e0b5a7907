//! A decided task: everything [`Runner::decide`](super::Runner::decide) established
//! (the verified manifest, the resolved tool, the sandbox this host will give it), held
//! until [`Runner::launch`](super::Runner::launch) consumes it, and the summary that
//! `run --dry-run` and `verify --armory` print. Holding a `Decision` spends nothing: the
//! nonce is recorded only by `launch`.

use crate::armory::ResolvedTool;
use crate::events::TaskContext;
use crate::manifest::CheckedManifest;
use crate::sandbox::Prepared;
use chrono::SecondsFormat;

/// A task every check passed, ready to launch once.
#[derive(Debug)]
pub struct Decision<'r> {
    pub(super) task: TaskContext,
    pub(super) manifest: CheckedManifest,
    pub(super) tool: ResolvedTool,
    pub(super) sandbox: Prepared<'r>,
}

impl Decision<'_> {
    /// What the runner knows of the task (the event's linkage fields).
    pub fn task(&self) -> &TaskContext {
        &self.task
    }

    /// The verified, checked manifest.
    pub fn manifest(&self) -> &CheckedManifest {
        &self.manifest
    }

    /// The decision as JSON, for people and scripts: which key, which tool, which limits
    /// and sandbox, and that the nonce is still unspent.
    pub fn summary(&self) -> serde_json::Value {
        let m = &self.manifest;
        let task = m.task();
        let limits = m.limits();
        let time =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        serde_json::json!({
            "decision": "accept",
            "kid": m.kid(),
            "alg": m.alg(),
            "task_id": task.task_id,
            "tenant_id": task.tenant_id,
            "tool": {
                "digest": self.tool.digest(),
                "name": self.tool.name(),
                "size": self.tool.size(),
            },
            "issued_at": time(m.issued_at()),
            "expires_at": time(m.expires_at()),
            "limits": {
                "timeout_ms": limits.timeout_ms,
                "memory_bytes": limits.memory_bytes,
                "output_bytes": limits.output_bytes,
            },
            "sandbox": self.sandbox.backend(),
            "nonce": "checked, not recorded (nothing was run)",
        })
    }
}
