//! Test fixture, never shipped: a `std` verifier plugin that reads the wall clock and a
//! file. Its component imports `wasi:clocks` and `wasi:filesystem`, which no plugin world
//! grants: the host must refuse to load it and name the import.

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::Ungranted;
    export!(Ungranted with_types_in self);
}

use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

struct Ungranted;

impl Guest for Ungranted {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "ungranted".to_string(),
            version: "test".to_string(),
            algorithms: vec![Algorithm {
                name: "HS256".to_string(),
                key_type: "oct".to_string(),
                curve: None,
            }],
        }
    }

    fn validate_key(_alg: String, _key: Jwk) -> Result<(), KeyError> {
        Ok(())
    }

    fn verify(
        _alg: String,
        _key: Jwk,
        _signing_input: Vec<u8>,
        _signature: Vec<u8>,
    ) -> Result<(), VerifyError> {
        let now = std::time::SystemTime::now();
        match std::fs::read("/etc/edge-runner/keys.json") {
            Ok(_) => Ok(()),
            Err(e) => Err(VerifyError::MalformedSignature(format!("{now:?} {e}"))),
        }
    }
}
