//! P-256 key checks and ES256 verification. Pure logic: no I/O, no unsafe.
//!
//! Deliberate choices:
//! - Only the raw 64-byte `R || S` form is accepted (RFC 7518 section 3.4); DER is refused,
//!   so one signature has one encoding.
//! - r and s must lie in [1, n-1] (checked by `Signature::from_slice`).
//! - High-S signatures are accepted: JWS does not require low-S, and RFC 7515 appendix A.3
//!   itself is high-S. JWS gives no malleability guarantee to rely on; replay protection
//!   is by nonce, not by signature bytes.
#![forbid(unsafe_code)]

use alloc::string::String;
use edge_runner_plugin_support::{b64url_decode, member};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};

/// Length of one P-256 coordinate and of r or s.
const FIELD_BYTES: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    WrongType(String),
    Malformed(&'static str),
    NotOnCurve,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SigProblem {
    WrongLength(usize),
    ScalarOutOfRange,
    Mismatch,
}

pub(crate) struct Key(VerifyingKey);

fn coordinate(text: Option<&str>, name: &'static str) -> Result<[u8; FIELD_BYTES], KeyProblem> {
    let text = text.ok_or(match name {
        "x" => KeyProblem::Malformed("EC key has no \"x\" member"),
        _ => KeyProblem::Malformed("EC key has no \"y\" member"),
    })?;
    let bytes = b64url_decode(text).ok_or(KeyProblem::Malformed(
        "EC coordinate is not canonical base64url",
    ))?;
    // RFC 7518 section 6.2.1.2: the coordinate is the full-length octet string (32 bytes
    // for P-256), leading zeros included.
    bytes
        .try_into()
        .map_err(|_| KeyProblem::Malformed("P-256 coordinates must be exactly 32 bytes"))
}

impl Key {
    pub(crate) fn from_jwk<'a>(
        members: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Result<Self, KeyProblem> {
        match member(members.clone(), "kty") {
            Some("EC") => {}
            Some(other) => {
                return Err(KeyProblem::WrongType(alloc::format!(
                    "ES256 needs a key of type \"EC\", got \"{other}\""
                )));
            }
            None => return Err(KeyProblem::Malformed("key has no \"kty\" member")),
        }
        match member(members.clone(), "crv") {
            Some("P-256") => {}
            Some(other) => {
                return Err(KeyProblem::WrongType(alloc::format!(
                    "ES256 needs curve \"P-256\", got \"{other}\""
                )));
            }
            None => return Err(KeyProblem::Malformed("EC key has no \"crv\" member")),
        }
        let x = coordinate(member(members.clone(), "x"), "x")?;
        let y = coordinate(member(members, "y"), "y")?;
        Self::from_coordinates(&x, &y)
    }

    pub(crate) fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, KeyProblem> {
        let mut sec1 = [0u8; 1 + 2 * FIELD_BYTES];
        sec1[0] = 0x04; // uncompressed point
        sec1[1..33].copy_from_slice(x);
        sec1[33..].copy_from_slice(y);
        // Rejects coordinates >= p, points not on the curve and the identity.
        VerifyingKey::from_sec1_bytes(&sec1)
            .map(Key)
            .map_err(|_| KeyProblem::NotOnCurve)
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SigProblem> {
        if signature.len() != 2 * FIELD_BYTES {
            return Err(SigProblem::WrongLength(signature.len()));
        }
        let sig = Signature::from_slice(signature).map_err(|_| SigProblem::ScalarOutOfRange)?;
        self.0
            .verify(message, &sig)
            .map_err(|_| SigProblem::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 appendix A.3 key.
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn key() -> Key {
        Key::from_jwk([("kty", "EC"), ("crv", "P-256"), ("x", X), ("y", Y)].into_iter()).unwrap()
    }

    #[test]
    fn point_off_curve_is_refused() {
        let mut y = b64url_decode(Y).unwrap();
        y[31] ^= 1;
        let y: [u8; 32] = y.try_into().unwrap();
        let x: [u8; 32] = b64url_decode(X).unwrap().try_into().unwrap();
        assert_eq!(
            Key::from_coordinates(&x, &y).err(),
            Some(KeyProblem::NotOnCurve)
        );
    }

    #[test]
    fn wrong_curve_is_refused() {
        let r = Key::from_jwk([("kty", "EC"), ("crv", "P-384"), ("x", X), ("y", Y)].into_iter());
        assert!(matches!(r, Err(KeyProblem::WrongType(_))));
    }

    #[test]
    fn zero_and_n_scalars_are_refused() {
        let n = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        let one = {
            let mut o = [0u8; 32];
            o[31] = 1;
            o
        };
        for (r, s) in [([0u8; 32], one), (one, [0u8; 32]), (n, one), (one, n)] {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            sig[32..].copy_from_slice(&s);
            assert_eq!(key().verify(b"m", &sig), Err(SigProblem::ScalarOutOfRange));
        }
    }

    #[test]
    fn der_and_wrong_lengths_are_refused() {
        assert_eq!(
            key().verify(b"m", &[0x30; 70]),
            Err(SigProblem::WrongLength(70))
        );
        assert_eq!(
            key().verify(b"m", &[1; 63]),
            Err(SigProblem::WrongLength(63))
        );
        assert_eq!(
            key().verify(b"m", &[1; 65]),
            Err(SigProblem::WrongLength(65))
        );
    }
}
