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
    #[error("failed to parse the manifest as strict JSON")]
    Json {
        #[source]
        source: JsonError,
    },
    #[error("failed to decode the manifest: the payload is not a JSON object")]
    NotObject,
    #[error("failed to decode the manifest: required field \"{field}\" is missing")]
    Missing { field: &'static str },
    #[error("failed to decode the manifest: field \"{field}\" must be {expected}")]
    Type {
        field: String,
        expected: &'static str,
    },
    #[error(
        "failed to decode the manifest: unknown field \"{field}\" (manifest version 1 does \
         not define it; see `edge-runner manifest schema`)"
    )]
    Unknown { field: String },
    #[error("failed to decode the manifest: field \"{field}\" {problem}")]
    Invalid { field: String, problem: String },
    #[error(
        "failed to decode the manifest: manifest_version \"{found}\" is not supported; this \
         runner reads version \"1\""
    )]
    Version { found: String },
    #[error(
        "failed to decode the manifest: field \"env.{name}\" sets a refused environment \
         variable ({why}); remove it from the manifest"
    )]
    EnvForbidden { name: String, why: &'static str },
    #[error(
        "the task names no audience (\"aud\"): it would run on every runner that trusts its \
         signer; sign it for this runner's id or pool (manifest sign --aud), or relax \
         claims.require_audience"
    )]
    AudienceMissing,
    #[error(
        "the task is for {aud}, not for this runner ({runner}); it must be sent to a runner \
         it names"
    )]
    AudienceMismatch { aud: String, runner: String },
    #[error(
        "the JWS header typ is {found}, not \"edge-runner-task+jws\" (RFC 8725 section \
         3.11): this is not a task; sign tasks with `edge-runner manifest sign`, or relax \
         claims.require_typ"
    )]
    TypInvalid { found: String },
    #[error(
        "failed to decode the manifest: field \"env.{name}\" is not on this runner's allow \
         list of tool environment variables; remove it from the manifest, or have the \
         operator allow it ([env] allow, or [env.tools.\"<digest>\"] allow for one tool)"
    )]
    EnvNotAllowed { name: String },
    #[error("failed to decode the manifest: field \"tool_sha256\" is not a valid digest")]
    Digest {
        #[source]
        source: DigestError,
    },
    #[error(
        "field \"limits.{name}\" asks for {requested}, above this runner's maximum of {max} \
         (limits.max_{name} in its configuration); ask for less"
    )]
    LimitExceeded {
        name: &'static str,
        requested: u64,
        max: u64,
    },
    #[error(
        "limits.{name} asks for {requested}, below the sandbox's minimum of {min}; ask for \
         at least that much (or leave it out to get the runner's default)"
    )]
    LimitTooSmall {
        name: &'static str,
        requested: u64,
        min: u64,
    },
    #[error(
        "the manifest expired at {expires_at} (now {now}, clock skew allowance {skew_secs} s); \
         request a freshly signed task"
    )]
    Expired {
        expires_at: String,
        now: String,
        skew_secs: u64,
    },
    #[error(
        "the manifest is not valid before {issued_at} (now {now}, clock skew allowance \
         {skew_secs} s); check the clocks of the signer and of this host"
    )]
    NotYetValid {
        issued_at: String,
        now: String,
        skew_secs: u64,
    },
    #[error(
        "the manifest is valid for {lifetime_secs} s (issued_at to expires_at); this runner \
         accepts at most {max_secs} s (claims.max_manifest_age_secs); sign a shorter-lived task"
    )]
    LifetimeTooLong { lifetime_secs: i64, max_secs: u64 },
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
