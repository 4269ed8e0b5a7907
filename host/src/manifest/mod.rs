//! The execution manifest (version 1), the payload of a signed task: decoding, field
//! rules and claim checks (version, expiry, age, limits), ending in a [`CheckedManifest`].
//!
//! A `CheckedManifest` is built only from a [`VerifiedJws`], so no unverified payload can
//! reach a later stage. Decoding is strict: duplicate members and unknown fields are
//! refused, and every refusal names its field. This module does no I/O and no
//! cryptography; the time is an argument.

pub mod env;
mod error;
pub mod fields;
mod policy;
mod schema;

pub use error::ManifestError;
pub use policy::{
    ClaimPolicy, ClaimsConfig, EnvConfig, LimitsConfig, MAX_CLOCK_SKEW_SECS, MAX_MANIFEST_AGE_SECS,
    MIN_MEMORY_BYTES, ToolEnv,
};
pub use schema::schema;

use crate::digest::Digest;
use crate::json;
use crate::text::printable;
use crate::verify::VerifiedJws;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Map, Value};

/// The only manifest version this runner reads.
pub const VERSION: &str = "1";
/// The JWS `typ` of a task (RFC 8725 section 3.11), also accepted with the `application/`
/// prefix (RFC 7515 section 4.1.9), compared ignoring ASCII case.
pub const TASK_TYP: &str = "edge-runner-task+jws";
/// Most names in a manifest's `aud`.
pub const MAX_AUDIENCE: usize = 16;
/// Nesting cap for the manifest document (the top object is level 1; `parameters` gets
/// the rest).
pub const MAX_DEPTH: usize = 16;

const TOP_FIELDS: &[&str] = &[
    "manifest_version",
    "aud",
    "task_context",
    "target_urn",
    "tool_sha256",
    "args",
    "env",
    "parameters",
    "nonce",
    "issued_at",
    "expires_at",
    "limits",
];
const CONTEXT_FIELDS: &[&str] = &["task_id", "tenant_id", "operator_id", "source", "action"];
const LIMIT_FIELDS: &[&str] = &["timeout_ms", "memory_bytes", "output_bytes"];

/// Who asked for the task and why (`task_context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// The caller's id for the task.
    pub task_id: String,
    /// The tenant the task runs for; nonces are unique per tenant.
    pub tenant_id: String,
    /// Who asked for the task, when given.
    pub operator_id: Option<String>,
    pub(crate) source: Option<String>,
    /// The action the task performs, when given.
    pub action: Option<String>,
}

/// The resource limits in force for the task: the manifest's, or the configured
/// defaults, never above the configured maxima.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock limit, in milliseconds.
    pub timeout_ms: u64,
    pub(crate) memory_bytes: u64,
    pub(crate) output_bytes: u64,
}

/// A manifest whose signature verified and whose fields and claims passed every check at
/// the time given to [`decode`].
#[derive(Debug, Clone)]
pub struct CheckedManifest {
    kid: String,
    alg: String,
    task: TaskContext,
    target_urn: Option<String>,
    tool: Digest,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The exact JSON text of `parameters` as signed.
    parameters: Option<String>,
    nonce: String,
    /// `aud`, when present: the runners and pools the task is for.
    audience: Option<Vec<String>>,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    limits: Limits,
}

impl CheckedManifest {
    /// The id of the key that signed the task.
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The algorithm it was signed with (the key's).
    pub fn alg(&self) -> &str {
        &self.alg
    }
    /// Who asked for the task and why.
    pub fn task(&self) -> &TaskContext {
        &self.task
    }
    pub(crate) fn target_urn(&self) -> Option<&str> {
        self.target_urn.as_deref()
    }
    /// The tool, by digest.
    pub fn tool(&self) -> &Digest {
        &self.tool
    }
    /// The tool's arguments, in order.
    pub fn args(&self) -> &[String] {
        &self.args
    }
    /// Extra environment variables, none of them on the denylist.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }
    /// The exact JSON text of `parameters`, byte for byte as it was signed.
    pub fn parameters(&self) -> Option<&str> {
        self.parameters.as_deref()
    }
    /// What the tool reads on stdin: the signed text of `parameters` plus a newline, or
    /// nothing. Never re-serialized: a number such as `12345678901234567890123` or `1E2`
    /// reaches the tool exactly as written (issue 17: re-serializing rounded large integers
    /// to doubles and rewrote exponents, so the tool saw parameters nobody signed).
    pub fn stdin(&self) -> Vec<u8> {
        match &self.parameters {
            Some(p) => {
                let mut v = Vec::with_capacity(p.len() + 1);
                v.extend_from_slice(p.as_bytes());
                v.push(b'\n');
                v
            }
            None => Vec::new(),
        }
    }
    /// The runners and pools named in `aud`, if any.
    pub fn audience(&self) -> Option<&[String]> {
        self.audience.as_deref()
    }
    /// The task's nonce: it runs at most once per tenant and nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    /// When the task was issued (`issued_at`).
    pub fn issued_at(&self) -> DateTime<Utc> {
        self.issued_at
    }
    /// When the task expires (`expires_at`).
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }
    /// The limits in force for the task.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

/// Decodes and checks the verified payload of `jws` against `policy` at time `now`.
pub fn decode(
    jws: &VerifiedJws,
    policy: &ClaimPolicy,
    now: DateTime<Utc>,
) -> Result<CheckedManifest, ManifestError> {
    check_typ(jws.typ(), policy)?;
    let body = check_payload(jws.payload(), policy, now, Reader::Runner)?;
    Ok(CheckedManifest {
        kid: jws.kid().to_owned(),
        alg: jws.alg().to_owned(),
        ..body
    })
}

/// Runs every check [`decode`] runs on a manifest that is not signed yet, so a signer can
/// refuse to sign what a runner with `policy` would refuse at `now` (except the audience
/// match and the header `typ`: the signer is not the runner, and sets the `typ` itself).
/// Returns nothing a later stage could use.
pub fn validate_unsigned(
    payload: &[u8],
    policy: &ClaimPolicy,
    now: DateTime<Utc>,
) -> Result<(), ManifestError> {
    check_payload(payload, policy, now, Reader::Signer).map(|_| ())
}

/// Who checks a manifest: the runner it is for, or a signer about to sign it (who cannot
/// match the audience against itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Runner,
    Signer,
}

/// The checks. Order: shape and fields (manifest_invalid / digest_invalid), then limits,
/// then time claims, so a malformed manifest is reported as such even when it is also
/// expired.
fn check_payload(
    payload: &[u8],
    policy: &ClaimPolicy,
    now: DateTime<Utc>,
    reader: Reader,
) -> Result<CheckedManifest, ManifestError> {
    let doc =
        json::parse_strict(payload, MAX_DEPTH).map_err(|source| ManifestError::Json { source })?;
    let Value::Object(top) = &doc else {
        return Err(ManifestError::NotObject);
    };
    fields::refuse_unknown(top, TOP_FIELDS, "")?;

    let version = fields::as_str(
        fields::require(top, "manifest_version", "manifest_version")?,
        "manifest_version",
    )?;
    if version != VERSION {
        return Err(ManifestError::Version {
            found: crate::text::printable(version),
        });
    }

    let ctx = fields::as_object(
        fields::require(top, "task_context", "task_context")?,
        "task_context",
    )?;
    let task = task_context(ctx)?;
    let target_urn = top
        .get("target_urn")
        .map(|v| fields::urn(v, "target_urn"))
        .transpose()?;
    let tool_text = fields::as_str(
        fields::require(top, "tool_sha256", "tool_sha256")?,
        "tool_sha256",
    )?;
    let tool = Digest::parse(tool_text).map_err(|source| ManifestError::Digest { source })?;
    let args = top
        .get("args")
        .map(fields::args)
        .transpose()?
        .unwrap_or_default();
    let env = top
        .get("env")
        .map(|v| env::env(v, &policy.env, &tool))
        .transpose()?
        .unwrap_or_default();
    let parameters = top
        .contains_key("parameters")
        .then(|| raw_parameters(payload))
        .transpose()?;
    let nonce = fields::nonce(fields::require(top, "nonce", "nonce")?)?;
    let audience = top.get("aud").map(audience).transpose()?;
    match &audience {
        None if policy.claims.require_audience => return Err(ManifestError::AudienceMissing),
        // A runner with no names (an empty policy) matches no audience: never "any".
        Some(aud) if reader == Reader::Runner => check_audience(aud, &policy.audience)?,
        _ => {}
    }
    let issued_at =
        fields::timestamp(fields::require(top, "issued_at", "issued_at")?, "issued_at")?;
    let expires_at = fields::timestamp(
        fields::require(top, "expires_at", "expires_at")?,
        "expires_at",
    )?;
    if expires_at <= issued_at {
        return Err(ManifestError::Invalid {
            field: "expires_at".into(),
            problem: "must be later than issued_at".into(),
        });
    }
    let limits = limits(top.get("limits"), &policy.limits)?;
    check_times(issued_at, expires_at, &policy.claims, now)?;

    Ok(CheckedManifest {
        kid: String::new(),
        alg: String::new(),
        task,
        target_urn,
        tool,
        args,
        env,
        parameters,
        nonce,
        audience,
        issued_at,
        expires_at,
        limits,
    })
}

fn task_context(ctx: &Map<String, Value>) -> Result<TaskContext, ManifestError> {
    fields::refuse_unknown(ctx, CONTEXT_FIELDS, "task_context.")?;
    let optional = |name: &str, field: &str| {
        ctx.get(name)
            .map(|v| fields::identifier(v, field))
            .transpose()
    };
    Ok(TaskContext {
        task_id: fields::identifier(
            fields::require(ctx, "task_context.task_id", "task_id")?,
            "task_context.task_id",
        )?,
        tenant_id: fields::identifier(
            fields::require(ctx, "task_context.tenant_id", "tenant_id")?,
            "task_context.tenant_id",
        )?,
        operator_id: optional("operator_id", "task_context.operator_id")?,
        source: optional("source", "task_context.source")?,
        action: optional("action", "task_context.action")?,
    })
}

/// `aud`: one runner id or pool name, or a list of 1 to [`MAX_AUDIENCE`] of them.
fn audience(v: &Value) -> Result<Vec<String>, ManifestError> {
    let names = match v {
        Value::String(_) => vec![fields::identifier(v, "aud")?],
        Value::Array(items) if !items.is_empty() && items.len() <= MAX_AUDIENCE => items
            .iter()
            .enumerate()
            .map(|(i, item)| fields::identifier(item, &format!("aud[{i}]")))
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ManifestError::Type {
                field: "aud".into(),
                expected: "a runner id or pool name, or a list of 1 to 16 of them",
            });
        }
    };
    Ok(names)
}

/// The task is for this runner when `aud` names its id or one of its pools.
fn check_audience(aud: &[String], runner: &[String]) -> Result<(), ManifestError> {
    if aud.iter().any(|a| runner.iter().any(|r| r == a)) {
        return Ok(());
    }
    Err(ManifestError::AudienceMismatch {
        aud: aud
            .iter()
            .map(|a| printable(a))
            .collect::<Vec<_>>()
            .join(", "),
        runner: if runner.is_empty() {
            "no configured id".into()
        } else {
            runner.join(", ")
        },
    })
}

/// The header `typ` must name an edge-runner task when the policy requires it.
fn check_typ(typ: Option<&str>, policy: &ClaimPolicy) -> Result<(), ManifestError> {
    // A signed authorization statement is never a task, whatever `require_typ` says
    // (issue 14): the two kinds of signed object share the control plane's keys.
    let statement = typ.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case(crate::armory::policy::AUTHORIZATION_TYP)
    });
    if statement {
        return Err(ManifestError::TypInvalid {
            found: format!(
                "\"{}\" (an authorization statement)",
                printable(typ.unwrap_or_default())
            ),
        });
    }
    if !policy.claims.require_typ {
        return Ok(());
    }
    let ok = typ.is_some_and(|t| {
        let t = t.strip_prefix("application/").unwrap_or(t);
        t.eq_ignore_ascii_case(TASK_TYP)
    });
    if ok {
        return Ok(());
    }
    Err(ManifestError::TypInvalid {
        found: typ.map_or_else(|| "none".to_owned(), |t| format!("\"{}\"", printable(t))),
    })
}

/// The signed text of the top-level `parameters` member. The document already passed the
/// strict parser (one value, no duplicate members), so exactly one member matches.
fn raw_parameters(payload: &[u8]) -> Result<String, ManifestError> {
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow)]
        parameters: &'a serde_json::value::RawValue,
    }
    let top: Top<'_> = serde_json::from_slice(payload).map_err(|e| ManifestError::Invalid {
        field: "parameters".into(),
        problem: format!("could not be read back as signed: {e}"),
    })?;
    let text = top.parameters.get();
    if text.len() > fields::MAX_PARAMETERS_BYTES {
        return Err(ManifestError::Invalid {
            field: "parameters".into(),
            problem: format!(
                "is {} bytes as signed; at most {} are accepted",
                text.len(),
                fields::MAX_PARAMETERS_BYTES
            ),
        });
    }
    Ok(text.to_owned())
}

fn limits(v: Option<&Value>, policy: &LimitsConfig) -> Result<Limits, ManifestError> {
    let mut out = policy.defaults();
    let Some(v) = v else {
        return Ok(out);
    };
    let map = fields::as_object(v, "limits")?;
    fields::refuse_unknown(map, LIMIT_FIELDS, "limits.")?;
    let slots: [(&'static str, &mut u64, u64); 3] = [
        ("timeout_ms", &mut out.timeout_ms, policy.max_timeout_ms),
        (
            "memory_bytes",
            &mut out.memory_bytes,
            policy.max_memory_bytes,
        ),
        (
            "output_bytes",
            &mut out.output_bytes,
            policy.max_output_bytes,
        ),
    ];
    for (name, slot, max) in slots {
        let Some(v) = map.get(name) else { continue };
        let requested = fields::positive(v, &format!("limits.{name}"))?;
        // A limit the sandbox cannot honour must be refused here, before the nonce is
        // spent, not discovered at launch.
        if name == "memory_bytes" && requested < MIN_MEMORY_BYTES {
            return Err(ManifestError::LimitTooSmall {
                name,
                requested,
                min: MIN_MEMORY_BYTES,
            });
        }
        if requested > max {
            return Err(ManifestError::LimitExceeded {
                name,
                requested,
                max,
            });
        }
        *slot = requested;
    }
    Ok(out)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Expired when `now >= expires_at + skew` (RFC 7519 section 4.1.4 "on or after"); not yet
/// valid when `issued_at > now + skew`; too long-lived when `expires_at - issued_at`
/// exceeds the configured maximum.
fn check_times(
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    claims: &ClaimsConfig,
    now: DateTime<Utc>,
) -> Result<(), ManifestError> {
    // Clamped to the configuration's ceilings, so no arithmetic below can overflow (RFC 3339
    // years end at 9999; chrono's range is far wider).
    let secs = |s: u64, ceiling: u64| TimeDelta::seconds(s.min(ceiling) as i64);
    let skew = secs(claims.clock_skew_secs, MAX_CLOCK_SKEW_SECS);
    let max = secs(claims.max_manifest_age_secs, MAX_MANIFEST_AGE_SECS);
    let lifetime = expires_at - issued_at;
    if lifetime > max {
        return Err(ManifestError::LifetimeTooLong {
            lifetime_secs: lifetime.num_seconds(),
            max_secs: claims.max_manifest_age_secs,
        });
    }
    if issued_at > now + skew {
        return Err(ManifestError::NotYetValid {
            issued_at: rfc3339(issued_at),
            now: rfc3339(now),
            skew_secs: claims.clock_skew_secs,
        });
    }
    if now >= expires_at + skew {
        return Err(ManifestError::Expired {
            expires_at: rfc3339(expires_at),
            now: rfc3339(now),
            skew_secs: claims.clock_skew_secs,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
