//! The execution record: what the pipeline knows about one task when it is finished or
//! refused. A task that ran carries the sandbox's own [`Outcome`] (one type from the
//! sandbox to the mapper; `events::mapper::wit` converts it to the WIT records). The
//! pipeline builds the record; this module only holds data and the small conversions
//! callers need (a [`Refusal`] becomes a [`Denial`], a received JWS fills the manifest
//! fields). It decides nothing.

use crate::reason::{Reason, Refusal, Stage};
use crate::sandbox::Outcome;

/// One finished or refused task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionRecord {
    /// What is known about the task.
    pub task: TaskContext,
    /// Whether it ran, and with what outcome, or was refused.
    pub disposition: Disposition,
}

/// What is known about the task. Every field is optional because a refusal may come
/// before it could be read (an unparseable JWS has no task id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskContext {
    /// The manifest's `task_context.task_id`.
    pub task_id: Option<String>,
    /// The manifest's `task_context.tenant_id`.
    pub tenant_id: Option<String>,
    /// The manifest's `task_context.operator_id`.
    pub operator_id: Option<String>,
    /// The manifest's `target_urn`.
    pub target_urn: Option<String>,
    /// `sha256:<hex>` of the tool.
    pub tool_sha256: Option<String>,
    /// The manifest's `task_context.action`.
    pub action: Option<String>,
    /// The exact compact JWS received.
    pub manifest_jws: Option<String>,
    /// `sha256:<hex>` of the JWS bytes received.
    pub manifest_sha256: Option<String>,
}

impl TaskContext {
    /// The context known as soon as a task arrives: the JWS (when it is UTF-8, which a
    /// compact JWS always is) and its digest. The bytes are taken as received.
    pub fn received(jws: &[u8]) -> Self {
        Self {
            manifest_jws: std::str::from_utf8(jws).ok().map(str::to_owned),
            manifest_sha256: Some(crate::digest::sha256_id(jws)),
            ..Self::default()
        }
    }
}

/// What happened to the task. One record exists per task, so the size difference
/// between the variants costs nothing worth a box.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Disposition {
    /// The tool ran; its outcome.
    Completed(Outcome),
    /// The task was refused.
    Denied(Denial),
}

/// Why a task was refused: the stable reason (which fixes the stage) and a message a
/// person can act on, never containing secret material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The stable reason code; it fixes the stage.
    pub reason: Reason,
    /// A message a person can act on; never secret material.
    pub message: String,
}

impl Denial {
    pub(crate) fn stage(&self) -> Stage {
        self.reason.stage()
    }
}

impl From<Refusal> for Denial {
    fn from(r: Refusal) -> Self {
        Self {
            reason: r.reason,
            message: r.message,
        }
    }
}

impl ExecutionRecord {
    /// The event kind this record produces.
    pub fn kind(&self) -> EventKind {
        match self.disposition {
            Disposition::Completed(_) => EventKind::Completed,
            Disposition::Denied(_) => EventKind::Denied,
        }
    }

    /// The linkage fields every event must keep, by data member name.
    pub(crate) fn linkage(&self) -> [(&'static str, Option<&str>); 4] {
        let t = &self.task;
        [
            ("task_id", t.task_id.as_deref()),
            ("tenant_id", t.tenant_id.as_deref()),
            ("tool_sha256", t.tool_sha256.as_deref()),
            ("manifest_jws", t.manifest_jws.as_deref()),
        ]
    }
}

/// The two kinds of event the runner emits, whatever the mapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A task that ran (whatever its exit status).
    Completed,
    /// A task that was refused.
    Denied,
}

impl EventKind {
    /// The CloudEvents `type` of the built-in mapping (the default plugin and the
    /// fallback): versioned, reverse-DNS.
    pub fn default_type(self) -> &'static str {
        match self {
            EventKind::Completed => TYPE_COMPLETED,
            EventKind::Denied => TYPE_DENIED,
        }
    }
}

/// `type` of a task that ran (any exit status, signal or timeout).
pub const TYPE_COMPLETED: &str = "dev.edge-runner.task.completed.v1";
/// `type` of a task that was refused at some stage.
pub const TYPE_DENIED: &str = "dev.edge-runner.task.denied.v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_context_keeps_exact_jws_and_digest() {
        let t = TaskContext::received(b"aGk.e30.c2ln");
        assert_eq!(t.manifest_jws.as_deref(), Some("aGk.e30.c2ln"));
        assert_eq!(
            t.manifest_sha256.as_deref(),
            Some(crate::digest::sha256_id(b"aGk.e30.c2ln").as_str())
        );
        assert!(t.task_id.is_none());
        // Not UTF-8: the digest still identifies what was received.
        let t = TaskContext::received(&[0xff, 0x00]);
        assert!(t.manifest_jws.is_none() && t.manifest_sha256.is_some());
    }

    #[test]
    fn refusal_becomes_denial_with_its_stage() {
        let d = Denial::from(Refusal::new(Reason::ReplayedNonce, "seen before"));
        assert_eq!(d.stage(), Stage::Replay);
        assert_eq!(d.reason.code(), "replayed_nonce");
    }
}
