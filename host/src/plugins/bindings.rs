//! The one place that runs `bindgen!`: host-side types for every plugin world in `wit/`,
//! and for the previous package version in `wit/compat/` (adapted in `plugins::contract`).
//! Nothing else here; callers use the generated types through `plugins::verifier`,
//! `plugins::mapper` and `plugins::contract`.

pub(crate) mod verifier {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "verifier-plugin",
    });
}

pub(crate) mod mapper {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "event-mapper-plugin",
    });
}

/// `edge-runner:plugin@0.1.0`, the previous package version.
pub(crate) mod v0_1 {
    pub(crate) mod verifier {
        wasmtime::component::bindgen!({
            path: "../wit/compat/0.1.0",
            world: "verifier-plugin",
        });
    }

    pub(crate) mod mapper {
        wasmtime::component::bindgen!({
            path: "../wit/compat/0.1.0",
            world: "event-mapper-plugin",
        });
    }
}
