//! `cabi_realloc`, the allocation entry point of the component model's canonical ABI.
//!
//! With `std`, wasi-libc exports it; a `no_std` component has to export its own. It routes
//! to the Rust global allocator (talc, see `heap`). Together with `heap` this is the only
//! unsafe code a plugin carries outside its generated bindings.

use alloc::alloc::{Layout, alloc, realloc};

/// Allocates (`old_len == 0`) or grows an allocation for the host, per the canonical ABI:
/// <https://github.com/WebAssembly/component-model/blob/main/design/mvp/CanonicalABI.md>.
///
/// # Safety
///
/// Called only by the host's canonical-ABI lowering: `old_ptr`/`old_len`/`align` describe
/// an allocation this function returned earlier (or are zero), `align` is a power of two.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if new_len == 0 {
        // A zero-sized allocation needs no memory; any aligned non-null pointer will do.
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(if old_len == 0 { new_len } else { old_len }, align)
    else {
        core::arch::wasm32::unreachable()
    };
    let ptr = if old_len == 0 {
        // SAFETY: `layout` has a non-zero size (checked above) and a valid alignment.
        unsafe { alloc(layout) }
    } else {
        // SAFETY: the caller guarantees `old_ptr` was returned by this allocator with
        // `layout`; `new_len` is non-zero.
        unsafe { realloc(old_ptr, layout, new_len) }
    };
    if ptr.is_null() {
        // Out of memory (the host's limit was reached): trap, the host reports a refusal.
        core::arch::wasm32::unreachable()
    }
    ptr
}
