//! The runner's per-process setup, one function per component, each opened once and
//! reused by every task the process handles: the plugin engine, the event pipeline (mapper
//! and sinks), the signature verifier (key set and the verifier plugins it needs) and the
//! armory. `Runner::open` composes them; `config check` calls each on its own so that it
//! can report every broken component in one pass. Nothing here judges a task.

use crate::armory::{self, Armory};
use crate::config::Config;
use crate::events::{EventPipeline, EventsError};
use crate::keys::KeySet;
use crate::plugins::{CompileCache, PluginHost, Verifiers};
use crate::verify::SignatureVerifier;

/// Why the runner could not be set up. Configuration errors (exit 2), not task refusals.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The key set (or a directory above it) could have been swapped by another user.
    #[error(transparent)]
    Trust(#[from] crate::fsperm::PermError),
    /// The key set does not load, or a key is refused by its verifier plugin.
    #[error(transparent)]
    Keys(#[from] crate::keys::KeysError),
    /// A plugin (embedded or pinned file) does not load.
    #[error(transparent)]
    Plugins(#[from] crate::plugins::PluginError),
    /// The armory cannot be opened or trusted.
    #[error(transparent)]
    Armory(armory::ArmoryError),
    /// The registry client for pull-on-demand cannot be set up (its CA file or token).
    #[error("failed to set up registry pulls (armory.pull)")]
    Registry(#[source] armory::registry::RegistryError),
    /// The event mapper or a sink cannot be set up.
    #[error("failed to set up event delivery")]
    Events(#[source] EventsError),
}

/// The WebAssembly engine every plugin of this process runs on, with the compile cache
/// under the state directory when it is on. `long_lived` selects the pooling allocator
/// (worth it when many tasks share the engine, as in `serve`).
pub fn plugin_host(config: &Config, long_lived: bool) -> Result<PluginHost, SetupError> {
    let cache = config
        .plugin_cache_dir()
        .map(|d| CompileCache::at(&d))
        .unwrap_or_else(CompileCache::disabled);
    let limits = config.plugins.limits();
    Ok(if long_lived {
        PluginHost::long_lived(limits, cache)?
    } else {
        PluginHost::new(limits, cache)?
    })
}

/// The event mapper (`[plugins.mapper]` or the embedded default) and the sinks.
pub fn events(config: &Config, host: &PluginHost) -> Result<EventPipeline, SetupError> {
    EventPipeline::new(config, host).map_err(SetupError::Events)
}

/// The key set, trusted and loaded, bound to the verifier plugins its keys need (plus
/// every configured override, so a broken pin fails every command). Each key is
/// validated by its plugin here, so a bad key set refuses to start.
pub fn verifier(config: &Config, host: PluginHost) -> Result<SignatureVerifier, SetupError> {
    let keys = KeySet::load(&config.keys)?;
    // Only the verifiers the keys need: a task signed with another algorithm is refused
    // whatever plugins exist.
    let algorithms = keys.iter().map(|k| k.alg.as_str()).collect();
    let verifiers = Verifiers::load_for(host, &config.plugins.verifier_overrides(), &algorithms)?;
    Ok(SignatureVerifier::new(keys, verifiers)?)
}

/// The armory, opened and trusted, with the configured tool size limit.
pub fn armory(config: &Config) -> Result<Armory, SetupError> {
    Armory::open(&config.armory)
        .map(|a| a.with_max_tool_bytes(config.armory_settings.max_tool_bytes))
        .map_err(SetupError::Armory)
}

/// The verifier of authorization statements when `armory.keys` names a dedicated key set
/// (the same plugins and verification code as tasks); `None`: the runner's key set.
pub fn statement_verifier(
    config: &Config,
    host: PluginHost,
) -> Result<Option<SignatureVerifier>, SetupError> {
    let Some(path) = &config.armory_settings.keys else {
        return Ok(None);
    };
    let keys = KeySet::load(path)?;
    let algorithms = keys.iter().map(|k| k.alg.as_str()).collect();
    let verifiers = Verifiers::load_for(host, &config.plugins.verifier_overrides(), &algorithms)?;
    Ok(Some(SignatureVerifier::new(keys, verifiers)?))
}

/// The verifier `armory policy apply` uses: the dedicated armory key set, else the
/// runner's.
pub fn policy_verifier(config: &Config, host: PluginHost) -> Result<SignatureVerifier, SetupError> {
    match statement_verifier(config, host.clone())? {
        Some(v) => Ok(v),
        None => verifier(config, host),
    }
}

/// Pull-on-demand's client, when `armory.pull.on_demand` is on.
pub(crate) fn on_demand(config: &Config) -> Result<Option<super::authority::OnDemand>, SetupError> {
    if !config.armory_settings.pull.on_demand {
        return Ok(None);
    }
    let client = super::authority::client(config).map_err(SetupError::Registry)?;
    Ok(Some(super::authority::OnDemand {
        client,
        registries: config.armory_settings.pull.registries.clone(),
    }))
}

/// The registry client `armory pull` and `armory push` use.
pub fn registry_client(config: &Config) -> Result<armory::registry::Client, SetupError> {
    super::authority::client(config).map_err(SetupError::Registry)
}
