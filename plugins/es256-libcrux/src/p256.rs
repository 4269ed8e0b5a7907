//! P-256 key checks and ES256 verification on libcrux-ecdsa. Pure logic: no I/O, no unsafe.
//!
//! The same decisions as the RustCrypto backend, so that swapping backends changes no
//! verdict:
//! - only the raw 64-byte `R || S` form (RFC 7518 section 3.4); DER is refused;
//! - r and s must lie in [1, n-1], checked here before libcrux sees them;
//! - high-S signatures are accepted (JWS does not require low-S; RFC 7515 A.3 is high-S);
//! - libcrux hashes the signing input with SHA-256 itself (it is not given a digest).
#![forbid(unsafe_code)]

use alloc::string::String;
use edge_runner_plugin_support::{b64url_decode, member};
use libcrux_ecdsa::DigestAlgorithm;
use libcrux_ecdsa::p256::{PublicKey, Signature};

/// Length of one P-256 coordinate and of r or s.
const FIELD_BYTES: usize = 32;

/// The order n of the P-256 group, big-endian (SEC 2, section 2.4.2).
const ORDER: [u8; FIELD_BYTES] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

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

pub(crate) struct Key(PublicKey);

fn coordinate(text: Option<&str>, missing: &'static str) -> Result<[u8; FIELD_BYTES], KeyProblem> {
    let bytes = b64url_decode(text.ok_or(KeyProblem::Malformed(missing))?).ok_or(
        KeyProblem::Malformed("EC coordinate is not canonical base64url"),
    )?;
    // RFC 7518 section 6.2.1.2: the full-length octet string, leading zeros included.
    bytes
        .try_into()
        .map_err(|_| KeyProblem::Malformed("P-256 coordinates must be exactly 32 bytes"))
}

/// True when the big-endian `scalar` is in [1, n-1].
fn in_range(scalar: &[u8; FIELD_BYTES]) -> bool {
    scalar.iter().any(|b| *b != 0) && scalar.as_slice() < ORDER.as_slice()
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
        let x = coordinate(member(members.clone(), "x"), "EC key has no \"x\" member")?;
        let y = coordinate(member(members, "y"), "EC key has no \"y\" member")?;
        Self::from_coordinates(&x, &y)
    }

    pub(crate) fn from_coordinates(x: &[u8; 32], y: &[u8; 32]) -> Result<Self, KeyProblem> {
        let mut point = [0u8; 2 * FIELD_BYTES];
        point[..FIELD_BYTES].copy_from_slice(x);
        point[FIELD_BYTES..].copy_from_slice(y);
        // HACL*'s check: both coordinates below p and the point on the curve (the point
        // at infinity has no affine coordinates, so it cannot be given).
        libcrux_ecdsa::p256::validate_point(&point).map_err(|_| KeyProblem::NotOnCurve)?;
        Ok(Key(PublicKey(point)))
    }

    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SigProblem> {
        let raw: [u8; 2 * FIELD_BYTES] = signature
            .try_into()
            .map_err(|_| SigProblem::WrongLength(signature.len()))?;
        let mut r = [0u8; FIELD_BYTES];
        let mut s = [0u8; FIELD_BYTES];
        r.copy_from_slice(&raw[..FIELD_BYTES]);
        s.copy_from_slice(&raw[FIELD_BYTES..]);
        if !in_range(&r) || !in_range(&s) {
            return Err(SigProblem::ScalarOutOfRange);
        }
        libcrux_ecdsa::p256::verify(
            DigestAlgorithm::Sha256,
            message,
            &Signature::from_raw(r, s),
            &self.0,
        )
        .map_err(|_| SigProblem::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 appendix A.3: key, signing input and signature.
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
    const INPUT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const SIG: &str =
        "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

    fn key() -> Key {
        Key::from_jwk([("kty", "EC"), ("crv", "P-256"), ("x", X), ("y", Y)].into_iter()).unwrap()
    }

    #[test]
    fn rfc7515_a3_verifies_and_a_flipped_bit_does_not() {
        let sig = b64url_decode(SIG).unwrap();
        assert_eq!(key().verify(INPUT.as_bytes(), &sig), Ok(()));
        let mut bad = sig.clone();
        bad[40] ^= 1;
        assert_eq!(
            key().verify(INPUT.as_bytes(), &bad),
            Err(SigProblem::Mismatch)
        );
        assert_eq!(key().verify(b"other", &sig), Err(SigProblem::Mismatch));
    }

    #[test]
    fn point_off_curve_is_refused() {
        let mut y: [u8; 32] = b64url_decode(Y).unwrap().try_into().unwrap();
        y[31] ^= 1;
        let x: [u8; 32] = b64url_decode(X).unwrap().try_into().unwrap();
        assert_eq!(
            Key::from_coordinates(&x, &y).err(),
            Some(KeyProblem::NotOnCurve)
        );
        assert_eq!(
            Key::from_coordinates(&[0; 32], &[0; 32]).err(),
            Some(KeyProblem::NotOnCurve)
        );
    }

    #[test]
    fn zero_and_n_scalars_are_refused() {
        let mut one = [0u8; 32];
        one[31] = 1;
        for (r, s) in [
            ([0u8; 32], one),
            (one, [0u8; 32]),
            (ORDER, one),
            (one, ORDER),
        ] {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&r);
            sig[32..].copy_from_slice(&s);
            assert_eq!(key().verify(b"m", &sig), Err(SigProblem::ScalarOutOfRange));
        }
    }

    #[test]
    fn der_and_wrong_lengths_are_refused() {
        for n in [0, 63, 65, 70] {
            assert_eq!(
                key().verify(b"m", &alloc::vec![0x30; n]),
                Err(SigProblem::WrongLength(n))
            );
        }
    }
}
