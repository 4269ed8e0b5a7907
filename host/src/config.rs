//! The runner's configuration file (TOML): where the key set, armory and state live,
//! which plugins replace the defaults (pinned by sha256), how manifest claims are judged,
//! and the limits applied to plugins, inputs and tasks. Unknown keys are refused naming the key and the file. This module
//! only reads and checks the file; it opens nothing it names.

use crate::plugins::{PinnedFile, PluginLimits};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the configuration is read from when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/edge-runner/config.toml";
/// Environment variable naming the configuration file.
pub const ENV_VAR: &str = "EDGE_RUNNER_CONFIG";
/// Largest configuration file accepted.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read configuration {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("configuration {path} is invalid: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The verification key set (JWKS).
    #[serde(default = "default_keys")]
    pub keys: PathBuf,
    /// The runner's state directory: replay store, plugin cache, event spool.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The tool store (content-addressed blobs and their authorization index), as set in
    /// the file; when absent, `<state_dir>/armory`.
    #[serde(rename = "armory", default, skip_serializing)]
    armory_setting: Option<PathBuf>,
    /// The effective armory path (resolved after parsing; see [`Config::set_state_dir`]).
    #[serde(skip_deserializing)]
    pub armory: PathBuf,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub input: InputConfig,
    /// `[sandbox]`: backend, required protections, identity, view and default limits.
    #[serde(default)]
    pub sandbox: crate::sandbox::SandboxPolicy,
    #[serde(default)]
    pub claims: ClaimsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[events]`: CloudEvents source, size cap, sinks, spool.
    #[serde(default)]
    pub events: crate::events::EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keys: default_keys(),
            state_dir: default_state_dir(),
            armory_setting: None,
            armory: default_armory(),
            plugins: PluginsConfig::default(),
            input: InputConfig::default(),
            sandbox: crate::sandbox::SandboxPolicy::default(),
            claims: ClaimsConfig::default(),
            limits: LimitsConfig::default(),
            events: crate::events::EventsConfig::default(),
        }
    }
}

/// `[plugins]`: limits for every plugin call and the per-algorithm overrides.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Fuel per plugin call.
    #[serde(default = "default_fuel")]
    pub fuel: u64,
    /// Linear memory cap per plugin instance, bytes.
    #[serde(default = "default_plugin_memory")]
    pub memory_bytes: usize,
    /// Keep compiled plugins under `<state_dir>/plugin-cache`.
    #[serde(default = "yes")]
    pub cache: bool,
    /// `[plugins.verifiers.<ALG>]`: a plugin file replacing the default for `ALG`.
    #[serde(default)]
    pub verifiers: BTreeMap<String, PluginFileConfig>,
    /// `[plugins.mapper]`: an event-mapper plugin file replacing the embedded default.
    #[serde(default)]
    pub mapper: Option<PluginFileConfig>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            fuel: default_fuel(),
            memory_bytes: default_plugin_memory(),
            cache: true,
            verifiers: BTreeMap::new(),
            mapper: None,
        }
    }
}

impl PluginsConfig {
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            fuel: self.fuel,
            memory_bytes: self.memory_bytes,
            ..PluginLimits::default()
        }
    }

    pub fn verifier_overrides(&self) -> BTreeMap<String, PinnedFile> {
        self.verifiers
            .iter()
            .map(|(alg, f)| (alg.clone(), f.pinned()))
            .collect()
    }
}

/// A plugin file and its required pin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFileConfig {
    pub path: PathBuf,
    /// `sha256:<64 lowercase hex>` of the file. Required: an unpinned plugin is refused.
    pub sha256: String,
}

impl PluginFileConfig {
    pub fn pinned(&self) -> PinnedFile {
        PinnedFile {
            path: self.path.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

/// `[input]`: caps on the task as received.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    /// Largest compact JWS accepted, bytes.
    #[serde(default = "default_max_jws")]
    pub max_jws_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_jws_bytes: default_max_jws(),
        }
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
}

/// Ceiling on `claims.clock_skew_secs`: a larger skew is a broken clock, not a tolerance.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
/// Ceiling on `claims.max_manifest_age_secs` (one day): signed tasks are meant to be used
/// at once, and every extra second is a second in which a stolen task can still run.
pub const MAX_MANIFEST_AGE_SECS: u64 = 86_400;

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            clock_skew_secs: default_clock_skew(),
            max_manifest_age_secs: default_max_age(),
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

fn yes() -> bool {
    true
}
fn default_fuel() -> u64 {
    PluginLimits::default().fuel
}
fn default_plugin_memory() -> usize {
    PluginLimits::default().memory_bytes
}
fn default_max_jws() -> usize {
    crate::jws::JwsLimits::default().max_bytes
}
fn default_keys() -> PathBuf {
    PathBuf::from("/etc/edge-runner/keys.json")
}

/// `/var/lib/edge-runner/armory` for root, `<default state dir>/armory` otherwise.
pub fn default_armory() -> PathBuf {
    default_state_dir().join("armory")
}

/// `/var/lib/edge-runner` for root; `$XDG_STATE_HOME/edge-runner` (or
/// `~/.local/state/edge-runner`) for other users, who cannot write the former.
pub fn default_state_dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/edge-runner");
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("edge-runner");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/edge-runner"),
        None => PathBuf::from("/var/lib/edge-runner"),
    }
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        // The configuration pins plugins and names the key set: a file others can write
        // is refused, as ssh refuses a loose config. (Only regular files: `/dev/null` or
        // a pipe from process substitution carry no stored state to tamper with.)
        if meta.is_file() {
            crate::fsperm::check_metadata(&meta, path, "configuration").map_err(|e| {
                ConfigError::Invalid {
                    path: path.to_owned(),
                    message: e.to_string(),
                }
            })?;
        }
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!("{} bytes; the limit is {MAX_CONFIG_BYTES}", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.armory = config
            .armory_setting
            .clone()
            .unwrap_or_else(|| config.state_dir.join("armory"));
        config.check(path)?;
        Ok(config)
    }

    /// Re-checks the configuration after command-line overrides were applied.
    pub fn check_effective(&self) -> Result<(), ConfigError> {
        self.check(Path::new("<configuration with command-line overrides>"))
    }

    /// Moves the state directory (a `--state` flag); the armory follows it unless the
    /// configuration names the armory explicitly.
    pub fn set_state_dir(&mut self, dir: PathBuf) {
        if self.armory_setting.is_none() {
            self.armory = dir.join("armory");
        }
        self.state_dir = dir;
    }

    /// Sets the armory explicitly (an `--armory` flag).
    pub fn set_armory(&mut self, dir: PathBuf) {
        self.armory_setting = Some(dir.clone());
        self.armory = dir;
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for (alg, f) in &self.plugins.verifiers {
            if !is_sha256_id(&f.sha256) {
                return Err(invalid(format!(
                    "plugins.verifiers.{alg}.sha256 must be \"sha256:\" followed by 64 \
                     lowercase hex digits (compute it with: sha256sum {})",
                    f.path.display()
                )));
            }
        }
        self.sandbox.check().map_err(invalid)?;
        if let Some(m) = &self.plugins.mapper
            && !is_sha256_id(&m.sha256)
        {
            return Err(invalid(format!(
                "plugins.mapper.sha256 must be \"sha256:\" followed by 64 lowercase hex \
                 digits (compute it with: sha256sum {})",
                m.path.display()
            )));
        }
        self.events.check().map_err(invalid)?;
        if self.plugins.fuel == 0 || self.plugins.memory_bytes < 64 * 1024 {
            return Err(invalid(
                "plugins.fuel must be positive and plugins.memory_bytes at least 65536".into(),
            ));
        }
        let c = &self.claims;
        if c.clock_skew_secs > MAX_CLOCK_SKEW_SECS {
            return Err(invalid(format!(
                "claims.clock_skew_secs is {}; at most {MAX_CLOCK_SKEW_SECS} is accepted (fix \
                 the host clock instead: a larger skew keeps stolen tasks valid longer)",
                c.clock_skew_secs
            )));
        }
        if c.max_manifest_age_secs == 0 || c.max_manifest_age_secs > MAX_MANIFEST_AGE_SECS {
            return Err(invalid(format!(
                "claims.max_manifest_age_secs is {}; it must be between 1 and \
                 {MAX_MANIFEST_AGE_SECS}",
                c.max_manifest_age_secs
            )));
        }
        let l = &self.limits;
        for (name, default, max) in [
            ("timeout_ms", l.default_timeout_ms, l.max_timeout_ms),
            ("memory_bytes", l.default_memory_bytes, l.max_memory_bytes),
            ("output_bytes", l.default_output_bytes, l.max_output_bytes),
        ] {
            if default == 0 || default > max {
                return Err(invalid(format!(
                    "limits.default_{name} is {default}; it must be at least 1 and at most \
                     limits.max_{name} ({max})"
                )));
            }
        }
        let min = crate::sandbox::policy::MIN_MEMORY_BYTES;
        if l.default_memory_bytes < min {
            return Err(invalid(format!(
                "limits.default_memory_bytes is {}; the sandbox needs at least {min}",
                l.default_memory_bytes
            )));
        }
        Ok(())
    }

    /// The sandbox policy completed with the runner's state directory and the secrets every
    /// sandbox masks: the key set, the configuration file (when there is one) and the state
    /// directory (which holds the replay store and the plugin cache).
    pub fn sandbox_policy(&self, config_file: Option<&Path>) -> crate::sandbox::SandboxPolicy {
        // The key set, the configuration, the armory (which may live outside the state
        // directory) and the state directory itself are masked inside the sandbox.
        let mut secrets = vec![self.keys.clone(), self.armory.clone()];
        secrets.extend(config_file.map(Path::to_path_buf));
        // The runner's event signing key: a tool that read it could forge events.
        secrets.extend(self.events.signing.as_ref().map(|s| s.key.clone()));
        let mut policy = self.sandbox.clone().with_runner(&self.state_dir, &secrets);
        policy.limits.timeout_ms = self.limits.default_timeout_ms;
        policy.limits.memory_bytes = self.limits.default_memory_bytes;
        policy.limits.output_bytes = self.limits.default_output_bytes;
        policy
    }

    /// The compile cache directory, if caching is on.
    pub fn plugin_cache_dir(&self) -> Option<PathBuf> {
        self.plugins
            .cache
            .then(|| crate::plugins::cache_dir(&self.state_dir))
    }
}

/// `sha256:` followed by exactly 64 lowercase hex digits.
pub fn is_sha256_id(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The event pipeline's view of the configuration.
impl crate::events::EventsSettings for Config {
    fn events(&self) -> &crate::events::EventsConfig {
        &self.events
    }

    fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn mapper_file(&self) -> Option<crate::plugins::PinnedFile> {
        self.plugins.mapper.as_ref().map(|m| m.pinned())
    }

    fn max_jws_bytes(&self) -> usize {
        self.input.max_jws_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_signing_key_is_masked_in_the_sandbox() {
        // A tool that could read it could sign forged events (issue 15).
        let c = Config::parse(
            "[events.signing]\nkey = \"/etc/edge-runner/event-signing.jwk\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let masked = c.sandbox_policy(None).all_masked_paths();
        assert!(
            masked.contains(&PathBuf::from("/etc/edge-runner/event-signing.jwk")),
            "{masked:?}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_naming_key_and_file() {
        let e = Config::parse("kyes = \"/x\"\n", Path::new("/etc/er.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("kyes") && e.contains("/etc/er.toml"), "{e}");
        let e = Config::parse("[plugins]\nfeul = 1\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("feul"), "{e}");
    }

    #[test]
    fn plugin_pins_are_checked() {
        let e = Config::parse(
            "[plugins.verifiers.ES256]\npath = \"/p.wasm\"\nsha256 = \"abc\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sha256sum"), "{e}");
        let ok = format!(
            "[plugins.verifiers.ES256]\npath = \"/p.wasm\"\nsha256 = \"sha256:{}\"\n",
            "a".repeat(64)
        );
        assert!(Config::parse(&ok, Path::new("c.toml")).is_ok());
        let missing = "[plugins.verifiers.ES256]\npath = \"/p.wasm\"\n";
        assert!(Config::parse(missing, Path::new("c.toml")).is_err());
    }

    #[test]
    fn claims_and_limits_have_hardened_defaults_and_ceilings() {
        let c = Config::parse("", Path::new("c.toml")).unwrap();
        assert_eq!(c.claims.clock_skew_secs, 30);
        assert_eq!(c.claims.max_manifest_age_secs, 600);
        assert!(c.limits.default_timeout_ms <= c.limits.max_timeout_ms);
        assert!(c.armory.ends_with("armory"));
        for bad in [
            "[claims]\nclock_skew_secs = 601\n",
            "[claims]\nmax_manifest_age_secs = 0\n",
            "[claims]\nmax_manifest_age_secs = 86401\n",
            "[limits]\ndefault_timeout_ms = 0\n",
            "[limits]\nmax_memory_bytes = 1\n",
            "[limits]\ndefault_output_bytes = 99999999999\n",
            "[claims]\nskew = 1\n",
            "[limits]\ntimeout_ms = 1\n",
        ] {
            assert!(
                Config::parse(bad, Path::new("c.toml")).is_err(),
                "accepted {bad}"
            );
        }
        let ok = "armory = \"/srv/armory\"\n[claims]\nclock_skew_secs = 0\n\
                  max_manifest_age_secs = 86400\n[limits]\nmax_timeout_ms = 1000\n\
                  default_timeout_ms = 1000\n";
        let c = Config::parse(ok, Path::new("c.toml")).unwrap();
        assert_eq!(c.armory, PathBuf::from("/srv/armory"));
        assert_eq!(c.limits.max_timeout_ms, 1000);
    }

    #[test]
    fn a_configuration_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&p).is_ok());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("chmod go-w"), "{e}");
        // Not a stored file: nothing to tamper with.
        assert!(Config::load(Path::new("/dev/null")).is_ok());
    }

    #[test]
    fn sha256_ids() {
        assert!(is_sha256_id(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_id(&format!("sha512:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "0".repeat(63))));
    }
}
