//! Ed25519 key checks and verification (RFC 8032 section 5.1.7, keys per RFC 8037 section
//! 2). Pure logic: no I/O, no unsafe.
//!
//! Deliberate choices:
//! - Strict verification (`verify_strict`): S must be below the group order L (no scalar
//!   malleability), and neither R nor the public key may be of small order, so one message
//!   and key have no "signature valid for every message".
//! - The public key must be the canonical encoding of a point (y below p): a key set
//!   holds one spelling of each key.
//! - Only the 64-byte `R || S` signature; anything else is malformed.
#![forbid(unsafe_code)]

use alloc::string::String;
use ed25519_dalek::{Signature, VerifyingKey};
use edge_runner_plugin_support::{b64url_decode, member};

/// Bytes of an Ed25519 public key and of a signature.
const KEY_BYTES: usize = 32;
const SIG_BYTES: usize = 64;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    WrongType(String),
    Malformed(&'static str),
    Invalid(&'static str),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SigProblem {
    WrongLength(usize),
    Mismatch,
}

pub(crate) struct Key(VerifyingKey);

impl Key {
    pub(crate) fn from_jwk<'a>(
        members: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Self, KeyProblem> {
        match member(members.clone(), "kty") {
            Some("OKP") => {}
            Some(other) => {
                return Err(KeyProblem::WrongType(alloc::format!(
                    "EdDSA needs a key of type \"OKP\" (RFC 8037), got \"{other}\""
                )));
            }
            None => return Err(KeyProblem::Malformed("key has no \"kty\" member")),
        }
        match member(members.clone(), "crv") {
            Some("Ed25519") => {}
            Some(other) => {
                return Err(KeyProblem::WrongType(alloc::format!(
                    "this plugin implements curve \"Ed25519\" only, got \"{other}\""
                )));
            }
            None => return Err(KeyProblem::Malformed("OKP key has no \"crv\" member")),
        }
        let x = member(members, "x").ok_or(KeyProblem::Malformed("OKP key has no \"x\" member"))?;
        let x =
            b64url_decode(x).ok_or(KeyProblem::Malformed("\"x\" is not canonical base64url"))?;
        let x: [u8; KEY_BYTES] = x
            .try_into()
            .map_err(|_| KeyProblem::Malformed("an Ed25519 public key is exactly 32 bytes"))?;
        Self::from_bytes(&x)
    }

    pub(crate) fn from_bytes(x: &[u8; KEY_BYTES]) -> Result<Self, KeyProblem> {
        let key = VerifyingKey::from_bytes(x)
            .map_err(|_| KeyProblem::Invalid("\"x\" is not the encoding of an Ed25519 point"))?;
        if key.to_edwards().compress().as_bytes() != x {
            return Err(KeyProblem::Invalid(
                "\"x\" is a non-canonical encoding (y is not below 2^255 - 19)",
            ));
        }
        if key.is_weak() {
            return Err(KeyProblem::Invalid(
                "the public key is a point of small order, which verifies forged signatures",
            ));
        }
        Ok(Key(key))
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SigProblem> {
        let raw: [u8; SIG_BYTES] = signature
            .try_into()
            .map_err(|_| SigProblem::WrongLength(signature.len()))?;
        self.0
            .verify_strict(message, &Signature::from_bytes(&raw))
            .map_err(|_| SigProblem::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8037 appendix A.1 (key) and A.4 (signature of the JWS in A.4).
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const INPUT: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
    const SIG: &str =
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

    fn key() -> Key {
        Key::from_jwk([("kty", "OKP"), ("crv", "Ed25519"), ("x", X)].into_iter()).unwrap()
    }

    #[test]
    fn rfc8037_a4_verifies_and_a_flipped_bit_does_not() {
        let sig = b64url_decode(SIG).unwrap();
        assert_eq!(key().verify(INPUT.as_bytes(), &sig), Ok(()));
        for i in [0, 31, 32, 63] {
            let mut bad = sig.clone();
            bad[i] ^= 1;
            assert_eq!(
                key().verify(INPUT.as_bytes(), &bad),
                Err(SigProblem::Mismatch)
            );
        }
        assert_eq!(key().verify(b"other", &sig), Err(SigProblem::Mismatch));
    }

    #[test]
    fn s_at_or_above_the_order_is_refused() {
        // S + L: the same signature, malleated (RFC 8032 section 5.1.7 requires S < L).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut sig = b64url_decode(SIG).unwrap();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(sig[32 + i]) + u16::from(L[i]) + carry;
            sig[32 + i] = v as u8;
            carry = v >> 8;
        }
        assert_eq!(
            key().verify(INPUT.as_bytes(), &sig),
            Err(SigProblem::Mismatch)
        );
    }

    #[test]
    fn wrong_types_curves_and_weak_keys_are_refused() {
        let r = Key::from_jwk([("kty", "EC"), ("crv", "Ed25519"), ("x", X)].into_iter());
        assert!(matches!(r, Err(KeyProblem::WrongType(_))));
        let r = Key::from_jwk([("kty", "OKP"), ("crv", "X25519"), ("x", X)].into_iter());
        assert!(matches!(r, Err(KeyProblem::WrongType(_))));
        // The identity (y = 1): small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            Key::from_bytes(&identity),
            Err(KeyProblem::Invalid(_))
        ));
        // y = p + 1 encodes the identity non-canonically.
        let mut noncanonical = [0xffu8; 32];
        noncanonical[0] = 0xee;
        noncanonical[31] = 0x7f;
        assert!(matches!(
            Key::from_bytes(&noncanonical),
            Err(KeyProblem::Invalid(_))
        ));
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for n in [0, 63, 65] {
            assert_eq!(
                key().verify(b"m", &alloc::vec![0; n]),
                Err(SigProblem::WrongLength(n))
            );
        }
    }
}
