//! `[armory]`: where the tool store lives, who decides which digests may run (a signed
//! authorization statement, or the local index), and how tools are pulled from an OCI
//! registry. The key `armory` also keeps its older form, a bare path string
//! (`armory = "/srv/armory"`), which means local authorization as before. This module only
//! reads and checks the settings; it opens nothing.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Who authorizes digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationMode {
    /// A digest runs only if the installed signed authorization statement (verified with
    /// the control plane's key) lists it, for the task's tenant when tenants are listed.
    Signed,
    /// A digest runs if `armory authorize` marked it in the local index (single host).
    Local,
}

impl AuthorizationMode {
    /// The configuration value (`signed`, `local`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizationMode::Signed => "signed",
            AuthorizationMode::Local => "local",
        }
    }
}

/// `[armory]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArmoryConfig {
    /// The tool store [default: `<state_dir>/armory`].
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `signed` or `local`. When the configuration does not say, `local` (the behaviour
    /// of configurations written before signed statements existed); new installs should
    /// say `signed`.
    #[serde(default)]
    pub authorization: Option<AuthorizationMode>,
    /// A key set (JWKS) only for authorization statements [default: the runner's `keys`].
    #[serde(default)]
    pub keys: Option<PathBuf>,
    /// Largest tool accepted by `add` and `pull`, bytes (at most 1 GiB).
    #[serde(default = "default_max_tool_bytes")]
    pub max_tool_bytes: u64,
    /// `[armory.pull]`: fetching tools from an OCI registry.
    #[serde(default)]
    pub pull: PullConfig,
}

impl Default for ArmoryConfig {
    fn default() -> Self {
        Self {
            path: None,
            authorization: None,
            keys: None,
            max_tool_bytes: default_max_tool_bytes(),
            pull: PullConfig::default(),
        }
    }
}

/// `[armory.pull]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// Pull an authorized digest that is missing locally when a task needs it (signed
    /// mode; the statement's `source` says where). Off by default.
    #[serde(default)]
    pub on_demand: bool,
    /// Registries (`host` or `host:port`) pull-on-demand may contact. Required when
    /// `on_demand` is on; `armory pull` from the command line may name any registry.
    #[serde(default)]
    pub registries: Vec<String>,
    /// PEM file of CA certificates for registries [default: the system's roots].
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Trust the system's roots too (default: only when no `ca_file` is given).
    #[serde(default)]
    pub system_roots: Option<bool>,
    /// File holding a bearer token sent to registries; owner-readable only.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Seconds without progress before a registry request fails.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Default for PullConfig {
    fn default() -> Self {
        Self {
            on_demand: false,
            registries: Vec::new(),
            ca_file: None,
            system_roots: None,
            bearer_token_file: None,
            timeout_secs: default_timeout_secs(),
        }
    }
}

fn default_max_tool_bytes() -> u64 {
    crate::armory::MAX_TOOL_BYTES
}

fn default_timeout_secs() -> u64 {
    30
}

impl ArmoryConfig {
    /// The mode in force.
    pub fn mode(&self) -> AuthorizationMode {
        self.authorization.unwrap_or(AuthorizationMode::Local)
    }

    /// The TLS settings for registry connections.
    pub fn registry_tls(&self) -> crate::events::sinks::tls::TlsSettings {
        crate::events::sinks::tls::TlsSettings {
            ca_file: self.pull.ca_file.clone(),
            system_roots: self.pull.system_roots,
            client_cert: None,
            client_key: None,
            bearer_token_file: self.pull.bearer_token_file.clone(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.max_tool_bytes == 0 || self.max_tool_bytes > crate::armory::MAX_TOOL_BYTES {
            return Err(format!(
                "armory.max_tool_bytes must be 1 to {} (1 GiB)",
                crate::armory::MAX_TOOL_BYTES
            ));
        }
        if self.pull.on_demand && self.pull.registries.is_empty() {
            return Err(
                "armory.pull.on_demand = true needs armory.pull.registries: the \
                        registries (host or host:port) the runner may fetch tools from"
                    .into(),
            );
        }
        if self.pull.on_demand && self.mode() != AuthorizationMode::Signed {
            return Err(
                "armory.pull.on_demand needs armory.authorization = \"signed\": only a \
                        signed statement names digests that are not yet in the armory"
                    .into(),
            );
        }
        for r in &self.pull.registries {
            crate::armory::registry::check_registry_name(r)
                .map_err(|e| format!("armory.pull.registries: {e}"))?;
        }
        if self.pull.timeout_secs == 0 || self.pull.timeout_secs > 3600 {
            return Err("armory.pull.timeout_secs must be 1 to 3600".into());
        }
        Ok(())
    }
}

/// `armory = "PATH"` (the older form) or an `[armory]` table.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ArmoryConfig, D::Error> {
    struct Either;
    impl<'de> Visitor<'de> for Either {
        type Value = ArmoryConfig;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a path string or an [armory] table")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<ArmoryConfig, E> {
            Ok(ArmoryConfig {
                path: Some(PathBuf::from(v)),
                ..ArmoryConfig::default()
            })
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<ArmoryConfig, M::Error> {
            ArmoryConfig::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_any(Either)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::{Path, PathBuf};

    use super::AuthorizationMode;

    #[test]
    fn both_forms_parse_and_the_old_one_keeps_local_authorization() {
        let c = Config::parse("armory = \"/srv/a\"\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.armory, PathBuf::from("/srv/a"));
        assert_eq!(c.armory_settings.mode(), AuthorizationMode::Local);
        let c = Config::parse(
            "[armory]\npath = \"/srv/b\"\nauthorization = \"signed\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.armory, PathBuf::from("/srv/b"));
        assert_eq!(c.armory_settings.mode(), AuthorizationMode::Signed);
        let c = Config::parse(
            "state_dir = \"/s\"\n[armory]\nauthorization = \"local\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.armory, PathBuf::from("/s/armory"));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_key() {
        for (bad, key) in [
            ("[armory]\nauthorisation = \"signed\"\n", "authorisation"),
            ("[armory]\nauthorization = \"maybe\"\n", "maybe"),
            ("[armory]\nmax_tool_bytes = 0\n", "max_tool_bytes"),
            (
                "[armory]\nauthorization = \"signed\"\n[armory.pull]\non_demand = true\n",
                "registries",
            ),
            (
                "[armory.pull]\non_demand = true\nregistries = [\"r:5000\"]\n",
                "signed",
            ),
            (
                "[armory]\nauthorization = \"signed\"\n[armory.pull]\nregistries = [\"a/b\"]\n",
                "registries",
            ),
        ] {
            let e = Config::parse(bad, Path::new("c.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
