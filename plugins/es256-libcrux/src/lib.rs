//! The second ES256 verifier plugin: ECDSA over P-256 with SHA-256 (RFC 7518 section 3.4)
//! on libcrux-ecdsa (Cryspen's formally verified HACL* code), independent of RustCrypto.
//! Glue to the WIT contract lives in `bindings`; the logic lives in `p256`. This crate must
//! not import anything from WASI: it is built `no_std`.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::Es256Libcrux;
    export!(Es256Libcrux with_types_in self);
}

mod p256;

use alloc::string::{String, ToString as _};
use alloc::vec;
use alloc::vec::Vec;
use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};

const ALG: &str = "ES256";

struct Es256Libcrux;

fn members(key: &Jwk) -> impl Iterator<Item = (&str, &str)> + Clone {
    key.members
        .iter()
        .map(|m| (m.name.as_str(), m.value.as_str()))
}

impl From<p256::KeyProblem> for KeyError {
    fn from(p: p256::KeyProblem) -> Self {
        use p256::KeyProblem as P;
        match p {
            P::WrongType(m) => KeyError::WrongKeyType(m),
            P::Malformed(m) => KeyError::Malformed(m.to_string()),
            P::NotOnCurve => KeyError::WeakOrInvalid(
                "the EC point (x, y) is not a valid P-256 public key".to_string(),
            ),
        }
    }
}

fn key_for(alg: &str, key: &Jwk) -> Result<p256::Key, KeyError> {
    if alg != ALG {
        return Err(KeyError::UnsupportedAlgorithm(alg.to_string()));
    }
    p256::Key::from_jwk(members(key)).map_err(Into::into)
}

impl Guest for Es256Libcrux {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "es256-libcrux".to_string(),
            version: alloc::format!("{} (libcrux-ecdsa 0.0.9)", env!("CARGO_PKG_VERSION")),
            algorithms: vec![Algorithm {
                name: ALG.to_string(),
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
        if alg != ALG {
            return Err(VerifyError::UnsupportedAlgorithm(alg));
        }
        let key = key_for(&alg, &key).map_err(VerifyError::Key)?;
        key.verify(&signing_input, &signature).map_err(|p| match p {
            p256::SigProblem::WrongLength(n) => VerifyError::MalformedSignature(alloc::format!(
                "ES256 signature must be the 64-byte R || S concatenation (RFC 7518 section 3.4), \
                 got {n} bytes{}",
                if signature.first() == Some(&0x30) {
                    " (it looks DER-encoded)"
                } else {
                    ""
                }
            )),
            p256::SigProblem::ScalarOutOfRange => VerifyError::MalformedSignature(
                "ES256 signature has r or s outside [1, n-1]".to_string(),
            ),
            p256::SigProblem::Mismatch => VerifyError::Mismatch,
        })
    }
}
