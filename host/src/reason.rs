//! Stable reason codes and pipeline stages for refusals.
//!
//! A *refusal* (the task is not acceptable: bad signature, unauthorized digest, replayed
//! nonce) is a different kind of outcome from a *failure* (the runner is broken: I/O,
//! configuration, a crashed sandbox setup). Refusals carry one of these codes in events,
//! logs and on stderr; the codes are part of the public interface and never change meaning.
//! This module owns the codes only; it must not decide anything.

use std::fmt;

/// The pipeline stage that refused a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Reading and structurally checking the compact JWS.
    Parse,
    /// Key selection and signature verification through a verifier plugin.
    Signature,
    /// Manifest decoding and claim checks (expiry, age, limits).
    Claims,
    /// Nonce replay protection.
    Replay,
    /// Tool resolution from the armory.
    Armory,
    /// Sandbox policy and launch.
    Sandbox,
}

impl Stage {
    /// The stable lowercase name used in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Signature => "signature",
            Stage::Claims => "claims",
            Stage::Replay => "replay",
            Stage::Armory => "armory",
            Stage::Sandbox => "sandbox",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $stage:ident; )*) => {
        /// A stable, machine-readable reason for a refusal.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason code, for documentation and tests.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable snake_case code.
            pub fn code(self) -> &'static str {
                match self { $( Reason::$variant => $code, )* }
            }

            /// The stage that emits this reason.
            pub fn stage(self) -> Stage {
                match self { $( Reason::$variant => Stage::$stage, )* }
            }
        }
    };
}

reasons! {
    /// The input exceeds the size cap; nothing was parsed.
    JwsTooLarge = "jws_too_large", Parse;
    /// Not a compact JWS: segment count, encoding, or a header that is not a JSON object.
    JwsMalformed = "jws_malformed", Parse;
    /// The protected header breaks a rule: duplicate members, wrong member types, too deep.
    HeaderInvalid = "header_invalid", Parse;
    /// `alg` is `none` (in any casing) or otherwise not acceptable for a signed task.
    AlgForbidden = "alg_forbidden", Parse;
    /// The header lists `crit` extensions this runner does not implement (RFC 7515 4.1.11).
    CritUnsupported = "crit_unsupported", Parse;
    /// The header uses the unencoded-payload option `b64` (RFC 7797), which is not supported.
    B64Unsupported = "b64_unsupported", Parse;
    /// The header carries or points at a key (`jwk`, `jku`, `x5u`, `x5c`); keys come only
    /// from the configured key set (RFC 8725 section 3.10).
    HeaderKeyForbidden = "header_key_forbidden", Parse;
    /// The header has no `kid`; the runner selects keys by id only.
    KidMissing = "kid_missing", Signature;
    /// No configured key has this `kid`.
    KidUnknown = "kid_unknown", Signature;
    /// The header's `alg` differs from the selected key's `alg`; the key decides.
    AlgMismatch = "alg_mismatch", Signature;
    /// The signature bytes are not in the algorithm's encoding (wrong length, DER, r or s
    /// out of range).
    SignatureMalformed = "signature_malformed", Signature;
    /// The signature does not verify with the selected key.
    SignatureInvalid = "signature_invalid", Signature;
    /// The verifier plugin trapped, ran out of fuel or memory, or returned garbage.
    PluginFailed = "plugin_failed", Signature;
    /// The payload is not a valid manifest (types, unknown fields, bounds).
    ManifestInvalid = "manifest_invalid", Claims;
    /// The manifest's `expires_at` has passed.
    ManifestExpired = "manifest_expired", Claims;
    /// The manifest's `issued_at` is in the future beyond the allowed clock skew.
    ManifestNotYetValid = "manifest_not_yet_valid", Claims;
    /// `expires_at - issued_at` exceeds the configured maximum manifest age.
    ManifestLifetimeTooLong = "manifest_lifetime_too_long", Claims;
    /// The manifest sets an environment variable that is not on the runner's allow list
    /// (or is on the deny list no configuration lifts).
    EnvNotAllowed = "env_not_allowed", Claims;
    /// The manifest names no audience (`aud`) and the runner requires one.
    AudienceMissing = "audience_missing", Claims;
    /// The manifest's audience names neither this runner's id nor one of its pools.
    AudienceMismatch = "audience_mismatch", Claims;
    /// The JWS header `typ` does not say "edge-runner task" (RFC 8725 section 3.11).
    TypInvalid = "typ_invalid", Claims;
    /// The task arrived on another tenant's subject than the tenant its manifest names.
    TenantMismatch = "tenant_mismatch", Claims;
    /// A requested limit exceeds the operator's configured maximum.
    LimitsExceeded = "limits_exceeded", Claims;
    /// The (tenant, nonce) pair was already used.
    ReplayedNonce = "replayed_nonce", Replay;
    /// The replay store cannot be read or written; the runner fails closed.
    ReplayStoreUnavailable = "replay_store_unavailable", Replay;
    /// The tool digest is not `sha256:` followed by 64 lowercase hex digits.
    DigestInvalid = "digest_invalid", Armory;
    /// No blob with this digest is in the armory.
    DigestUnknown = "digest_unknown", Armory;
    /// The blob exists but is not authorized, or its authorization was revoked.
    DigestUnauthorized = "digest_unauthorized", Armory;
    /// The stored bytes do not hash to their digest (tampering or corruption).
    DigestMismatch = "digest_mismatch", Armory;
    /// The armory itself cannot be trusted (permissions, ownership, unreadable index).
    ArmoryUntrusted = "armory_untrusted", Armory;
    /// The authorized bytes are not an executable tool (neither ELF nor a `#!` script with an
    /// absolute interpreter path).
    ToolNotExecutable = "tool_not_executable", Armory;
    /// The runner failed to read the armory or copy the tool (I/O); the task did not run.
    ArmoryFailed = "armory_failed", Armory;
    /// The requested sandbox backend is not available on this host.
    SandboxUnavailable = "sandbox_unavailable", Sandbox;
    /// AppArmor is required but not available on this host.
    ApparmorUnavailable = "apparmor_unavailable", Sandbox;
    /// Seccomp is required but cannot be applied on this host.
    SeccompUnavailable = "seccomp_unavailable", Sandbox;
    /// `[sandbox.seccomp_allow]` names a system call this runner does not know, or one the
    /// deny table refuses, or a key that is neither `"*"` nor a tool digest.
    SeccompAllowUnknown = "seccomp_allow_unknown", Sandbox;
    /// Landlock is required but the kernel has none (or its ruleset cannot be built).
    LandlockUnavailable = "landlock_unavailable", Sandbox;
    /// cgroup v2: the runner's cgroup is the root or not delegated to it (systemd
    /// `Delegate=yes`), so no run cgroup is created.
    CgroupNotDelegated = "cgroup_not_delegated", Sandbox;
    /// The sandbox came up with a posture other than the one requested.
    PostureMismatch = "posture_mismatch", Sandbox;
    /// The runner failed to set up or supervise the sandbox (I/O, a crashed setup step);
    /// the task did not run, or its result was lost.
    SandboxFailed = "sandbox_failed", Sandbox;
    // --- issue 14: signed authorization and registry pulls
    /// The authorization statement is malformed: not an edge-runner authorization `typ`
    /// (a task offered as a statement), unknown fields, bad digests, issued in the future.
    AuthorizationInvalid = "authorization_invalid", Armory;
    /// The authorization statement's `aud` names neither this runner nor one of its pools.
    AuthorizationAudienceMismatch = "authorization_audience_mismatch", Armory;
    /// The installed authorization statement has expired: it authorizes nothing.
    AuthorizationExpired = "authorization_expired", Armory;
    /// The offered statement's sequence is not newer than the installed one's.
    AuthorizationRollback = "authorization_rollback", Armory;
    /// Signed authorization is configured and no statement is installed.
    AuthorizationMissing = "authorization_missing", Armory;
    /// A registry served a manifest or layer that does not hash to the digest asked for,
    /// or ended early (truncated); nothing was stored.
    RegistryDigestMismatch = "registry_digest_mismatch", Armory;
    /// A registry answered with a redirect to another origin (scheme, host, port).
    RegistryRedirectRefused = "registry_redirect_refused", Armory;
    /// A tool (added or pulled) is larger than `armory.max_tool_bytes`.
    ToolTooLarge = "tool_too_large", Armory;
    /// The registry could not be reached or answered with an error; the task did not run.
    RegistryFailed = "registry_failed", Armory;
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refused task: which stage said no, the stable reason, and a message a person can act
/// on. The message never contains secret material (key bytes, expected MACs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct Refusal {
    /// The stable reason code.
    pub reason: Reason,
    /// What to do about it, for a person; never secret material.
    pub message: String,
}

impl Refusal {
    /// A refusal with `reason` and a message a person can act on.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The stage that refused.
    pub fn stage(&self) -> Stage {
        self.reason.stage()
    }

    /// True when the runner itself failed (I/O, a crashed setup step): the task was not
    /// judged, and the CLI exits 4 rather than 3.
    pub fn is_runner_failure(&self) -> bool {
        self.reason.is_runner_failure()
    }
}

impl Reason {
    /// The reasons that mean "the runner broke", not "the task is unacceptable".
    pub fn is_runner_failure(self) -> bool {
        matches!(
            self,
            Reason::ArmoryFailed | Reason::SandboxFailed | Reason::RegistryFailed
        )
    }
}

/// The one seam between a stage's own error type and the pipeline: every stage error
/// says which stable reason it stands for, and becomes a [`Refusal`] whose message is its
/// whole cause chain ([`chain`]). With this, a stage is called with a plain `?`.
pub trait Refuse: std::error::Error + Sized {
    /// The stable reason code this error stands for. Errors that are the runner's own
    /// failure map to a runner-failure reason (`armory_failed`, `sandbox_failed`).
    fn reason(&self) -> Reason;

    /// The refusal carried by events and printed by the CLI. Override only when the error
    /// already holds a refusal (its message would otherwise repeat the code).
    fn to_refusal(&self) -> Refusal {
        Refusal::new(self.reason(), chain(self))
    }
}

impl<E: Refuse> From<E> for Refusal {
    fn from(e: E) -> Self {
        e.to_refusal()
    }
}

/// An error and its causes on one line, `outer: cause: root cause`: the one renderer of
/// error chains for events, logs and the CLI.
pub fn chain(e: &(dyn std::error::Error + '_)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        // `#[error(transparent)]` and wrappers that print their source repeat it.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to open the store")]
    struct Outer(#[source] std::io::Error);

    impl Refuse for Outer {
        fn reason(&self) -> Reason {
            Reason::ArmoryFailed
        }
    }

    #[test]
    fn a_stage_error_becomes_a_refusal_with_its_whole_chain() {
        let e = Outer(std::io::Error::other("disk on fire"));
        let r: Refusal = e.into();
        assert_eq!(r.reason, Reason::ArmoryFailed);
        assert_eq!(r.message, "failed to open the store: disk on fire");
        assert!(r.is_runner_failure());
        assert!(!Refusal::new(Reason::ReplayedNonce, "x").is_runner_failure());
    }

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = HashSet::new();
        for r in Reason::ALL {
            let code = r.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{code} is not snake_case"
            );
        }
    }
}
