//! Runtime pieces shared by every edge-runner plugin: the global allocator (`heap`),
//! `cabi_realloc` (`abi`) and panic handler of a `no_std` component, strict base64url
//! decoding, JWK member lookup, and a small JSON writer for event mappers.
//!
//! Plugins are built `no_std` for `wasm32-wasip2` so that the component imports nothing at
//! all: no WASI interface, hence no ambient authority and the cheapest instantiation. This
//! crate must not pull in `std` or any WASI import. It holds no cryptography.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod abi;
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod heap;
pub mod json;

use alloc::vec::Vec;
use base64::Engine as _;

/// A panic in a plugin becomes a trap, which the host reports as a refusal. Nothing is
/// printed: the component has no output stream.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

/// Decodes unpadded, canonical base64url (RFC 7515 section 2 and appendix C): the URL-safe
/// alphabet only, no `=` padding, no whitespace, and unused trailing bits must be zero, so
/// every byte string has exactly one accepted encoding.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// Encodes `data` as standard, padded base64 (RFC 4648 section 4), the encoding of
/// CloudEvents `data_base64` and of non-UTF-8 output in event data.
pub fn b64_encode(data: &[u8]) -> alloc::string::String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// True when `s` may be a CloudEvents string attribute (v1.0 "Type System"): non-empty,
/// and free of control characters (U+0000-U+001F, U+007F-U+009F) and Unicode
/// noncharacters. (Rust strings cannot hold surrogates.)
pub fn is_attribute_string(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            let n = c as u32;
            !(c.is_control() || (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE)
        })
}

/// Finds the value of JWK member `name` in a list of `(name, value)` pairs.
pub fn member<'a, I>(members: I, name: &str) -> Option<&'a str>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    members
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64url_is_canonical_only() {
        assert_eq!(b64url_decode("AQID").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(b64url_decode("_-8").as_deref(), Some(&[0xff, 0xef][..]));
        // padding, standard alphabet, whitespace, non-zero trailing bits
        assert!(b64url_decode("AQ==").is_none());
        assert!(b64url_decode("/+8").is_none());
        assert!(b64url_decode("AQ ID").is_none());
        assert!(b64url_decode("AR").is_none());
        assert_eq!(b64url_decode("AQ").as_deref(), Some(&[1u8][..]));
    }

    #[test]
    fn attribute_strings() {
        assert!(is_attribute_string("task-1 é"));
        assert!(!is_attribute_string(""));
        assert!(!is_attribute_string("a\nb"));
        assert!(!is_attribute_string("a\u{85}b"));
        assert!(!is_attribute_string("a\u{fffe}"));
        assert!(!is_attribute_string("a\u{fdd0}"));
        assert!(!is_attribute_string("\u{10ffff}"));
    }

    #[test]
    fn member_lookup() {
        let m = [("kty", "EC"), ("crv", "P-256")];
        assert_eq!(member(m, "crv"), Some("P-256"));
        assert_eq!(member(m, "x"), None);
    }
}
