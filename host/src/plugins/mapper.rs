//! Event-mapper plugins: loading one (the embedded default or a digest-pinned file),
//! and calling `to-event` in a fresh instance with fuel and a memory cap. This module
//! speaks only the WIT types ([`wit`]): the conversion from the host's execution record
//! and back lives with the event pipeline (`events::mapper::wit`), so imports run one way
//! (events uses plugins, never the reverse). It does not judge the plugin's answer (that
//! is `events::validate`) and does not decide what to emit on failure (`events::mapper`).

/// The WIT `event-mapper` records of the current contract, as bindgen generated them.
pub(crate) use super::contract::mapper_wit as wit;
use super::contract::{self, Contract, MapperInstance, MapperPre};
use super::{
    FaultKind, LoadedBytes, Origin, PinnedFile, PluginError, PluginFault, PluginHost, embedded,
    plugin_text, store,
};
use std::fmt;

/// The WIT world a mapper implements.
const WORLD: &str = "event-mapper-plugin";
/// Upper bounds on what `info()` may return.
const MAX_NAME_LEN: usize = 64;
const MAX_EVENT_TYPES: usize = 32;

/// One loaded mapper component, ready to instantiate. A clone shares the compiled code.
#[derive(Clone)]
pub struct MapperPlugin {
    /// The name the plugin reports in `info()`.
    pub name: String,
    /// The version the plugin reports in `info()`.
    pub version: String,
    /// The event types the plugin says it emits.
    pub event_types: Vec<String>,
    /// Where it was loaded from.
    pub origin: Origin,
    /// The component's digest (`sha256:<hex>`).
    pub sha256: String,
    pre: MapperPre,
}

impl MapperPlugin {
    /// The contract version the plugin was built against (0.1 plugins are adapted).
    pub fn contract(&self) -> Contract {
        self.pre.contract()
    }
}

impl fmt::Debug for MapperPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapperPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("event_types", &self.event_types)
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .field("contract", &self.contract())
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Loads the mapper: the pinned file when configured, else the embedded default.
    pub fn load_mapper(&self, file: Option<&PinnedFile>) -> Result<MapperPlugin, PluginError> {
        let loaded = match file {
            Some(f) => self.pinned_bytes(f)?,
            None => PluginHost::builtin_bytes(&embedded::MAPPER),
        };
        self.load_mapper_bytes(loaded)
    }

    /// Loads a mapper from its bytes: compile, link, check the world, ask `info`.
    pub(super) fn load_mapper_bytes(
        &self,
        loaded: LoadedBytes<'_>,
    ) -> Result<MapperPlugin, PluginError> {
        let component = self.component(&loaded)?;
        let version = contract::of(&component, &self.engine, "event-mapper").map_err(|found| {
            PluginError::UnsupportedContract {
                label: loaded.label.clone(),
                found,
            }
        })?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|source| PluginError::Ungranted {
                    label: loaded.label.clone(),
                    source,
                })?;
        let pre = MapperPre::new(version.unwrap_or(Contract::Current), instance_pre).map_err(
            |source| PluginError::WrongWorld {
                label: loaded.label.clone(),
                world: WORLD,
                source,
            },
        )?;
        let LoadedBytes {
            sha256,
            origin,
            label,
            ..
        } = loaded;
        let mut plugin = MapperPlugin {
            name: label.clone(),
            version: String::new(),
            event_types: Vec::new(),
            origin,
            sha256,
            pre,
        };
        let info = self
            .call_mapper(&plugin, |b, s| b.info(s))
            .map_err(|fault| PluginError::Info {
                label: label.clone(),
                fault,
            })?;
        if info.name.is_empty() || info.name.len() > MAX_NAME_LEN {
            return Err(PluginError::BadInfo {
                label,
                problem: format!("name must be 1 to {MAX_NAME_LEN} bytes"),
            });
        }
        if info.event_types.len() > MAX_EVENT_TYPES {
            return Err(PluginError::BadInfo {
                label,
                problem: format!("lists more than {MAX_EVENT_TYPES} event types"),
            });
        }
        plugin.name = plugin_text(&info.name);
        plugin.version = plugin_text(&info.version);
        plugin.event_types = info.event_types.iter().map(|t| plugin_text(t)).collect();
        Ok(plugin)
    }

    /// Calls `to-event` in a fresh instance and returns the plugin's answer as it gave it
    /// (the conversion from and to host types lives with the event pipeline, in
    /// `events::mapper::wit`).
    pub(crate) fn call_to_event(
        &self,
        plugin: &MapperPlugin,
        record: &wit::ExecutionRecord,
    ) -> Result<Result<wit::CloudEvent, String>, PluginFault> {
        self.call_mapper(plugin, |b, s| b.to_event(s, record))
    }

    fn call_mapper<R>(
        &self,
        plugin: &MapperPlugin,
        f: impl FnOnce(&MapperInstance, &mut wasmtime::Store<store::PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginFault> {
        let mut store = store::new_store(&self.engine, &self.limits).map_err(|e| PluginFault {
            plugin: plugin.name.clone(),
            kind: FaultKind::Instantiate(format!("{e:#}")),
        })?;
        let instance = match plugin.pre.instantiate(&mut store) {
            Ok(i) => i,
            Err(e) => return Err(self.classify(&plugin.name, e, &store)),
        };
        f(&instance, &mut store).map_err(|e| self.classify(&plugin.name, e, &store))
    }
}
