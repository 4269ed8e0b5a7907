//! The default plugins, built from `plugins/` by `host/build.rs` and embedded in the
//! binary so that it works with no plugin directory. Nothing else lives here.

include!(concat!(env!("OUT_DIR"), "/embedded_plugins.rs"));

/// A plugin shipped inside the binary.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    pub name: &'static str,
    pub bytes: &'static [u8],
    pub sha256: &'static str,
    /// The algorithms a verifier declares (none for a mapper), so that a process can load
    /// only the verifiers its keys need; checked against the plugin's own declaration
    /// whenever it loads.
    pub algorithms: &'static [&'static str],
}

/// Every default verifier plugin.
pub const VERIFIERS: &[Builtin] = &[
    Builtin {
        name: "hs256",
        bytes: HS256,
        sha256: HS256_SHA256,
        algorithms: &["HS256"],
    },
    Builtin {
        name: "es256",
        bytes: ES256,
        sha256: ES256_SHA256,
        algorithms: &["ES256"],
    },
];

/// The default event mapper.
pub const MAPPER: Builtin = Builtin {
    name: "cloudevents-mapper",
    bytes: CLOUDEVENTS_MAPPER,
    sha256: CLOUDEVENTS_MAPPER_SHA256,
    algorithms: &[],
};
