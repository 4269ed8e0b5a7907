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

/// The armory, opened and trusted.
pub fn armory(config: &Config) -> Result<Armory, SetupError> {
    Armory::open(&config.armory).map_err(SetupError::Armory)
}
