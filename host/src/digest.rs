//! The tool digest: `sha256:` followed by exactly 64 lowercase hex digits, parsed strictly
//! before it is used for anything (a map key, a file name, an event field).
//!
//! One spelling per digest: uppercase hex, other algorithms, wrong lengths, `../` or any
//! other byte are refused, so a digest can be turned into a path component with no further
//! escaping. This module owns the type and the hashing helper; it must not touch the
//! filesystem.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// The only algorithm the armory accepts.
pub const PREFIX: &str = "sha256:";
/// Hex digits in a SHA-256 digest.
pub const HEX_LEN: usize = 64;

/// Why a string is not a digest. Messages never echo more than a short, escaped prefix of
/// the input, because it is attacker-chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The text does not start with `sha256:`.
    #[error(
        "failed to parse digest \"{shown}\": it must start with \"sha256:\" (the only \
         supported algorithm)"
    )]
    Algorithm {
        /// A short, escaped prefix of the input.
        shown: String,
    },
    /// The hex part is not 64 digits long.
    #[error(
        "failed to parse digest \"{shown}\": {len} hex digits after \"sha256:\", expected \
         exactly 64"
    )]
    Length {
        /// A short, escaped prefix of the input.
        shown: String,
        /// How many hex digits there are.
        len: usize,
    },
    /// A character of the hex part is not a lowercase hex digit.
    #[error(
        "failed to parse digest \"{shown}\": character {position} is not a lowercase hex \
         digit (0-9, a-f); write digests in lowercase, as sha256sum prints them"
    )]
    Character {
        /// A short, escaped prefix of the input.
        shown: String,
        /// The offending character's offset in the hex part, from 0.
        position: usize,
    },
}

/// A syntactically valid SHA-256 digest. Its text is `sha256:` + 64 lowercase hex digits,
/// so [`Digest::hex`] is always a safe single path component.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    text: String,
}

impl Digest {
    /// Parses `s` strictly: no surrounding whitespace, no uppercase, no other algorithm.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let shown = crate::text::printable(s);
        let Some(hex) = s.strip_prefix(PREFIX) else {
            return Err(DigestError::Algorithm { shown });
        };
        // Check characters before length so "sha256:../x" is reported as a bad character.
        if let Some(position) = hex
            .bytes()
            .position(|b| !(b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(DigestError::Character {
                shown,
                position: PREFIX.len() + position,
            });
        }
        if hex.len() != HEX_LEN {
            return Err(DigestError::Length {
                shown,
                len: hex.len(),
            });
        }
        Ok(Self { text: s.to_owned() })
    }

    /// The digest of a finished hash.
    pub(crate) fn from_hasher(hasher: Sha256) -> Self {
        let bytes = hasher.finalize();
        let mut text = String::with_capacity(PREFIX.len() + HEX_LEN);
        text.push_str(PREFIX);
        crate::text::push_hex(&mut text, &bytes);
        Self { text }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(bytes);
        Self::from_hasher(h)
    }

    /// `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 64 hex digits alone (a safe file name).
    pub fn hex(&self) -> &str {
        &self.text[PREFIX.len()..]
    }

    /// The first 12 hex digits, for tables meant for people.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

/// `sha256:<hex>` of `bytes`, the form every digest takes in events, pins and logs.
pub fn sha256_id(bytes: &[u8]) -> String {
    Digest::of(bytes).text
}

/// `sha256:` followed by exactly 64 lowercase hex digits (a pin in the configuration).
pub fn is_sha256_id(s: &str) -> bool {
    Digest::parse(s).is_ok()
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn sha256_ids() {
        assert!(is_sha256_id(&format!("sha256:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_sha256_id(&format!("sha512:{}", "0".repeat(64))));
        assert!(!is_sha256_id(&format!("sha256:{}", "0".repeat(63))));
        assert_eq!(sha256_id(b""), EMPTY);
    }

    #[test]
    fn hashes_like_sha256sum() {
        assert_eq!(Digest::of(b"").as_str(), EMPTY);
        assert_eq!(Digest::parse(EMPTY).unwrap(), Digest::of(b""));
    }

    #[test]
    fn refuses_every_other_spelling() {
        let hex = &EMPTY[7..];
        let bad = [
            hex.to_owned(),
            format!("SHA256:{hex}"),
            format!("sha512:{hex}"),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[..63]),
            format!("sha256:{hex}0"),
            format!(" {EMPTY}"),
            format!("{EMPTY}\n"),
            "sha256:../../etc/passwd".to_owned(),
            format!("sha256:../{}", &hex[3..]),
            format!("sha256:{}/", &hex[..63]),
            String::new(),
        ];
        for b in &bad {
            assert!(Digest::parse(b).is_err(), "accepted {b:?}");
        }
        assert!(matches!(
            Digest::parse(&format!("sha512:{hex}")),
            Err(DigestError::Algorithm { .. })
        ));
        assert!(matches!(
            Digest::parse(&format!("sha256:{}", &hex[..63])),
            Err(DigestError::Length { len: 63, .. })
        ));
        assert!(matches!(
            Digest::parse("sha256:../x"),
            Err(DigestError::Character { position: 7, .. })
        ));
    }

    #[test]
    fn hex_is_a_single_path_component() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.hex().len(), 64);
        assert!(!d.hex().contains('/') && !d.hex().contains('.'));
        assert_eq!(d.short(), "e3b0c44298fc");
    }
}
