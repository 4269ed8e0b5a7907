//! The runner's configuration file (TOML): where the key set, armory and state live,
//! which plugins replace the defaults (pinned by sha256), and the limits applied to
//! plugins and inputs. Unknown keys are refused naming the key and the file. This module
//! only reads and checks the file; it opens nothing it names.

use crate::plugins::{PinnedFile, PluginLimits};
use serde::Deserialize;
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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The verification key set (JWKS).
    #[serde(default = "default_keys")]
    pub keys: PathBuf,
    /// The runner's state directory: replay store, plugin cache, event spool.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub input: InputConfig,
    /// `[events]`: CloudEvents source, size cap, sinks, spool.
    #[serde(default)]
    pub events: crate::events::EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            keys: default_keys(),
            state_dir: default_state_dir(),
            plugins: PluginsConfig::default(),
            input: InputConfig::default(),
            events: crate::events::EventsConfig::default(),
        }
    }
}

/// `[plugins]`: limits for every plugin call and the per-algorithm overrides.
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
#[derive(Debug, Clone, Deserialize)]
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
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.check(path)?;
        Ok(config)
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
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn sha256_ids() {
        assert!(is_sha256_id(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_id(&format!("sha512:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "0".repeat(63))));
    }
}
