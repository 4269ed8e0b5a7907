//! The runner's configuration file (TOML): where the key set, armory and state live,
//! which plugins replace the defaults (pinned by sha256), how manifest claims are judged,
//! and the limits applied to plugins, inputs and tasks. Unknown keys are refused naming the key and the file. This module
//! only reads and checks the file; it opens nothing it names.

mod armory;
mod fleet;

pub use armory::{ArmoryConfig, AuthorizationMode, PullConfig};
pub use fleet::{FleetConfig, is_subject_token};

use crate::manifest::{ClaimsConfig, EnvConfig, LimitsConfig};
use crate::plugins::{PinnedFile, PluginLimits, VerifierChoice};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the configuration is read from when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/edge-runner/config.toml";
/// Environment variable naming the configuration file.
pub const ENV_VAR: &str = "EDGE_RUNNER_CONFIG";
/// Largest configuration file accepted.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The configuration file could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read configuration {path}")]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a configuration this runner accepts (untrusted, too large, bad TOML
    /// or a bad value).
    #[error("configuration {path} is invalid: {message}")]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, naming the setting.
        message: String,
    },
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
    #[serde(skip)]
    armory_setting: Option<PathBuf>,
    /// `armory = "PATH"` or `[armory]`: the store, the authorization mode, registry pulls.
    #[serde(rename = "armory", default, deserialize_with = "armory::deserialize")]
    pub armory_settings: ArmoryConfig,
    /// The effective armory path (resolved after parsing; see [`Config::set_state_dir`]).
    #[serde(skip)]
    pub armory: PathBuf,
    /// `[runner]`: who this runner is (the audience tasks must name).
    #[serde(default)]
    pub runner: RunnerConfig,
    /// `[plugins]`: plugin call limits, verifier choices and the mapper plugin.
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// `[input]`: caps on the task as received.
    #[serde(default)]
    pub input: InputConfig,
    /// `[sandbox]`: backend, required protections, identity, view and default limits.
    #[serde(default)]
    pub sandbox: crate::sandbox::SandboxPolicy,
    /// `[claims]`: how manifest times are judged (owned by `manifest`).
    #[serde(default)]
    pub claims: ClaimsConfig,
    /// `[limits]`: task limits, defaults and maxima (owned by `manifest`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// `[env]`: tool environment names manifests may set (owned by `manifest`).
    #[serde(default)]
    pub env: EnvConfig,
    /// `[events]`: CloudEvents source, size cap, sinks, spool.
    #[serde(default)]
    pub events: crate::events::EventsConfig,
    /// `[fleet]`: NATS JetStream for `serve`, `task submit`, `events tail`.
    #[serde(default)]
    pub fleet: FleetConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keys: default_keys(),
            state_dir: default_state_dir(),
            armory_setting: None,
            armory_settings: ArmoryConfig::default(),
            armory: default_armory(),
            runner: RunnerConfig::default(),
            plugins: PluginsConfig::default(),
            input: InputConfig::default(),
            sandbox: crate::sandbox::SandboxPolicy::default(),
            claims: ClaimsConfig::default(),
            limits: LimitsConfig::default(),
            env: EnvConfig::default(),
            events: crate::events::EventsConfig::default(),
            fleet: FleetConfig::default(),
        }
    }
}

/// `[runner]`: this runner's identity. A task runs only where its manifest's `aud` names
/// the runner's `id` or one of its `pools` (see `claims.require_audience`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerConfig {
    /// The runner's id [default: the host name].
    #[serde(default = "default_runner_id")]
    pub id: String,
    /// Pools (fleets) this runner serves: a task for a pool runs on any of its runners,
    /// once (the fleet's shared replay guard sees to that).
    #[serde(default)]
    pub pools: Vec<String>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            id: default_runner_id(),
            pools: Vec::new(),
        }
    }
}

impl RunnerConfig {
    /// The names a task's `aud` may use for this runner: its id, then its pools.
    pub fn audience(&self) -> Vec<String> {
        std::iter::once(self.id.clone())
            .chain(self.pools.iter().cloned())
            .collect()
    }

    fn check(&self) -> Result<(), String> {
        for (key, name) in std::iter::once(("runner.id", &self.id))
            .chain(self.pools.iter().map(|p| ("runner.pools", p)))
        {
            let ok = !name.is_empty()
                && name.len() <= 128
                && name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric())
                && name.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-')
                });
            if !ok {
                return Err(format!(
                    "{key} {:?} must be 1 to 128 characters of [A-Za-z0-9._:@-], starting with a \
                     letter or digit",
                    crate::text::printable(name)
                ));
            }
        }
        Ok(())
    }
}

/// The host name, or `edge-runner` when it cannot be read or is not a valid id.
fn default_runner_id() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 128
                && h.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        })
        .unwrap_or_else(|| "edge-runner".to_owned())
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
    /// `[plugins.verifiers]`: per algorithm, an embedded backend by name
    /// (`ES256 = "es256-libcrux"`) or a pinned plugin file (`[plugins.verifiers.ES256]`
    /// with `path` and `sha256`) replacing the default.
    #[serde(default)]
    pub verifiers: BTreeMap<String, VerifierSetting>,
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
    /// The fuel and memory budgets of one plugin call, from `fuel` and `memory_bytes`.
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            fuel: self.fuel,
            memory_bytes: self.memory_bytes,
            ..PluginLimits::default()
        }
    }

    /// The `[plugins.verifiers]` entries, as the plugin loader takes them.
    pub fn verifier_overrides(&self) -> BTreeMap<String, VerifierChoice> {
        self.verifiers
            .iter()
            .map(|(alg, v)| {
                let choice = match v {
                    VerifierSetting::Backend(name) => VerifierChoice::Builtin(name.clone()),
                    VerifierSetting::File(f) => VerifierChoice::File(f.pinned()),
                };
                (alg.clone(), choice)
            })
            .collect()
    }
}

/// One `[plugins.verifiers]` entry: a backend name (a string) or a pinned file (a table).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum VerifierSetting {
    /// An embedded backend, by the name `edge-runner plugins` lists.
    Backend(String),
    /// A plugin file pinned by its sha256.
    File(PluginFileConfig),
}

impl<'de> Deserialize<'de> for VerifierSetting {
    // By hand rather than `untagged`, so that a mistyped table member is reported by
    // name (`deny_unknown_fields`) instead of "did not match any variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = VerifierSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "an embedded backend name (ES256 = \"es256-libcrux\") or a table with \
                     path and sha256",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(VerifierSetting::Backend(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                PluginFileConfig::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(VerifierSetting::File)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A plugin file and its required pin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PluginFileConfig {
    /// The plugin file.
    pub path: PathBuf,
    /// `sha256:<64 lowercase hex>` of the file. Required: an unpinned plugin is refused.
    pub sha256: String,
}

impl PluginFileConfig {
    /// The file with its pin, as the plugin loader takes it.
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
    /// Reads and checks `path`. A stored file is opened once through a walk that checks it
    /// and every directory above it (`fsperm::open_file`), and read through that
    /// descriptor: whoever can write it, or swap it, could relax the sandbox or pin their
    /// own plugin. `/dev/null` or a pipe from process substitution carries no stored state
    /// and is read as it is.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read as _;
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let file = if meta.is_file() {
            let (file, _) = crate::fsperm::open_file(path, "configuration").map_err(|e| {
                ConfigError::Invalid {
                    path: path.to_owned(),
                    message: e.to_string(),
                }
            })?;
            file
        } else {
            std::fs::File::open(path).map_err(read)?
        };
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "more than {MAX_CONFIG_BYTES} bytes; the limit is {MAX_CONFIG_BYTES}"
                ),
            });
        }
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.armory_setting = config.armory_settings.path.clone();
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
        self.armory_settings.path = Some(dir.clone());
        self.armory = dir;
    }

    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        for (alg, v) in &self.plugins.verifiers {
            if let VerifierSetting::File(f) = v
                && !crate::digest::is_sha256_id(&f.sha256)
            {
                return Err(invalid(format!(
                    "plugins.verifiers.{alg}.sha256 must be \"sha256:\" followed by 64 \
                     lowercase hex digits (compute it with: sha256sum {})",
                    f.path.display()
                )));
            }
        }
        self.sandbox.check().map_err(invalid)?;
        if let Some(m) = &self.plugins.mapper
            && !crate::digest::is_sha256_id(&m.sha256)
        {
            return Err(invalid(format!(
                "plugins.mapper.sha256 must be \"sha256:\" followed by 64 lowercase hex \
                 digits (compute it with: sha256sum {})",
                m.path.display()
            )));
        }
        self.events.check().map_err(invalid)?;
        self.fleet.check().map_err(invalid)?;
        if self.plugins.fuel == 0 || self.plugins.memory_bytes < 64 * 1024 {
            return Err(invalid(
                "plugins.fuel must be positive and plugins.memory_bytes at least 65536".into(),
            ));
        }
        self.runner.check().map_err(invalid)?;
        self.armory_settings.check().map_err(invalid)?;
        self.claims
            .check()
            .and_then(|()| self.limits.check())
            .and_then(|()| self.env.check())
            .map_err(invalid)?;
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
        self.sandbox.clone().with_runner(&self.state_dir, &secrets)
    }

    /// The compile cache directory, if caching is on.
    pub fn plugin_cache_dir(&self) -> Option<PathBuf> {
        self.plugins
            .cache
            .then(|| crate::plugins::cache_dir(&self.state_dir))
    }
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
    fn a_backend_is_selected_by_name_in_one_line() {
        let c = Config::parse(
            "[plugins.verifiers]\nES256 = \"es256-libcrux\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(
            c.plugins.verifier_overrides().get("ES256"),
            Some(&VerifierChoice::Builtin("es256-libcrux".into()))
        );
        // A mistyped member of the file form is named.
        let e = Config::parse(
            "[plugins.verifiers.ES256]\npath = \"/p.wasm\"\nsha = \"x\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sha"), "{e}");
        // Two settings for one algorithm: the file is refused, naming the algorithm.
        let e = Config::parse(
            "[plugins.verifiers]\nES256 = \"es256-libcrux\"\n[plugins.verifiers.ES256]\n\
             path = \"/p.wasm\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ES256"), "{e}");
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
}
