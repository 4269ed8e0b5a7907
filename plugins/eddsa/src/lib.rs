//! The EdDSA verifier plugin: Ed25519 (RFC 8032) for JWS, with `OKP` keys of curve `Ed25519`
//! (RFC 8037), under both the polymorphic `alg` `EdDSA` and the fully-specified `Ed25519`
//! of RFC 9864 (the same algorithm; a key names one of them). On ed25519-dalek. Glue to the
//! WIT contract lives in `bindings`; the logic lives in `ed25519`. This crate must not
//! import anything from WASI: it is built `no_std`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::EdDsa;
    export!(EdDsa with_types_in self);
}

mod ed25519;

use alloc::string::{String, ToString as _};
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

/// The `alg` values served: RFC 8037's `EdDSA` (with curve Ed25519 only) and RFC 9864's
/// fully-specified `Ed25519`.
const ALGS: [&str; 2] = ["EdDSA", "Ed25519"];

struct EdDsa;

fn members(key: &Jwk) -> impl Iterator<Item = (&str, &str)> + Clone {
    key.members
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_str()))
}

impl From<ed25519::KeyProblem> for KeyError {
    fn from(p: ed25519::KeyProblem) -> Self {
        use ed25519::KeyProblem as P;
        match p {
            P::WrongType(m) => KeyError::WrongKeyType(m),
            P::Malformed(m) => KeyError::Malformed(m.to_string()),
            P::Invalid(m) => KeyError::WeakOrInvalid(m.to_string()),
        }
    }
}

fn key_for(alg: &str, key: &Jwk) -> Result<ed25519::Key, KeyError> {
    if !ALGS.contains(&alg) {
        return Err(KeyError::UnsupportedAlgorithm(alg.to_string()));
    }
    ed25519::Key::from_jwk(members(key)).map_err(Into::into)
}

impl Guest for EdDsa {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "eddsa".to_string(),
            version: alloc::format!("{} (ed25519-dalek 3, strict)", env!("CARGO_PKG_VERSION")),
            algorithms: ALGS
                .iter()
                .map(|a| Algorithm {
                    name: a.to_string(),
                    key_type: "OKP".to_string(),
                    curve: Some("Ed25519".to_string()),
                })
                .collect(),
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
        if !ALGS.contains(&alg.as_str()) {
            return Err(VerifyError::UnsupportedAlgorithm(alg));
        }
        let key = key_for(&alg, &key).map_err(VerifyError::Key)?;
        key.verify(&signing_input, &signature).map_err(|p| match p {
            ed25519::SigProblem::WrongLength(n) => VerifyError::MalformedSignature(alloc::format!(
                "an Ed25519 signature is the 64-byte R || S (RFC 8032 section 5.1.6), got {n} bytes"
            )),
            ed25519::SigProblem::Mismatch => VerifyError::Mismatch,
        })
    }
}
