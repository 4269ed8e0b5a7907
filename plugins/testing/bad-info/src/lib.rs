//! Test fixture, never shipped: a verifier whose `info` misdeclares what it implements.
//! Built twice by `host/build.rs` (see `plugins/shipped.toml`): with feature `twice` it
//! lists ES256 twice, without it no algorithm at all. The host must refuse both at load.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;
// The allocator and panic handler come from the support crate.
use edge_runner_plugin_support as _;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::BadInfo;
    export!(BadInfo with_types_in self);
}

use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

struct BadInfo;

impl Guest for BadInfo {
    fn info() -> PluginInfo {
        let es256 = || Algorithm {
            name: "ES256".to_string(),
            key_type: "EC".to_string(),
            curve: Some("P-256".to_string()),
        };
        PluginInfo {
            name: "bad-info".to_string(),
            version: "test fixture".to_string(),
            algorithms: if cfg!(feature = "twice") {
                alloc::vec![es256(), es256()]
            } else {
                Vec::new()
            },
        }
    }

    fn validate_key(alg: String, _key: Jwk) -> Result<(), KeyError> {
        Err(KeyError::UnsupportedAlgorithm(alg))
    }

    fn verify(alg: String, _: Jwk, _: Vec<u8>, _: Vec<u8>) -> Result<(), VerifyError> {
        Err(VerifyError::UnsupportedAlgorithm(alg))
    }
}
