//! The HS256 verifier plugin: HMAC-SHA-256 (RFC 7518 section 3.2) with a constant-time
//! comparison. Glue to the WIT contract lives in `bindings`; the logic lives in `hmac256`.
//! This crate must not import anything from WASI: it is built `no_std`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[cfg(not(feature = "contract-0-1"))]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::Hs256;
    export!(Hs256 with_types_in self);
}

/// The same plugin built against the previous contract (`wit/compat/0.1.0`): the test
/// fixture `hs256-contract-0-1` that shows a host still loads 0.1 plugins.
#[cfg(feature = "contract-0-1")]
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/compat/0.1.0",
        world: "verifier-plugin",
        generate_all,
    });
    use super::Hs256;
    export!(Hs256 with_types_in self);
}

mod hmac256;

use alloc::string::ToString as _;
use alloc::vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

/// The algorithm this plugin implements.
const ALG: &str = "HS256";

struct Hs256;

fn members(key: &Jwk) -> impl Iterator<Item = (&str, &str)> + Clone {
    key.members
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_str()))
}

fn key_bytes(alg: &str, key: &Jwk) -> Result<hmac256::Key, KeyError> {
    if alg != ALG {
        return Err(KeyError::UnsupportedAlgorithm(alg.to_string()));
    }
    hmac256::Key::from_jwk(members(key)).map_err(Into::into)
}

impl From<hmac256::KeyProblem> for KeyError {
    fn from(p: hmac256::KeyProblem) -> Self {
        use hmac256::KeyProblem as P;
        match p {
            P::WrongType(t) => KeyError::WrongKeyType(t),
            P::Malformed(m) => KeyError::Malformed(m.to_string()),
            P::TooShort(bits) => KeyError::WeakOrInvalid(alloc::format!(
                "HS256 key has {bits} bits; at least 256 are required (RFC 7518 section 3.2)"
            )),
        }
    }
}

impl Guest for Hs256 {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "hs256".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            algorithms: vec![Algorithm {
                name: ALG.to_string(),
                key_type: "oct".to_string(),
                curve: None,
            }],
        }
    }

    fn validate_key(alg: alloc::string::String, key: Jwk) -> Result<(), KeyError> {
        key_bytes(&alg, &key).map(|_| ())
    }

    fn verify(
        alg: alloc::string::String,
        key: Jwk,
        signing_input: alloc::vec::Vec<u8>,
        signature: alloc::vec::Vec<u8>,
    ) -> Result<(), VerifyError> {
        if alg != ALG {
            return Err(VerifyError::UnsupportedAlgorithm(alg));
        }
        let key = key_bytes(&alg, &key).map_err(VerifyError::Key)?;
        match key.verify(&signing_input, &signature) {
            Ok(()) => Ok(()),
            Err(hmac256::SigProblem::WrongLength(n)) => Err(VerifyError::MalformedSignature(
                alloc::format!("HS256 signature must be 32 bytes, got {n}"),
            )),
            Err(hmac256::SigProblem::Mismatch) => Err(VerifyError::Mismatch),
        }
    }
}
