//! The one wasmtime `Engine` and its configuration: narrowed to the features plugins use,
//! with fuel metering and the pooling allocator. Per-call limits (fuel, memory) live in
//! `store`, where they are enforced.

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// Resource limits applied to every plugin call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Fuel per call (roughly one unit per WebAssembly instruction). Bounds the time a
    /// looping plugin can take: 50M units is tens of milliseconds here.
    pub fuel: u64,
    /// Linear memory cap per instance, in bytes.
    pub memory_bytes: usize,
    /// Largest plugin file accepted, in bytes.
    pub max_component_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            fuel: 50_000_000,
            memory_bytes: 32 * 1024 * 1024,
            max_component_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Instances that may exist at once across the process (each call instantiates afresh
/// and drops the instance when it returns).
const POOL_INSTANCES: u32 = 64;
/// Bytes of each memory and table slot kept resident between calls.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;
/// Native stack a plugin may use.
const MAX_WASM_STACK: usize = 512 * 1024;

/// How long the process using the engine lives, which decides how instances get memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// A command that makes a handful of calls and exits (`edge-runner run`, `verify`):
    /// memories are mapped on demand. Setting up the pool costs 0.25-0.6 ms (its slots,
    /// tables and page-map scanner) and only pays back over many calls.
    OneShot,
    /// A process making many calls (an embedding service, the benchmarks): the pooling
    /// allocator, whose slots keep dirtied pages resident between calls.
    LongLived,
}

/// Builds the engine. Features a plugin does not need are off so that a component using
/// them fails to load instead of widening the attack surface.
pub(crate) fn build(limits: &PluginLimits, residency: Residency) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_multi_memory(false)
        .wasm_backtrace_max_frames(None);

    if residency == Residency::LongLived {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool(limits)));
    }
    Engine::new(&config)
}

/// Pooling: instantiation reuses pre-reserved slots (a few microseconds) instead of
/// mmap-ing fresh memory on every call.
fn pool(limits: &PluginLimits) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(POOL_INSTANCES)
        .total_core_instances(POOL_INSTANCES * 4)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .max_memory_size(limits.memory_bytes)
        // No fiber stacks: every call is synchronous and runs on the caller's stack. The
        // default (1,000 stacks, each with a guard page set by its own `mprotect`) cost
        // ~4 ms per process to create and left ~2,000 mappings that every later fork (the
        // native sandbox's clone) copied and every exit tore down. An async call would
        // fail to get a stack, loudly; none is made.
        .total_stacks(0)
        // Reset the pages a call dirtied in place (found with PAGEMAP_SCAN where the
        // kernel has it, 6.7+) instead of madvise-ing them away: the next call in the
        // slot then takes no page faults. Measured: see BENCHMARKS.md.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// A stable identifier of everything that makes compiled code compatible with this engine
/// (wasmtime version, target, settings), for the compile-cache key.
pub(crate) fn fingerprint(engine: &Engine) -> String {
    use std::hash::{DefaultHasher, Hash as _, Hasher as _};
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("wasmtime{}-{:016x}", wasmtime_version(), h.finish())
}

fn wasmtime_version() -> &'static str {
    // Pinned in Cargo.toml; recorded so a wasmtime upgrade never reuses old artifacts
    // even if the compatibility hash happened to collide.
    "48.0.8"
}
