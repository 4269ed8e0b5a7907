//! Why an armory operation failed, and which failures are refusals of a task (with a
//! stable reason code) rather than a broken runner. Describes only; decides nothing.

use crate::fsperm::PermError;
use crate::reason::{Reason, Refuse};
use std::path::PathBuf;

/// A failed armory operation; [`ArmoryError::refusal_reason`] says which ones refuse a task.
#[derive(Debug, thiserror::Error)]
pub enum ArmoryError {
    /// The armory root, or a file in it, failed the ownership and permission checks.
    #[error("failed to trust the armory")]
    Untrusted {
        /// What the check found.
        #[source]
        source: PermError,
    },
    /// The armory root does not exist.
    #[error(
        "failed to open the armory {path}: it does not exist (create it with `edge-runner \
         armory add FILE --armory {path}`)"
    )]
    Missing {
        /// The armory root that was looked for.
        path: PathBuf,
    },
    /// A file operation on the armory store failed.
    #[error("failed to {action} {path} in the armory")]
    Store {
        /// The operation, as a verb phrase (`open the index`, `write`, ...).
        action: &'static str,
        /// The file or directory operated on.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The index file could not be read or decoded.
    #[error("failed to read the armory index {path}: {problem}; restore it from a backup")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The armory has no tool with this digest.
    #[error(
        "failed to resolve {digest}: the armory has no such tool; add it with `edge-runner \
         armory add` and authorize it"
    )]
    Unknown {
        /// The requested digest (`sha256:<hex>`).
        digest: String,
    },
    /// The tool is known but not runnable: not yet authorized, or revoked.
    #[error("failed to resolve {digest}: the tool {state}")]
    Unauthorized {
        /// The requested digest (`sha256:<hex>`).
        digest: String,
        /// Why it is not runnable, as a phrase that follows "the tool".
        state: String,
    },
    /// The stored blob is missing, or does not match its digest or recorded size.
    #[error(
        "failed to resolve {digest}: the stored blob {path} {problem} (tampering or \
         corruption; run `edge-runner armory verify`; `edge-runner armory add` of the genuine file repairs it)"
    )]
    Mismatch {
        /// The digest the blob is stored under.
        digest: String,
        /// The blob's file.
        path: PathBuf,
        /// How it differs.
        problem: String,
    },
    /// The blob's path is not a regular file (a symlink, directory, or other kind).
    #[error(
        "failed to resolve {digest}: {path} is {kind}, not a regular file; the store was \
         tampered with (run `edge-runner armory verify`)"
    )]
    NotABlob {
        /// The digest the blob is stored under.
        digest: String,
        /// The blob's path.
        path: PathBuf,
        /// The kind of file found there.
        kind: &'static str,
    },
    /// A file offered as a tool is not an executable the sandbox can run.
    #[error("failed to accept {what} as a tool: {problem}")]
    NotExecutable {
        /// The file offered.
        what: String,
        /// Why it cannot be a tool.
        problem: &'static str,
    },
    /// The tool was revoked, so it can never be authorized again.
    #[error(
        "failed to authorize {digest}: it was revoked at {at} by {by}, and revocation is \
         permanent; add a rebuilt tool under its new digest instead"
    )]
    Revoked {
        /// The revoked digest.
        digest: String,
        /// When it was revoked (RFC 3339, UTC).
        at: String,
        /// Who revoked it.
        by: String,
    },
    /// A file offered to the armory is over the size cap.
    #[error("failed to add {what}: it is larger than {limit} bytes")]
    TooLarge {
        /// The file offered.
        what: String,
        /// The cap, in bytes.
        limit: u64,
    },
    /// A tool or actor name was refused (empty, over 128 bytes, or with control characters).
    #[error("failed to accept {field} \"{value}\": {problem}")]
    Label {
        /// Which label.
        field: &'static str,
        /// The refused value, made printable.
        value: String,
        /// Why it was refused.
        problem: &'static str,
    },
    /// Creating or filling a tool's private copy for one run failed.
    #[error("failed to {action} {path} for the private copy of a tool")]
    Scratch {
        /// The operation, as a verb phrase.
        action: &'static str,
        /// The file or directory operated on.
        path: PathBuf,
        /// The I/O error.
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
