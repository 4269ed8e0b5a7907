//! Why a sandbox run did not produce an outcome: one error type for the whole sandbox,
//! separating a *refusal* (a required protection is missing, the posture did not come up:
//! the task is refused, exit 3) from the runner's own *failure* (I/O, setup: exit 4). It
//! also holds the two small constructors the backends use to wrap a cause with the step
//! that failed. Nothing here decides anything.

use crate::reason::Refusal;
use nix::errno::Errno;
use std::io;

/// Why a run did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A required protection is not available, or the sandbox came up in another posture.
    #[error(transparent)]
    Refused(Refusal),
    /// The sandbox policy is not valid.
    #[error("the sandbox policy is invalid: {message}")]
    InvalidPolicy {
        /// What is wrong with it.
        message: String,
    },
    /// The launch cannot be set up as given (a NUL byte in an argument, say).
    #[error("the launch is invalid: {message}")]
    InvalidLaunch {
        /// What is wrong with it.
        message: String,
    },
    /// The policy was not given the runner's state directory and secrets.
    #[error(
        "the sandbox policy lacks the runner's state directory and secrets (SandboxPolicy::with_runner)"
    )]
    NoRunnerContext,
    /// The runner failed an I/O step while preparing or supervising the sandbox.
    #[error("failed to {what}")]
    Io {
        /// The step, as it follows "failed to".
        what: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A setup step in the native sandbox's child failed.
    #[error("failed to {step} in the sandbox: {errno}")]
    Child {
        /// The step.
        step: String,
        /// The error number it failed with.
        errno: Errno,
    },
    /// Executing the tool failed.
    #[error("failed to execute the tool: {errno}")]
    Exec {
        /// The error number the tool's exec failed with.
        errno: Errno,
    },
    /// Running the tool under runsc failed.
    #[error("failed to run the tool under runsc: {message}")]
    Runsc {
        /// What went wrong.
        message: String,
    },
}

impl SandboxError {
    /// The refusal, when the task was refused rather than the runner failing.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            SandboxError::Refused(r) => Some(r.clone()),
            _ => None,
        }
    }
}

/// A sandbox refusal keeps its own reason; anything else is the runner's failure to set
/// up or supervise the run.
impl crate::reason::Refuse for SandboxError {
    fn reason(&self) -> crate::reason::Reason {
        match self {
            SandboxError::Refused(r) => r.reason,
            _ => crate::reason::Reason::SandboxFailed,
        }
    }

    fn to_refusal(&self) -> Refusal {
        match self {
            SandboxError::Refused(r) => r.clone(),
            other => Refusal::new(self.reason(), crate::reason::chain(other)),
        }
    }
}

/// `map_err(io_err("create the bundle directory"))`: "failed to create the bundle directory".
pub(crate) fn io_err(what: &str) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        what: what.to_owned(),
        source,
    }
}

/// The same for a raw system call's `Errno`.
pub(crate) fn errno_err(what: &str) -> impl FnOnce(Errno) -> SandboxError + '_ {
    move |e| SandboxError::Io {
        what: what.to_owned(),
        source: e.into(),
    }
}
