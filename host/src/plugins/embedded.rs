//! The plugins embedded in the binary, built from `plugins/` by `host/build.rs` as
//! `plugins/shipped.toml` lists them, so that the binary works with no plugin directory.
//! Nothing here names a particular plugin: a new backend is a row in that file.

/// A plugin shipped inside the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The backend name an operator selects it by (`[plugins.verifiers] ES256 = "<name>"`);
    /// the plugin's own `info()` must report the same name.
    pub name: &'static str,
    /// The Cargo package it is built from.
    pub package: &'static str,
    /// The component's bytes.
    pub bytes: &'static [u8],
    pub(crate) sha256: &'static str,
    /// The algorithms a verifier declares (none for a mapper), so that a process can load
    /// only the verifiers its keys need; checked against the plugin's own declaration
    /// whenever it loads.
    pub algorithms: &'static [&'static str],
    /// The algorithms it serves when the configuration selects no backend for them.
    pub default_for: &'static [&'static str],
}

// `VERIFIERS`, `MAPPERS` and `MAPPER` (the default mapper).
include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));

/// The embedded verifier called `name`.
pub fn verifier(name: &str) -> Option<&'static Builtin> {
    VERIFIERS.iter().find(|b| b.name == name)
}
