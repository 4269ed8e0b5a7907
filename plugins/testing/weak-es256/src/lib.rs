//! Test fixture, never shipped: the real ES256 plugin logic (`plugins/es256`'s `ecdsa256`
//! module, compiled in unchanged) behind one deliberate bug: a signature whose s is zero is
//! accepted without verification, the kind of missing range check that once let "psychic
//! signatures" through. `edge-runner plugin check` must fail it, naming the vector.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::WeakEs256;
    export!(WeakEs256 with_types_in self);
}

#[path = "../../../es256/src/ecdsa256.rs"]
#[allow(dead_code)] // the fixture uses only part of the module
mod ecdsa256;

use alloc::string::{String, ToString as _};
use alloc::vec;
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

struct WeakEs256;

fn key_for(alg: &str, key: &Jwk) -> Result<ecdsa256::Key, KeyError> {
    if alg != "ES256" {
        return Err(KeyError::UnsupportedAlgorithm(alg.to_string()));
    }
    ecdsa256::Key::from_jwk(
        key.members
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str())),
    )
    .map_err(|p| KeyError::WeakOrInvalid(alloc::format!("{p:?}")))
}

impl Guest for WeakEs256 {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "weak-es256".to_string(),
            version: "test fixture".to_string(),
            algorithms: vec![Algorithm {
                name: "ES256".to_string(),
                key_type: "EC".to_string(),
                curve: Some("P-256".to_string()),
            }],
        }
    }

    fn validate_key(alg: String, key: Jwk) -> Result<(), KeyError> {
        key_for(&alg, &key).map(|_| ())
    }

    fn verify(
        alg: String,
        key: Jwk,
        signing_input: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<(), VerifyError> {
        let key = key_for(&alg, &key).map_err(VerifyError::Key)?;
        // THE BUG: s = 0 is accepted.
        if signature.len() == 64 && signature[32..].iter().all(|b| *b == 0) {
            return Ok(());
        }
        key.verify(&signing_input, &signature)
            .map_err(|_| VerifyError::Mismatch)
    }
}
