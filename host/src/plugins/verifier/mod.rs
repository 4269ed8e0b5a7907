//! Verifier plugins: loading one, calling `validate-key` and `verify` in a fresh
//! instance each time. The per-algorithm registry (embedded backends, the configured
//! selection, pinned files) is `registry`; which backend serves which algorithm is
//! decided by `select`.
//!
//! This module reports what a plugin answered; it does not pick keys or decide whether a
//! task is accepted (that is `verify`).

use super::contract::{self, Contract, VerifierInstance, VerifierPre, verifier_wit as wit};
use super::{
    FaultKind, LoadedBytes, Origin, PluginError, PluginFault, PluginHost, plugin_text, store,
};
use std::fmt;

mod registry;
mod select;

pub use registry::{CatalogueRow, Verifiers};
pub use select::{SelectError, VerifierChoice};

/// The WIT world a verifier implements.
const WORLD: &str = "verifier-plugin";

/// Upper bounds on what `info()` may return.
const MAX_ALGORITHMS: usize = 16;
const MAX_NAME_LEN: usize = 64;

/// An algorithm a plugin implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmInfo {
    /// The JWS `alg` name.
    pub name: String,
    pub(crate) key_type: String,
    pub(crate) curve: Option<String>,
}

/// Why a verification did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyFailure {
    /// Well-formed signature that does not verify.
    Mismatch,
    /// The signature is not in the algorithm's encoding.
    MalformedSignature(String),
    /// The plugin refused the key.
    KeyRefused(String),
    /// The plugin says it does not implement the algorithm.
    Unsupported(String),
    /// The call itself failed.
    Fault(PluginFault),
}

/// One loaded verifier component, ready to instantiate.
pub struct VerifierPlugin {
    /// The name the plugin reports in `info()`.
    pub name: String,
    pub(crate) version: String,
    /// The algorithms the plugin implements, as it declared them.
    pub algorithms: Vec<AlgorithmInfo>,
    pub(crate) origin: Origin,
    pub(crate) sha256: String,
    /// The interfaces the component imports (empty for the `no_std` defaults).
    pub imports: Vec<String>,
    pre: VerifierPre,
}

impl VerifierPlugin {
    /// The contract version the plugin was built against (0.1 plugins are adapted).
    pub fn contract(&self) -> Contract {
        self.pre.contract()
    }
}

impl fmt::Debug for VerifierPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("algorithms", &self.algorithms)
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .field("imports", &self.imports)
            .field("contract", &self.contract())
            .finish_non_exhaustive()
    }
}

fn key_error_text(e: &wit::KeyError) -> String {
    match e {
        wit::KeyError::UnsupportedAlgorithm(a) => {
            format!("the plugin does not implement {}", plugin_text(a))
        }
        wit::KeyError::WrongKeyType(m)
        | wit::KeyError::Malformed(m)
        | wit::KeyError::WeakOrInvalid(m) => plugin_text(m),
    }
}

fn to_jwk(members: &[(String, String)]) -> wit::Jwk {
    wit::Jwk {
        members: members
            .iter()
            .map(|(name, value)| wit::JwkMember {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
}

impl PluginHost {
    /// Loads a verifier from its bytes: compile (or cached), link against the deny-all
    /// surface, check the world, and ask it what it implements.
    pub(super) fn load_verifier_bytes(
        &self,
        loaded: LoadedBytes<'_>,
    ) -> Result<VerifierPlugin, PluginError> {
        let component = self.component(&loaded)?;
        let version = contract::of(&component, &self.engine, "verifier").map_err(|found| {
            PluginError::UnsupportedContract {
                label: loaded.label.clone(),
                found,
            }
        })?;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|source| PluginError::Ungranted {
                    label: loaded.label.clone(),
                    source,
                })?;
        let pre = VerifierPre::new(version.unwrap_or(Contract::Current), instance_pre).map_err(
            |source| PluginError::WrongWorld {
                label: loaded.label.clone(),
                world: WORLD,
                source,
            },
        )?;
        let mut plugin = VerifierPlugin {
            name: loaded.label.clone(),
            version: String::new(),
            algorithms: Vec::new(),
            origin: loaded.origin,
            sha256: loaded.sha256,
            imports,
            pre,
        };
        let info = self
            .call(&plugin, |b, s| b.info(s))
            .map_err(|fault| PluginError::Info {
                label: loaded.label.clone(),
                fault,
            })?;
        let bad = |problem: String| PluginError::BadInfo {
            label: loaded.label.clone(),
            problem,
        };
        if info.name.is_empty() || info.name.len() > MAX_NAME_LEN {
            return Err(bad(format!("name must be 1 to {MAX_NAME_LEN} bytes")));
        }
        if info.algorithms.is_empty() {
            return Err(bad(
                "it declares no algorithm; a verifier must list at least one in `info`".into(),
            ));
        }
        if info.algorithms.len() > MAX_ALGORITHMS {
            return Err(bad(format!(
                "must list 1 to {MAX_ALGORITHMS} algorithms, lists {}",
                info.algorithms.len()
            )));
        }
        for (i, a) in info.algorithms.iter().enumerate() {
            // The host maps each algorithm to one plugin; a plugin that lists one twice
            // (perhaps with two key types) is ambiguous about which it means.
            if info.algorithms[..i].iter().any(|b| b.name == a.name) {
                return Err(bad(format!(
                    "it declares the algorithm \"{}\" twice; list each algorithm once",
                    plugin_text(&a.name)
                )));
            }
            if a.name.is_empty()
                || a.name.len() > MAX_NAME_LEN
                || !a.name.bytes().all(|b| b.is_ascii_graphic())
                || a.name.eq_ignore_ascii_case("none")
            {
                return Err(bad(format!(
                    "invalid algorithm name \"{}\"",
                    plugin_text(&a.name)
                )));
            }
        }
        plugin.name = plugin_text(&info.name);
        plugin.version = plugin_text(&info.version);
        plugin.algorithms = info
            .algorithms
            .into_iter()
            .map(|a| AlgorithmInfo {
                name: a.name,
                key_type: plugin_text(&a.key_type),
                curve: a.curve.map(|c| plugin_text(&c)),
            })
            .collect();
        Ok(plugin)
    }

    /// Instantiates `plugin` in a fresh store and runs `f`, turning any failure into a
    /// [`PluginFault`].
    fn call<R>(
        &self,
        plugin: &VerifierPlugin,
        f: impl FnOnce(
            &VerifierInstance,
            &mut wasmtime::Store<store::PluginState>,
        ) -> wasmtime::Result<R>,
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

    /// Asks the plugin whether `key` (its string members) is a valid key for `alg`.
    pub fn validate_key(
        &self,
        plugin: &VerifierPlugin,
        alg: &str,
        members: &[(String, String)],
    ) -> Result<(), VerifyFailure> {
        let jwk = to_jwk(members);
        match self.call(plugin, |b, s| b.validate_key(s, alg, &jwk)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(VerifyFailure::KeyRefused(key_error_text(&e))),
            Err(fault) => Err(VerifyFailure::Fault(fault)),
        }
    }

    /// Verifies `signature` over `signing_input` with `key` for `alg`, in a fresh instance.
    pub fn verify(
        &self,
        plugin: &VerifierPlugin,
        alg: &str,
        members: &[(String, String)],
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyFailure> {
        let jwk = to_jwk(members);
        let answer = self.call(plugin, |b, s| {
            b.verify(s, alg, &jwk, signing_input, signature)
        });
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(wit::VerifyError::Mismatch)) => Err(VerifyFailure::Mismatch),
            Ok(Err(wit::VerifyError::MalformedSignature(m))) => {
                Err(VerifyFailure::MalformedSignature(plugin_text(&m)))
            }
            Ok(Err(wit::VerifyError::Key(e))) => Err(VerifyFailure::KeyRefused(key_error_text(&e))),
            Ok(Err(wit::VerifyError::UnsupportedAlgorithm(a))) => {
                Err(VerifyFailure::Unsupported(plugin_text(&a)))
            }
            Err(fault) => Err(VerifyFailure::Fault(fault)),
        }
    }
}
