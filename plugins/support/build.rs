//! On `wasm32-wasip2` a `no_std` crate gets no `memcmp`/`bcmp` from `compiler_builtins`
//! (the target expects wasi-libc to provide them). Link the static wasi-libc that ships
//! with the target: only the pure memory routines are pulled in, which import nothing.
fn main() {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if arch == "wasm32" && os == "wasi" {
        println!("cargo:rustc-link-lib=static:-bundle=c");
    }
}
