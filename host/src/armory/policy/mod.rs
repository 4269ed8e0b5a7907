//! Signed authorization: installing the control plane's authorization statement
//! (`armory policy apply`) and answering, per task, whether the installed one authorizes
//! a digest for a tenant. The statement is stored as the compact JWS it arrived as
//! (`<armory>/authorization.jws`, 0600, replaced atomically under the armory lock) and is
//! verified again, through the same [`SignatureVerifier`] as tasks, whenever a runner
//! reads a version it has not verified yet: whoever can write the armory still cannot
//! authorize anything without the control plane's key. Rollback protection compares
//! sequence numbers with the installed statement. This module must not resolve or run
//! tools.

mod statement;

pub use statement::{
    AUTHORIZATION_TYP, AuthorizedTool, MAX_SEQUENCE, MAX_TOOLS, STATEMENT_VERSION, Statement,
};

use super::{Armory, ArmoryError};
use crate::digest::Digest;
use crate::jws::{self, JwsLimits};
use crate::reason::{Reason, Refusal, Refuse};
use crate::verify::SignatureVerifier;
use chrono::{DateTime, TimeDelta, Utc};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::Mutex;

/// Largest statement accepted, bytes (room for [`MAX_TOOLS`] entries).
pub const MAX_STATEMENT_BYTES: usize = 2 * 1024 * 1024;

/// The file holding the installed statement, under the armory root.
pub const STATEMENT_FILE: &str = "authorization.jws";

/// Why a statement was refused, or why it does not authorize a digest.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Parsing or signature verification refused it (its own reason code).
    #[error("failed to verify the authorization statement: {0}")]
    Signature(Refusal),
    /// The JWS header's `typ` is not the statement type.
    #[error(
        "failed to accept the authorization statement: its header typ is {found}, not \
         \"edge-runner-authorization+jws\"; a task or other signed object is not a statement"
    )]
    Typ {
        /// The `typ` found.
        found: String,
    },
    /// The payload is not a valid statement.
    #[error("failed to accept the authorization statement: {problem}")]
    Invalid {
        /// What is wrong with it.
        problem: String,
    },
    /// The statement is not for this runner.
    #[error(
        "failed to accept the authorization statement: it is for {aud}, and this runner is \
         {runner}; ask the control plane for a statement naming this runner or its pool"
    )]
    Audience {
        /// The audiences it names, comma-separated.
        aud: String,
        /// This runner's names (id and pools), comma-separated.
        runner: String,
    },
    /// The statement has expired.
    #[error(
        "the authorization statement (sequence {sequence}) expired at {expires_at}; install \
         a fresh one from the control plane with `edge-runner armory policy apply`"
    )]
    Expired {
        /// Its sequence number.
        sequence: u64,
        /// Its `expires_at`.
        expires_at: String,
    },
    /// The offered statement is not newer than the installed one.
    #[error(
        "failed to install the authorization statement: its sequence {offered} is not newer \
         than the installed statement's {installed}{same}; an older statement cannot replace \
         a newer one (rollback)"
    )]
    Rollback {
        /// The offered statement's sequence.
        offered: u64,
        /// The installed statement's sequence.
        installed: u64,
        /// A note when the sequences are equal but the contents differ, else empty.
        same: &'static str,
    },
    /// `armory.authorization` is `signed` and no statement is installed.
    #[error(
        "no authorization statement is installed in {armory} and armory.authorization is \
         \"signed\"; install one with `edge-runner armory policy apply FILE.jws`"
    )]
    Missing {
        /// The armory root.
        armory: String,
    },
    /// The installed statement does not list the digest.
    #[error(
        "{digest} is not authorized: the installed authorization statement (sequence \
         {sequence}) does not list it"
    )]
    NotListed {
        /// The digest asked about.
        digest: String,
        /// The statement's sequence.
        sequence: u64,
    },
    /// The statement lists the digest, but not for the task's tenant.
    #[error(
        "{digest} (\"{name}\") is not authorized for tenant \"{tenant}\": the authorization \
         statement (sequence {sequence}) lists it for {tenants} only"
    )]
    Tenant {
        /// The digest asked about.
        digest: String,
        /// The tool's name in the statement.
        name: String,
        /// The task's tenant.
        tenant: String,
        /// The tenants the statement allows, comma-separated.
        tenants: String,
        /// The statement's sequence.
        sequence: u64,
    },
    /// Reading or writing the armory failed.
    #[error(transparent)]
    Armory(#[from] ArmoryError),
}

impl Refuse for PolicyError {
    fn reason(&self) -> Reason {
        match self {
            PolicyError::Signature(r) => r.reason,
            PolicyError::Typ { .. } | PolicyError::Invalid { .. } => Reason::AuthorizationInvalid,
            PolicyError::Audience { .. } => Reason::AuthorizationAudienceMismatch,
            PolicyError::Expired { .. } => Reason::AuthorizationExpired,
            PolicyError::Rollback { .. } => Reason::AuthorizationRollback,
            PolicyError::Missing { .. } => Reason::AuthorizationMissing,
            PolicyError::NotListed { .. } | PolicyError::Tenant { .. } => {
                Reason::DigestUnauthorized
            }
            PolicyError::Armory(e) => e.reason(),
        }
    }

    fn to_refusal(&self) -> Refusal {
        match self {
            PolicyError::Signature(r) => Refusal::new(
                r.reason,
                format!("the authorization statement was refused: {}", r.message),
            ),
            other => Refusal::new(other.reason(), crate::reason::chain(other)),
        }
    }
}

/// Who judges statements: the verifier (key set and plugins), this runner's names, and
/// the clock skew tolerated.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// Verifies the statement's signature.
    pub verifier: &'a SignatureVerifier,
    /// This runner's names (id and pools); a statement must name one of them.
    pub audience: &'a [String],
    /// The clock skew tolerated on `issued_at` and `expires_at`.
    pub skew: TimeDelta,
}

impl Judge<'_> {
    /// Parses, verifies and decodes `compact`, then checks it is for this runner now.
    pub fn judge(&self, compact: &[u8], now: DateTime<Utc>) -> Result<Statement, PolicyError> {
        let parsed = jws::parse(compact.trim_ascii(), &limits()).map_err(PolicyError::Signature)?;
        let verified = self
            .verifier
            .verify(parsed)
            .map_err(PolicyError::Signature)?;
        let statement = statement::from_verified(&verified)?;
        statement.check_for(self.audience, now, self.skew)?;
        Ok(statement)
    }
}

fn limits() -> JwsLimits {
    JwsLimits {
        max_bytes: MAX_STATEMENT_BYTES,
        ..JwsLimits::default()
    }
}

/// What `apply` did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The statement now installed.
    pub statement: Statement,
    /// The sequence of the statement it replaced, if any.
    pub replaced: Option<u64>,
    /// False when exactly this statement was already installed.
    pub changed: bool,
}

impl Armory {
    /// Verifies `compact` and installs it, refusing an older (or equal but different)
    /// sequence than the installed statement's.
    pub fn apply_statement(
        &self,
        compact: &[u8],
        judge: &Judge<'_>,
        now: DateTime<Utc>,
    ) -> Result<Applied, PolicyError> {
        let compact = compact.trim_ascii();
        let statement = judge.judge(compact, now)?;
        let _lock = self.lock()?;
        let installed = self.installed_compact()?;
        let mut replaced = None;
        if let Some(old) = &installed {
            // The installed statement's sequence, read without its signature: its key may
            // have been rotated out since, and a forged higher number only refuses more.
            let old_seq = installed_sequence(old)?;
            if old.as_slice() == compact {
                return Ok(Applied {
                    statement,
                    replaced: Some(old_seq),
                    changed: false,
                });
            }
            if statement.sequence <= old_seq {
                return Err(PolicyError::Rollback {
                    offered: statement.sequence,
                    installed: old_seq,
                    same: if statement.sequence == old_seq {
                        " (the same number with different contents)"
                    } else {
                        ""
                    },
                });
            }
            replaced = Some(old_seq);
        }
        let path = self.layout.root.join(STATEMENT_FILE);
        let mut bytes = compact.to_vec();
        bytes.push(b'\n');
        crate::durable::replace_via(&self.layout.tmp(), &path, &bytes, 0o600).map_err(
            |source| ArmoryError::Store {
                action: "install",
                path: path.clone(),
                source,
            },
        )?;
        Ok(Applied {
            statement,
            replaced,
            changed: true,
        })
    }

    /// The installed statement's compact JWS, if any, read from a trusted descriptor.
    pub fn installed_compact(&self) -> Result<Option<Vec<u8>>, ArmoryError> {
        let path = self.layout.root.join(STATEMENT_FILE);
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ArmoryError::Store {
                    action: "open the authorization statement",
                    path,
                    source,
                });
            }
        };
        let meta = file.metadata().map_err(|source| ArmoryError::Store {
            action: "inspect the authorization statement",
            path: path.clone(),
            source,
        })?;
        crate::fsperm::check_metadata(&meta, &path, "armory authorization statement")
            .map_err(|source| ArmoryError::Untrusted { source })?;
        if !meta.is_file() || meta.len() > MAX_STATEMENT_BYTES as u64 + 1 {
            return Err(ArmoryError::Index {
                path,
                problem: format!(
                    "the authorization statement is not a regular file of at most \
                     {MAX_STATEMENT_BYTES} bytes"
                ),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_STATEMENT_BYTES as u64 + 2)
            .read_to_end(&mut bytes)
            .map_err(|source| ArmoryError::Store {
                action: "read the authorization statement",
                path,
                source,
            })?;
        Ok(Some(bytes.trim_ascii().to_vec()))
    }
}

fn installed_sequence(compact: &[u8]) -> Result<u64, PolicyError> {
    let parsed = jws::parse(compact, &limits()).map_err(|r| PolicyError::Invalid {
        problem: format!(
            "the installed statement cannot be read ({r}); remove {STATEMENT_FILE} from the \
             armory only if you know why it is damaged"
        ),
    })?;
    Ok(statement::decode_payload(&parsed.payload)?.sequence)
}

/// The per-runner view of the installed statement: verified once per version seen (a
/// long-lived `serve` notices a newly applied statement on its next task), checked for
/// expiry on every question.
#[derive(Debug, Default)]
pub struct Gate {
    cached: Mutex<Option<(Vec<u8>, Statement)>>,
}

impl Gate {
    /// The installed statement, verified and checked for this runner at `now`.
    pub fn current(
        &self,
        armory: &Armory,
        judge: &Judge<'_>,
        now: DateTime<Utc>,
    ) -> Result<Statement, PolicyError> {
        let Some(compact) = armory.installed_compact()? else {
            return Err(PolicyError::Missing {
                armory: armory.root().display().to_string(),
            });
        };
        let mut cached = self
            .cached
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((bytes, statement)) = cached.as_ref()
            && *bytes == compact
        {
            statement.check_for(judge.audience, now, judge.skew)?;
            return Ok(statement.clone());
        }
        *cached = None;
        let statement = judge.judge(&compact, now)?;
        *cached = Some((compact, statement.clone()));
        Ok(statement)
    }

    /// Whether the installed statement authorizes `digest` for `tenant` at `now`.
    pub fn authorize(
        &self,
        armory: &Armory,
        judge: &Judge<'_>,
        digest: &Digest,
        tenant: &str,
        now: DateTime<Utc>,
    ) -> Result<(Statement, AuthorizedTool), PolicyError> {
        let statement = self.current(armory, judge, now)?;
        let Some(tool) = statement.tools.get(digest).cloned() else {
            return Err(PolicyError::NotListed {
                digest: digest.to_string(),
                sequence: statement.sequence,
            });
        };
        if let Some(tenants) = &tool.tenants
            && !tenants.iter().any(|t| t == tenant)
        {
            return Err(PolicyError::Tenant {
                digest: digest.to_string(),
                name: tool.name.clone(),
                tenant: crate::text::printable(tenant),
                tenants: tenants.join(", "),
                sequence: statement.sequence,
            });
        }
        Ok((statement, tool))
    }
}

/// The statement as JSON, for `armory policy show`.
pub fn summary(statement: &Statement, now: DateTime<Utc>) -> serde_json::Value {
    let tools: Vec<serde_json::Value> = statement
        .tools
        .iter()
        .map(|(d, t)| {
            serde_json::json!({
                "digest": d.as_str(),
                "name": t.name,
                "tenants": t.tenants,
                "source": t.source,
            })
        })
        .collect();
    serde_json::json!({
        "sequence": statement.sequence,
        "aud": statement.audience,
        "issued_at": statement::stamp(statement.issued_at),
        "expires_at": statement::stamp(statement.expires_at),
        "expired": now >= statement.expires_at,
        "tools": tools,
    })
}

/// A payload about to be signed, decoded as a runner would (`armory policy sign` refuses
/// to sign what no runner would accept).
pub fn decode_payload_for_signing(payload: &[u8]) -> Result<Statement, PolicyError> {
    statement::decode_payload(payload)
}

/// The installed statement's payload, decoded without verifying it (for `policy show`
/// when its signature no longer verifies: the operator still needs to see it).
pub fn decode_unverified(compact: &[u8]) -> Result<Statement, PolicyError> {
    let parsed = jws::parse(compact, &limits()).map_err(PolicyError::Signature)?;
    statement::check_typ(parsed.header.typ.as_deref())?;
    statement::decode_payload(&parsed.payload)
}
