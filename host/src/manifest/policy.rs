//! The operator's rules for manifests: the `[claims]` section (how manifest times are
//! judged) and the `[limits]` section (the limits a task gets by default and the most it
//! may ask for), each checked here, and [`ClaimPolicy`], the two sections as `decode`
//! applies them. Every task limit is decided in this module (manifest value, else the
//! default, never above the maximum, never below the sandbox's floor). No I/O.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The smallest memory limit a task can have, the sandbox's floor (below it not even a
/// shell starts). A manifest or a default asking for less is refused before the nonce is
/// spent, not discovered at launch.
pub const MIN_MEMORY_BYTES: u64 = crate::sandbox::policy::MIN_MEMORY_BYTES;

/// What the operator's configuration says about claims, limits and the tool environment:
/// what [`decode`](super::decode) applies.
#[derive(Debug, Clone, Default)]
pub struct ClaimPolicy {
    /// How manifest times are judged.
    pub claims: ClaimsConfig,
    /// Defaults and maxima of the task limits.
    pub limits: LimitsConfig,
    /// Which environment variable names a manifest may set.
    pub env: EnvConfig,
    /// The names this runner answers to in a manifest's `aud`: its id, then its pools.
    /// Empty when checking an unsigned manifest for a signer (who is not the runner).
    pub audience: Vec<String>,
}

impl ClaimPolicy {
    /// The policy of the `[claims]`, `[limits]` and `[env]` sections.
    pub fn new(claims: &ClaimsConfig, limits: &LimitsConfig, env: &EnvConfig) -> Self {
        Self {
            claims: claims.clone(),
            limits: limits.clone(),
            env: env.clone(),
            audience: Vec::new(),
        }
    }

    /// The same policy for a runner answering to `names` (its id and pools).
    pub fn for_audience(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.audience = names.into_iter().collect();
        self
    }
}

/// `[env]`: the environment variable names a manifest may set for its tool, beyond the
/// small default set ([`super::env::DEFAULT_ALLOWED_ENV`]). An allow list, because a deny
/// list cannot win: every interpreter has a variable that runs code (`PYTHONWARNINGS` +
/// `BROWSER`, `LUA_INIT`, `OPENSSL_CONF`, `GIT_SSH_COMMAND`, ...). Names on the built-in
/// deny list stay refused even when listed here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// Names every tool may receive.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `[env.tools."sha256:<hex>"]`: names only the tool with this digest may receive.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolEnv>,
}

/// The names one tool may receive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolEnv {
    /// Names this tool may receive, in addition to `[env] allow`.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl EnvConfig {
    /// Refuses a malformed name, a name on the deny list, and a tool key that is not a
    /// digest, naming the key.
    pub fn check(&self) -> Result<(), String> {
        let names = self
            .allow
            .iter()
            .map(|n| ("env.allow".to_owned(), n))
            .chain(self.tools.iter().flat_map(|(d, t)| {
                t.allow
                    .iter()
                    .map(move |n| (format!("env.tools.\"{d}\".allow"), n))
            }));
        for (key, name) in names {
            if !super::env::valid_name(name) {
                return Err(format!(
                    "{key} lists {:?}, which is not a variable name (letters, digits and _, \
                     not starting with a digit)",
                    crate::text::printable(name)
                ));
            }
            if let Some(why) = super::env::env_denied(name) {
                return Err(format!(
                    "{key} lists {name}, which no manifest may set ({why}); remove it"
                ));
            }
        }
        for digest in self.tools.keys() {
            if crate::digest::Digest::parse(digest).is_err() {
                return Err(format!(
                    "env.tools: {:?} is not a tool digest (sha256: followed by 64 lowercase \
                     hex digits)",
                    crate::text::printable(digest)
                ));
            }
        }
        Ok(())
    }

    /// True when a manifest for `tool` may set `name` (exact, case-sensitive).
    pub fn allows(&self, name: &str, tool: &crate::digest::Digest) -> bool {
        super::env::DEFAULT_ALLOWED_ENV.contains(&name)
            || self.allow.iter().any(|n| n == name)
            || self
                .tools
                .get(tool.as_str())
                .is_some_and(|t| t.allow.iter().any(|n| n == name))
    }
}

/// `[claims]`: how strictly manifest times are judged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    /// Tolerated difference between the signer's clock and this host's, seconds. Applied to
    /// both `issued_at` (not yet valid) and `expires_at` (expired). At most
    /// [`MAX_CLOCK_SKEW_SECS`].
    #[serde(default = "default_clock_skew")]
    pub clock_skew_secs: u64,
    /// Longest accepted manifest lifetime (`expires_at - issued_at`), seconds. Also bounds
    /// how long nonces are remembered. At most [`MAX_MANIFEST_AGE_SECS`].
    #[serde(default = "default_max_age")]
    pub max_manifest_age_secs: u64,
    /// Refuse a task whose manifest names no audience (`aud`) as `audience_missing`. A task
    /// without an audience runs on every runner that trusts its signer, so a captured one
    /// can be replayed across a fleet. Relaxing it is reported by `config check`.
    #[serde(default = "yes")]
    pub require_audience: bool,
    /// Refuse a task whose JWS header `typ` is not [`super::TASK_TYP`] (RFC 8725 section
    /// 3.11, explicit typing: a signed object of another kind, such as an armory statement
    /// signed by the same key, is never taken for a task). Relaxing it is reported by
    /// `config check`.
    #[serde(default = "yes")]
    pub require_typ: bool,
}

fn yes() -> bool {
    true
}

/// Ceiling on `claims.clock_skew_secs`: a larger skew is a broken clock, not a tolerance.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
/// Ceiling on `claims.max_manifest_age_secs` (one day): signed tasks are meant to be used
/// at once, and every extra second is a second in which a stolen task can still run.
pub const MAX_MANIFEST_AGE_SECS: u64 = 86_400;

impl ClaimsConfig {
    /// Refuses values outside the ceilings, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(format!(
                "claims.clock_skew_secs is {}; at most {MAX_CLOCK_SKEW_SECS} is accepted (fix \
                 the host clock instead: a larger skew keeps stolen tasks valid longer)",
                self.clock_skew_secs
            ));
        }
        if self.max_manifest_age_secs == 0 || self.max_manifest_age_secs > MAX_MANIFEST_AGE_SECS {
            return Err(format!(
                "claims.max_manifest_age_secs is {}; it must be between 1 and \
                 {MAX_MANIFEST_AGE_SECS}",
                self.max_manifest_age_secs
            ));
        }
        Ok(())
    }
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            clock_skew_secs: default_clock_skew(),
            max_manifest_age_secs: default_max_age(),
            require_audience: true,
            require_typ: true,
        }
    }
}

/// `[limits]`: the resource limits a task gets when its manifest names none, and the most
/// a manifest may ask for.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Wall-clock timeout when the manifest names none, milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub default_timeout_ms: u64,
    /// Largest `limits.timeout_ms` a manifest may request.
    #[serde(default = "max_timeout_ms")]
    pub max_timeout_ms: u64,
    /// Memory limit when the manifest names none, bytes.
    #[serde(default = "default_memory_bytes")]
    pub default_memory_bytes: u64,
    /// Largest `limits.memory_bytes` a manifest may request.
    #[serde(default = "max_memory_bytes")]
    pub max_memory_bytes: u64,
    /// Bytes kept from each of stdout and stderr (separately) when the manifest names none.
    #[serde(default = "default_output_bytes")]
    pub default_output_bytes: u64,
    /// Largest `limits.output_bytes` a manifest may request.
    #[serde(default = "max_output_bytes")]
    pub max_output_bytes: u64,
}

impl LimitsConfig {
    /// Refuses a default of zero, a default above its maximum, and a default memory limit
    /// below the sandbox's floor, naming the key.
    pub fn check(&self) -> Result<(), String> {
        for (name, default, max) in [
            ("timeout_ms", self.default_timeout_ms, self.max_timeout_ms),
            (
                "memory_bytes",
                self.default_memory_bytes,
                self.max_memory_bytes,
            ),
            (
                "output_bytes",
                self.default_output_bytes,
                self.max_output_bytes,
            ),
        ] {
            if default == 0 || default > max {
                return Err(format!(
                    "limits.default_{name} is {default}; it must be at least 1 and at most \
                     limits.max_{name} ({max})"
                ));
            }
        }
        if self.default_memory_bytes < MIN_MEMORY_BYTES {
            return Err(format!(
                "limits.default_memory_bytes is {}; the sandbox needs at least {MIN_MEMORY_BYTES}",
                self.default_memory_bytes
            ));
        }
        Ok(())
    }

    /// The limits of a task whose manifest names none.
    pub fn defaults(&self) -> super::Limits {
        super::Limits {
            timeout_ms: self.default_timeout_ms,
            memory_bytes: self.default_memory_bytes,
            output_bytes: self.default_output_bytes,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            default_timeout_ms: default_timeout_ms(),
            max_timeout_ms: max_timeout_ms(),
            default_memory_bytes: default_memory_bytes(),
            max_memory_bytes: max_memory_bytes(),
            default_output_bytes: default_output_bytes(),
            max_output_bytes: max_output_bytes(),
        }
    }
}

fn default_clock_skew() -> u64 {
    30
}
fn default_max_age() -> u64 {
    600
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn max_timeout_ms() -> u64 {
    600_000
}
fn default_memory_bytes() -> u64 {
    256 * 1024 * 1024
}
fn max_memory_bytes() -> u64 {
    2 * 1024 * 1024 * 1024
}
fn default_output_bytes() -> u64 {
    1024 * 1024
}
fn max_output_bytes() -> u64 {
    16 * 1024 * 1024
}
