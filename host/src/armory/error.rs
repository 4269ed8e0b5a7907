//! Why an armory operation failed, and which failures are refusals of a task (with a
//! stable reason code) rather than a broken runner. Describes only; decides nothing.

use crate::fsperm::PermError;
use crate::reason::{Reason, Refuse};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ArmoryError {
    #[error("failed to trust the armory")]
    Untrusted {
        #[source]
        source: PermError,
    },
    #[error(
        "failed to open the armory {path}: it does not exist (create it with `edge-runner \
         armory add FILE --armory {path}`)"
    )]
    Missing { path: PathBuf },
    #[error("failed to {action} {path} in the armory")]
    Store {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to read the armory index {path}: {problem}; restore it from a backup")]
    Index { path: PathBuf, problem: String },
    #[error(
        "failed to resolve {digest}: the armory has no such tool; add it with `edge-runner \
         armory add` and authorize it"
    )]
    Unknown { digest: String },
    #[error("failed to resolve {digest}: the tool {state}")]
    Unauthorized { digest: String, state: String },
    #[error(
        "failed to resolve {digest}: the stored blob {path} {problem} (tampering or \
         corruption; run `edge-runner armory verify`; `edge-runner armory add` of the genuine file repairs it)"
    )]
    Mismatch {
        digest: String,
        path: PathBuf,
        problem: String,
    },
    #[error(
        "failed to resolve {digest}: {path} is {kind}, not a regular file; the store was \
         tampered with (run `edge-runner armory verify`)"
    )]
    NotABlob {
        digest: String,
        path: PathBuf,
        kind: &'static str,
    },
    #[error("failed to accept {what} as a tool: {problem}")]
    NotExecutable { what: String, problem: &'static str },
    #[error(
        "failed to authorize {digest}: it was revoked at {at} by {by}, and revocation is \
         permanent; add a rebuilt tool under its new digest instead"
    )]
    Revoked {
        digest: String,
        at: String,
        by: String,
    },
    #[error("failed to add {what}: it is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("failed to accept {field} \"{value}\": {problem}")]
    Label {
        field: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("failed to {action} {path} for the private copy of a tool")]
    Scratch {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ArmoryError {
    /// The stable reason code when this failure refuses a task, `None` when the runner
    /// itself failed (its scratch space) or the operator's input was bad.
    pub fn refusal_reason(&self) -> Option<Reason> {
        match self {
            ArmoryError::Untrusted { .. }
            | ArmoryError::Missing { .. }
            | ArmoryError::Store { .. }
            | ArmoryError::Index { .. }
            | ArmoryError::NotABlob { .. } => Some(Reason::ArmoryUntrusted),
            ArmoryError::Unknown { .. } => Some(Reason::DigestUnknown),
            ArmoryError::Unauthorized { .. } => Some(Reason::DigestUnauthorized),
            ArmoryError::Mismatch { .. } => Some(Reason::DigestMismatch),
            ArmoryError::NotExecutable { .. } => Some(Reason::ToolNotExecutable),
            ArmoryError::Revoked { .. }
            | ArmoryError::TooLarge { .. }
            | ArmoryError::Label { .. }
            | ArmoryError::Scratch { .. } => None,
        }
    }
}

/// During a task, an armory error that is not a refusal is the runner's own failure.
impl Refuse for ArmoryError {
    fn reason(&self) -> Reason {
        self.refusal_reason().unwrap_or(Reason::ArmoryFailed)
    }
}
