//! Why a manifest was refused: one variant per kind of refusal, each naming the field, and
//! the mapping to stable reason codes. This module only describes refusals; it must not
//! decide them.

use crate::digest::DigestError;
use crate::json::JsonError;
use crate::reason::{Reason, Refuse};

/// A refused manifest. Every variant names the field it is about, with nested fields
/// written as `task_context.tenant_id`, `env.LD_PRELOAD` or `args[3]`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The payload is not strict JSON.
    #[error("failed to parse the manifest as strict JSON")]
    Json {
        /// What the strict parser refused.
        #[source]
        source: JsonError,
    },
    /// The payload is not a JSON object.
    #[error("failed to decode the manifest: the payload is not a JSON object")]
    NotObject,
    /// A required field is missing.
    #[error("failed to decode the manifest: required field \"{field}\" is missing")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("failed to decode the manifest: field \"{field}\" must be {expected}")]
    Type {
        /// The field.
        field: String,
        /// The type it must have, as a phrase (`a string`, ...).
        expected: &'static str,
    },
    /// The manifest has a field version 1 does not define.
    #[error(
        "failed to decode the manifest: unknown field \"{field}\" (manifest version 1 does \
         not define it; see `edge-runner manifest schema`)"
    )]
    Unknown {
        /// The field.
        field: String,
    },
    /// A field's value breaks its rule.
    #[error("failed to decode the manifest: field \"{field}\" {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong, as a phrase that follows the field's name.
        problem: String,
    },
    /// `manifest_version` is not `1`.
    #[error(
        "failed to decode the manifest: manifest_version \"{found}\" is not supported; this \
         runner reads version \"1\""
    )]
    Version {
        /// The version found.
        found: String,
    },
    /// `env` sets a variable on the denylist.
    #[error(
        "failed to decode the manifest: field \"env.{name}\" sets a refused environment \
         variable ({why}); remove it from the manifest"
    )]
    EnvForbidden {
        /// The variable's name.
        name: String,
        /// Why it is denied.
        why: &'static str,
    },
    /// The task has no `aud`, and the policy requires one.
    #[error(
        "the task names no audience (\"aud\"): it would run on every runner that trusts its \
         signer; sign it for this runner's id or pool (manifest sign --aud), or relax \
         claims.require_audience"
    )]
    AudienceMissing,
    /// `aud` names neither this runner's id nor one of its pools.
    #[error(
        "the task is for {aud}, not for this runner ({runner}); it must be sent to a runner \
         it names"
    )]
    AudienceMismatch {
        /// The audiences the task names, comma-separated.
        aud: String,
        /// This runner's id and pools, comma-separated.
        runner: String,
    },
    /// The JWS header's `typ` is not the task type (or names an authorization statement).
    #[error(
        "the JWS header typ is {found}, not \"edge-runner-task+jws\" (RFC 8725 section \
         3.11): this is not a task; sign tasks with `edge-runner manifest sign`, or relax \
         claims.require_typ"
    )]
    TypInvalid {
        /// The `typ` found, quoted, with a note when it is a statement's.
        found: String,
    },
    /// `env` sets a variable the runner's allow list does not name.
    #[error(
        "failed to decode the manifest: field \"env.{name}\" is not on this runner's allow \
         list of tool environment variables; remove it from the manifest, or have the \
         operator allow it ([env] allow, or [env.tools.\"<digest>\"] allow for one tool)"
    )]
    EnvNotAllowed {
        /// The variable's name.
        name: String,
    },
    /// `tool_sha256` is not a valid digest.
    #[error("failed to decode the manifest: field \"tool_sha256\" is not a valid digest")]
    Digest {
        /// What is wrong with it.
        #[source]
        source: DigestError,
    },
    /// A limit asks for more than the runner's maximum.
    #[error(
        "field \"limits.{name}\" asks for {requested}, above this runner's maximum of {max} \
         (limits.max_{name} in its configuration); ask for less"
    )]
    LimitExceeded {
        /// The limit, without the `limits.` prefix.
        name: &'static str,
        /// The value asked for, in the limit's unit.
        requested: u64,
        /// The runner's maximum, in the same unit.
        max: u64,
    },
    /// A limit asks for less than the sandbox's minimum.
    #[error(
        "limits.{name} asks for {requested}, below the sandbox's minimum of {min}; ask for \
         at least that much (or leave it out to get the runner's default)"
    )]
    LimitTooSmall {
        /// The limit, without the `limits.` prefix.
        name: &'static str,
        /// The value asked for, in the limit's unit.
        requested: u64,
        /// The minimum, in the same unit.
        min: u64,
    },
    /// The task has expired.
    #[error(
        "the manifest expired at {expires_at} (now {now}, clock skew allowance {skew_secs} s); \
         request a freshly signed task"
    )]
    Expired {
        /// The task's `expires_at`.
        expires_at: String,
        /// The checking time.
        now: String,
        /// The clock skew allowed, in seconds.
        skew_secs: u64,
    },
    /// The task's `issued_at` is in the future, beyond the allowed skew.
    #[error(
        "the manifest is not valid before {issued_at} (now {now}, clock skew allowance \
         {skew_secs} s); check the clocks of the signer and of this host"
    )]
    NotYetValid {
        /// The task's `issued_at`.
        issued_at: String,
        /// The checking time.
        now: String,
        /// The clock skew allowed, in seconds.
        skew_secs: u64,
    },
    /// `expires_at` is further after `issued_at` than the runner accepts.
    #[error(
        "the manifest is valid for {lifetime_secs} s (issued_at to expires_at); this runner \
         accepts at most {max_secs} s (claims.max_manifest_age_secs); sign a shorter-lived task"
    )]
    LifetimeTooLong {
        /// The task's lifetime, in seconds.
        lifetime_secs: i64,
        /// The longest accepted, in seconds (`claims.max_manifest_age_secs`).
        max_secs: u64,
    },
}

impl ManifestError {
    /// The stable reason code for this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            ManifestError::Json { .. }
            | ManifestError::NotObject
            | ManifestError::Missing { .. }
            | ManifestError::Type { .. }
            | ManifestError::Unknown { .. }
            | ManifestError::Invalid { .. }
            | ManifestError::Version { .. }
            | ManifestError::LimitTooSmall { .. } => Reason::ManifestInvalid,
            ManifestError::EnvForbidden { .. } | ManifestError::EnvNotAllowed { .. } => {
                Reason::EnvNotAllowed
            }
            ManifestError::Digest { .. } => Reason::DigestInvalid,
            ManifestError::LimitExceeded { .. } => Reason::LimitsExceeded,
            ManifestError::Expired { .. } => Reason::ManifestExpired,
            ManifestError::AudienceMissing => Reason::AudienceMissing,
            ManifestError::AudienceMismatch { .. } => Reason::AudienceMismatch,
            ManifestError::TypInvalid { .. } => Reason::TypInvalid,
            ManifestError::NotYetValid { .. } => Reason::ManifestNotYetValid,
            ManifestError::LifetimeTooLong { .. } => Reason::ManifestLifetimeTooLong,
        }
    }

    /// The field the refusal is about, when there is one (`limits.timeout_ms`, `nonce`).
    pub fn field(&self) -> Option<String> {
        match self {
            ManifestError::Missing { field } => Some((*field).to_owned()),
            ManifestError::Type { field, .. }
            | ManifestError::Unknown { field }
            | ManifestError::Invalid { field, .. } => Some(field.clone()),
            ManifestError::Version { .. } => Some("manifest_version".into()),
            ManifestError::EnvForbidden { name, .. } | ManifestError::EnvNotAllowed { name } => {
                Some(format!("env.{name}"))
            }
            ManifestError::Digest { .. } => Some("tool_sha256".into()),
            ManifestError::LimitExceeded { name, .. }
            | ManifestError::LimitTooSmall { name, .. } => Some(format!("limits.{name}")),
            ManifestError::Expired { .. } => Some("expires_at".into()),
            ManifestError::NotYetValid { .. } => Some("issued_at".into()),
            ManifestError::LifetimeTooLong { .. } => Some("expires_at".into()),
            ManifestError::AudienceMissing | ManifestError::AudienceMismatch { .. } => {
                Some("aud".into())
            }
            ManifestError::Json { .. }
            | ManifestError::NotObject
            | ManifestError::TypInvalid { .. } => None,
        }
    }
}

impl Refuse for ManifestError {
    fn reason(&self) -> Reason {
        ManifestError::reason(self)
    }
}
