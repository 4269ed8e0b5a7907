//! The one place that runs `bindgen!`: host-side types for every plugin world in `wit/`.
//! Nothing else here; callers use the generated types through `plugins::verifier` and
//! `plugins::mapper`.

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
