//! The plugin heap: talc over a static arena that lives in the component's initial memory,
//! falling back to `memory.grow` only when the arena is exhausted.
//!
//! Why not grow from the start (as dlmalloc and talc's dynamic source do): every plugin call
//! runs in a fresh instance, and a `memory.grow` in each call makes the host change page
//! protections twice per call (grow, then shrink back on the next instantiation), which
//! cost more than the HS256 computation itself (measured: see BENCHMARKS.md). Memory that
//! is part of the initial image costs nothing until touched, and touched pages are reset
//! in place by the host's pooling allocator.

use core::alloc::Layout;
use core::mem::MaybeUninit;
use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

/// The arena: ample for a verification of a typical task (a few KiB); larger inputs (up to
/// the host's JWS cap) spill into grown memory. Kept small because the host scans the
/// whole initial memory for dirtied pages after every call.
const ARENA_BYTES: usize = 256 * 1024;
/// WebAssembly page size.
const PAGE_BYTES: usize = 64 * 1024;

static mut ARENA: [MaybeUninit<u8>; ARENA_BYTES] = [MaybeUninit::uninit(); ARENA_BYTES];

/// First the static arena, then `memory.grow` (bounded by the host's memory limit).
#[derive(Debug)]
pub(crate) struct ArenaThenGrow {
    arena_claimed: bool,
}

// SAFETY: `acquire` only hands talc memory nothing else uses: the arena (claimed at most
// once, never referenced elsewhere) or pages freshly added by `memory.grow`. It does not
// allocate.
unsafe impl Source for ArenaThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_claimed {
            talc.source.arena_claimed = true;
            let base = (&raw mut ARENA).cast::<u8>();
            // SAFETY: the arena is a static only this allocator touches, claimed once.
            if unsafe { talc.claim(base, ARENA_BYTES) }.is_some() {
                return Ok(());
            }
        }
        // Room for the chunk, its alignment and talc's per-heap bookkeeping.
        let needed = layout.size() + layout.align() + 4 * talc::base::CHUNK_UNIT;
        let pages = needed.div_ceil(PAGE_BYTES);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return Err(());
        }
        // SAFETY: the pages [previous, previous + pages) were just added to linear memory
        // and belong to nobody else.
        let claimed = unsafe { talc.claim((previous * PAGE_BYTES) as *mut u8, pages * PAGE_BYTES) };
        claimed.map(|_| ()).ok_or(())
    }
}

#[global_allocator]
static HEAP: TalcSyncCell<ArenaThenGrow, WasmBinning> = TalcSyncCell::new_wasm(ArenaThenGrow {
    arena_claimed: false,
});
