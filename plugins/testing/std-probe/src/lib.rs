//! Test fixture, never shipped: a `std` verifier plugin. Rust `std` makes the component
//! import `wasi:cli/*` and `wasi:io/*`; the host links a deny-all context for those. The
//! plugin reports what it can see (environment, arguments, stdin) in its error message, and
//! writes to stdout/stderr, which must go nowhere.

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "verifier-plugin",
        generate_all,
    });
    use super::StdProbe;
    export!(StdProbe with_types_in self);
}

use bindings::exports::edge_runner::plugin::verifier::{
    Algorithm, Guest, Jwk, KeyError, PluginInfo, VerifyError,
};
use std::io::Read as _;

struct StdProbe;

impl Guest for StdProbe {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "std-probe".to_string(),
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

    #[allow(clippy::print_stdout, clippy::print_stderr)]
    fn verify(
        _alg: String,
        _key: Jwk,
        _signing_input: Vec<u8>,
        _signature: Vec<u8>,
    ) -> Result<(), VerifyError> {
        println!("stdout from a plugin");
        eprintln!("stderr from a plugin");
        let env = std::env::vars().count();
        let args = std::env::args().count();
        let mut stdin = Vec::new();
        let read = std::io::stdin()
            .read_to_end(&mut stdin)
            .map(|_| stdin.len());
        Err(VerifyError::MalformedSignature(format!(
            "env={env} args={args} stdin={read:?}"
        )))
    }
}
