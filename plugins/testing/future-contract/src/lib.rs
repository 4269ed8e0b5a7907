//! Test fixture, never shipped: a verifier built against `edge-runner:plugin@0.3.0`, a
//! contract version this host does not implement (its interface is deliberately not the
//! 0.2 one). The host must refuse it at load with a message naming the version it targets
//! and the versions the host supports, not with a type error.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;
// The allocator and panic handler come from the support crate.
use edge_runner_plugin_support as _;

#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package edge-runner:plugin@0.3.0;
            interface verifier {
                info: func() -> string;
            }
            world verifier-plugin {
                export verifier;
            }
        ",
        world: "verifier-plugin",
        generate_all,
    });
    use super::Future;
    export!(Future with_types_in self);
}

use alloc::string::{String, ToString as _};

struct Future;

impl bindings::exports::edge_runner::plugin::verifier::Guest for Future {
    fn info() -> String {
        "future-contract".to_string()
    }
}
