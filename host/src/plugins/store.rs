//! Per-call store state: the memory and table limiter and, for components built with
//! `std`, a deny-all WASI context. Every call gets a fresh store, so nothing a plugin does
//! survives the call.

use super::engine::PluginLimits;
use wasmtime::component::HasData;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::cli::{WasiCli, WasiCliCtx, WasiCliCtxView, WasiCliView};

/// Table elements a plugin instance may have.
const MAX_TABLE_ELEMENTS: usize = 20_000;

pub(crate) struct PluginState {
    limiter: Limiter,
    cli: WasiCliCtx,
    table: ResourceTable,
}

impl WasiCliView for PluginState {
    fn cli(&mut self) -> WasiCliCtxView<'_> {
        WasiCliCtxView {
            ctx: &mut self.cli,
            table: &mut self.table,
        }
    }
}

/// Projects the resource table for the `wasi:io` host implementations.
struct IoTable;

impl HasData for IoTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Enforces the memory cap and records that it was hit, so the fault can be reported as
/// "memory limit" rather than a generic trap.
struct Limiter {
    memory_bytes: usize,
    memory_denied: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_denied = Some(desired);
            // An error (not `Ok(false)`) makes the growth trap at once instead of letting
            // the allocator retry; the host reports the fault.
            return Err(wasmtime::Error::msg("plugin memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Makes a fresh store with fuel and limits set.
pub(crate) fn new_store(
    engine: &Engine,
    limits: &PluginLimits,
) -> wasmtime::Result<Store<PluginState>> {
    let state = PluginState {
        limiter: Limiter {
            memory_bytes: limits.memory_bytes,
            memory_denied: None,
        },
        // No arguments, no environment, no cwd, empty stdin, stdout/stderr discarded.
        cli: WasiCliCtx::default(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_fuel(limits.fuel)?;
    Ok(store)
}

/// The memory size a call tried to reach beyond the limit, if it did.
pub(crate) fn memory_denied(store: &Store<PluginState>) -> Option<usize> {
    store.data().limiter.memory_denied
}

/// Adds a WASI surface that grants nothing: no arguments, no environment variables, no
/// working directory, an empty stdin, stdout/stderr discarded. Only the interfaces Rust
/// `std` imports unconditionally (`wasi:cli/*`, `wasi:io/*`) are linked; clocks, random,
/// filesystem and sockets are absent, so a component importing them fails to instantiate
/// and is refused with the name of the import.
pub(crate) fn add_deny_all_wasi(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, sync::io};
    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<PluginState, IoTable>(l, |t| {
        &mut t.table
    })?;
    io::poll::add_to_linker::<PluginState, IoTable>(l, |t| &mut t.table)?;
    io::streams::add_to_linker::<PluginState, IoTable>(l, |t| &mut t.table)?;
    cli::exit::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::environment::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_input::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_output::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    Ok(())
}
