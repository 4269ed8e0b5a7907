//! HMAC-SHA-256 key checks and verification. Pure logic: no I/O, no unsafe, no allocation
//! of secrets beyond the decoded key.
#![forbid(unsafe_code)]

use alloc::vec::Vec;
use edge_runner_plugin_support::{b64url_decode, member};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// RFC 7518 section 3.2: "A key of the same size as the hash output (for instance, 256
/// bits for "HS256") or larger MUST be used with this algorithm."
pub(crate) const MIN_KEY_BYTES: usize = 32;
/// HMAC-SHA-256 output length. A truncated MAC is refused, never compared as a prefix.
pub(crate) const MAC_BYTES: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    WrongType(alloc::string::String),
    Malformed(&'static str),
    TooShort(usize),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SigProblem {
    WrongLength(usize),
    Mismatch,
}

pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn from_jwk<'a>(
        members: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Self, KeyProblem> {
        match member(members.clone(), "kty") {
            Some("oct") => {}
            Some(other) => {
                return Err(KeyProblem::WrongType(alloc::format!(
                    "HS256 needs a key of type \"oct\", got \"{other}\""
                )));
            }
            None => return Err(KeyProblem::Malformed("key has no \"kty\" member")),
        }
        let k = member(members, "k").ok_or(KeyProblem::Malformed("oct key has no \"k\" member"))?;
        let bytes =
            b64url_decode(k).ok_or(KeyProblem::Malformed("\"k\" is not canonical base64url"))?;
        Self::from_bytes(bytes)
    }

    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyProblem> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyProblem::TooShort(bytes.len() * 8));
        }
        Ok(Self(bytes))
    }

    pub(crate) fn verify(&self, message: &[u8], tag: &[u8]) -> Result<(), SigProblem> {
        if tag.len() != MAC_BYTES {
            return Err(SigProblem::WrongLength(tag.len()));
        }
        // `new_from_slice` accepts any key length for HMAC; the length was checked above.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            return Err(SigProblem::Mismatch);
        };
        mac.update(message);
        // `verify_slice` compares in constant time (subtle::ConstantTimeEq).
        mac.verify_slice(tag).map_err(|_| SigProblem::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            Key::from_bytes(alloc::vec![0; 31]).err(),
            Some(KeyProblem::TooShort(248))
        );
        assert!(Key::from_bytes(alloc::vec![0; 32]).is_ok());
    }

    #[test]
    fn truncated_mac_is_refused() {
        let key = Key::from_bytes(alloc::vec![7; 32]).unwrap();
        assert_eq!(key.verify(b"m", &[0; 16]), Err(SigProblem::WrongLength(16)));
        assert_eq!(key.verify(b"m", &[0; 32]), Err(SigProblem::Mismatch));
    }

    #[test]
    fn wrong_key_type_is_refused() {
        let m = [("kty", "EC"), ("k", "AAAA")];
        assert!(matches!(
            Key::from_jwk(m.iter().copied()),
            Err(KeyProblem::WrongType(_))
        ));
    }
}
