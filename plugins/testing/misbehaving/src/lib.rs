//! Test fixture, never shipped: a verifier plugin claiming HS256 and ES256 that misbehaves
//! in the way the selected key's `kid` names, so one component covers every fault class:
//!
//! - `trap`: panics (an `unreachable` trap);
//! - `loop`: spins forever (must hit the fuel budget);
//! - `hog`: allocates without bound (must hit the memory limit);
//! - `garbage`: returns a string that is not UTF-8 (must fail the canonical ABI lift);
//! - `accept`: accepts everything (a plugin the host must never reach through a bad key).
//!
//! Any other `kid` is a plain `mismatch`. `validate-key` always succeeds.
#![cfg_attr(target_arch = "wasm32", no_std)]
#![allow(clippy::panic)]

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
    use super::Misbehaving;
    export!(Misbehaving with_types_in self);
}

use alloc::string::{String, ToString as _};
use alloc::vec;
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

struct Misbehaving;

fn algorithm(name: &str, key_type: &str, curve: Option<&str>) -> Algorithm {
    Algorithm {
        name: name.to_string(),
        key_type: key_type.to_string(),
        curve: curve.map(|c| c.to_string()),
    }
}

impl Guest for Misbehaving {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "misbehaving".to_string(),
            version: "test".to_string(),
            algorithms: vec![
                algorithm("HS256", "oct", None),
                algorithm("ES256", "EC", Some("P-256")),
            ],
        }
    }

    fn validate_key(_alg: String, _key: Jwk) -> Result<(), KeyError> {
        Ok(())
    }

    fn verify(
        _alg: String,
        key: Jwk,
        _signing_input: Vec<u8>,
        _signature: Vec<u8>,
    ) -> Result<(), VerifyError> {
        let kid = key
            .members
            .iter()
            .find(|m| m.name == "kid")
            .map(|m| m.value.as_str())
            .unwrap_or("");
        match kid {
            "trap" => panic!("trap requested"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = core::hint::black_box(n.wrapping_add(1));
                }
            }
            "hog" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![0xA5; 1 << 20]);
                    core::hint::black_box(&hoard);
                }
            }
            "garbage" => {
                // A `string` whose bytes are not UTF-8: the host's lift must fail.
                let bytes = vec![0xff, 0xfe, 0xfd];
                #[allow(unsafe_code)]
                // SAFETY: deliberately unsound for the fault test; the bytes go straight
                // to the canonical ABI, which validates UTF-8 on the host side.
                let s = unsafe { String::from_utf8_unchecked(bytes) };
                Err(VerifyError::MalformedSignature(s))
            }
            "accept" => Ok(()),
            _ => Err(VerifyError::Mismatch),
        }
    }
}
