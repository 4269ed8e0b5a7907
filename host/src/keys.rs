//! The verification key set: a JWKS file (RFC 7517 section 5).
//!
//! Every key needs a `kid` (selection is a plain map lookup, never a path or a URL) and an
//! `alg` (the key, never the token header, fixes the algorithm: RFC 8725 section 3.1).
//! Keys are checked structurally here and cryptographically by the verifier plugin for
//! their algorithm (`KeySet::validate`), so a bad key set refuses to load before any task
//! is seen. This module does no signature verification and must not read key material
//! from anywhere but the configured file.

use crate::json;
use crate::text::printable;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Caps on the key set file.
pub const MAX_KEYSET_BYTES: u64 = 1024 * 1024;
/// Most keys in one key set.
pub const MAX_KEYS: usize = 256;
/// Longest `kid` accepted, in bytes.
pub const MAX_KID_LEN: usize = 128;

/// Members that only a private key has (RFC 7518 section 6). A verification key set on
/// an edge host must hold public keys only; the exception is `k`, the shared secret of
/// an HMAC (`oct`) key, which cannot be otherwise.
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "r", "t"];

/// A key set that failed to load. These are configuration errors, not task refusals.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The key set, or a directory above it, could have been swapped by another user.
    #[error(transparent)]
    Untrusted(#[from] crate::fsperm::PermError),
    /// The key set file could not be read.
    #[error("failed to read key set {path}")]
    Read {
        /// The key set file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key set file is over [`MAX_KEYSET_BYTES`].
    #[error("key set {path} is {size} bytes; the limit is {MAX_KEYSET_BYTES}")]
    TooLarge {
        /// The key set file.
        path: PathBuf,
        /// Its size, in bytes.
        size: u64,
    },
    /// The key set holds an HMAC secret and is readable by group or others.
    #[error(
        "key set {path} holds shared HMAC secrets (kty \"oct\") but is readable by group or \
         others (mode {mode:04o}); fix with: chmod 600 {path}"
    )]
    SecretReadable {
        /// The key set file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a JWKS this runner accepts.
    #[error("key set {path} is not a valid JWKS: {problem}")]
    Malformed {
        /// The key set file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// One key in the set was refused.
    #[error("key set {path}: key #{index} ({kid}) is refused: {problem}")]
    BadKey {
        /// The key set file.
        path: PathBuf,
        /// The key's position in `keys`, from 0.
        index: usize,
        /// The key's `kid`, made printable (`?` when it has none).
        kid: String,
        /// Why it was refused.
        problem: String,
    },
}

/// One verification key.
#[derive(Clone)]
pub struct Key {
    /// The key id, unique within the set.
    pub kid: String,
    /// The JWS algorithm the key is for; the key, never the token header, decides it.
    pub alg: String,
    /// The JWK key type (`kty`).
    pub kty: String,
    /// Every member whose value is a string, as handed to the verifier plugin.
    pub members: Vec<(String, String)>,
}

impl fmt::Debug for Key {
    // Never print key material: `k` of an HMAC key is a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("kty", &self.kty)
            .finish_non_exhaustive()
    }
}

/// The configured keys, by `kid`. Several keys may be live at once (rotation).
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    source: PathBuf,
    keys: BTreeMap<String, Key>,
}

impl KeySet {
    /// Reads and structurally checks a JWKS file. The file is opened once, through a walk
    /// that checks it and every directory above it (`fsperm::open_file`: a user who owns
    /// a parent directory cannot swap it), and read through that descriptor only.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        let (file, meta) = crate::fsperm::open_file(path, "key set")?;
        Self::read_from(file, &meta, path)
    }

    /// Reads a key set from a descriptor already opened and checked.
    fn read_from(
        file: std::fs::File,
        meta: &std::fs::Metadata,
        path: &Path,
    ) -> Result<Self, KeysError> {
        use std::io::Read as _;
        let read = |source| KeysError::Read {
            path: path.to_owned(),
            source,
        };
        if meta.len() > MAX_KEYSET_BYTES {
            return Err(KeysError::TooLarge {
                path: path.to_owned(),
                size: meta.len(),
            });
        }
        let mut bytes = Vec::new();
        file.take(MAX_KEYSET_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_KEYSET_BYTES {
            return Err(KeysError::TooLarge {
                path: path.to_owned(),
                size: bytes.len() as u64,
            });
        }
        let set = Self::parse(&bytes, path)?;
        // An HMAC key set is a secret, like an ssh private key.
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o7777;
        if set.iter().any(|k| k.kty == "oct") && mode & 0o077 != 0 {
            return Err(KeysError::SecretReadable {
                path: path.to_owned(),
                mode,
            });
        }
        Ok(set)
    }

    /// Parses a JWKS document; `source` names it in errors.
    pub fn parse(bytes: &[u8], source: &Path) -> Result<Self, KeysError> {
        let malformed = |problem: String| KeysError::Malformed {
            path: source.to_owned(),
            problem,
        };
        let doc = json::parse_strict(bytes, 8).map_err(|e| malformed(e.to_string()))?;
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err(malformed(
                "expected an object with a \"keys\" array (RFC 7517 section 5)".into(),
            ));
        };
        if list.is_empty() {
            return Err(malformed("the \"keys\" array is empty".into()));
        }
        if list.len() > MAX_KEYS {
            return Err(malformed(format!(
                "{} keys; the limit is {MAX_KEYS}",
                list.len()
            )));
        }
        let mut keys = BTreeMap::new();
        for (index, entry) in list.iter().enumerate() {
            let key = parse_key(entry).map_err(|(kid, problem)| KeysError::BadKey {
                path: source.to_owned(),
                index,
                kid,
                problem,
            })?;
            if keys.contains_key(&key.kid) {
                return Err(KeysError::BadKey {
                    path: source.to_owned(),
                    index,
                    kid: key.kid.clone(),
                    problem: "another key has the same kid".into(),
                });
            }
            keys.insert(key.kid.clone(), key);
        }
        Ok(Self {
            source: source.to_owned(),
            keys,
        })
    }

    /// Looks a key up by `kid`. An exact, case-sensitive map lookup.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    /// The keys, in `kid` order.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.values()
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The file this key set was read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Reports a key refused by its plugin as a load error naming the key.
    pub fn bad_key(&self, kid: &str, problem: impl Into<String>) -> KeysError {
        let index = self.keys.keys().position(|k| k == kid).unwrap_or(0);
        KeysError::BadKey {
            path: self.source.clone(),
            index,
            kid: kid.to_owned(),
            problem: problem.into(),
        }
    }
}

/// Checks one JWK; on error returns (a printable kid, the problem).
fn parse_key(entry: &Value) -> Result<Key, (String, String)> {
    let Value::Object(members) = entry else {
        return Err(("?".into(), "not a JSON object".into()));
    };
    let kid = match members.get("kid") {
        Some(Value::String(k)) => k.clone(),
        Some(_) => return Err(("?".into(), "\"kid\" is not a string".into())),
        None => return Err(("?".into(), "no \"kid\"; every key needs one".into())),
    };
    let shown = printable(&kid);
    let fail = |problem: String| (shown.clone(), problem);
    if kid.is_empty() || kid.len() > MAX_KID_LEN {
        return Err(fail(format!("\"kid\" must be 1 to {MAX_KID_LEN} bytes")));
    }
    if !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(fail(
            "\"kid\" must be printable ASCII without spaces".into(),
        ));
    }
    let string = |name: &str| -> Result<Option<String>, (String, String)> {
        match members.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(fail(format!("\"{name}\" is not a string"))),
        }
    };
    let kty = string("kty")?.ok_or_else(|| fail("no \"kty\"".into()))?;
    let alg = string("alg")?.ok_or_else(|| {
        fail(
            "no \"alg\"; every key must name its algorithm (the key decides, not the token)".into(),
        )
    })?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(fail("\"alg\" is \"none\"".into()));
    }
    if let Some(u) = string("use")?
        && u != "sig"
    {
        return Err(fail(format!(
            "\"use\" is \"{}\"; verification keys need \"sig\"",
            printable(&u)
        )));
    }
    if let Some(ops) = members.get("key_ops") {
        let allows_verify = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !allows_verify {
            return Err(fail("\"key_ops\" does not include \"verify\"".into()));
        }
    }
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| members.contains_key(**m)) {
        return Err(fail(format!(
            "holds the private member \"{m}\"; the key set must contain public keys only \
             (keep signing keys off the edge host)"
        )));
    }
    let members = members
        .iter()
        .filter_map(|(n, v)| v.as_str().map(|s| (n.clone(), s.to_owned())))
        .collect();
    Ok(Key {
        kid,
        alg,
        kty,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Result<KeySet, KeysError> {
        KeySet::parse(doc.as_bytes(), Path::new("test.jwks"))
    }

    #[test]
    fn rotation_keys_load() {
        let ks = parse(
            r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"AAAA"},
                        {"kty":"oct","kid":"b","alg":"HS256","k":"AAAA","use":"sig"}]}"#,
        )
        .unwrap();
        assert_eq!(ks.len(), 2);
        assert!(ks.get("a").is_some() && ks.get("b").is_some());
        assert!(ks.get("A").is_none());
    }

    #[test]
    fn bad_sets_are_refused_naming_the_key() {
        for (doc, needle) in [
            (r#"{"keys":[{"kty":"oct","alg":"HS256","k":"AA"}]}"#, "kid"),
            (r#"{"keys":[{"kty":"oct","kid":"x","k":"AA"}]}"#, "alg"),
            (
                r#"{"keys":[{"kty":"oct","kid":"x","alg":"none","k":"AA"}]}"#,
                "none",
            ),
            (
                r#"{"keys":[{"kty":"EC","kid":"x","alg":"ES256","d":"AA"}]}"#,
                "private",
            ),
            (
                r#"{"keys":[{"kty":"oct","kid":"x","alg":"HS256","use":"enc"}]}"#,
                "use",
            ),
            (
                r#"{"keys":[{"kty":"oct","kid":"x","alg":"HS256","key_ops":["sign"]}]}"#,
                "key_ops",
            ),
            (
                r#"{"keys":[{"kty":"oct","kid":"x","alg":"HS256"},{"kty":"oct","kid":"x","alg":"HS256"}]}"#,
                "same kid",
            ),
            (
                r#"{"keys":[{"kty":"oct","kid":"../../etc/passwd x","alg":"HS256"}]}"#,
                "printable",
            ),
            (r#"{"keys":[]}"#, "empty"),
            (
                r#"{"keys":[{"kty":"oct","kid":"x","kid":"y","alg":"HS256"}]}"#,
                "duplicate",
            ),
        ] {
            let err = parse(doc).unwrap_err().to_string();
            assert!(err.contains(needle), "{doc}: {err}");
            assert!(err.contains("test.jwks"), "{err}");
        }
    }

    #[test]
    fn a_readable_hmac_key_set_is_refused_but_a_public_one_is_not() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let oct = dir.path().join("oct.json");
        std::fs::write(
            &oct,
            r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"AAAA"}]}"#,
        )
        .unwrap();
        std::fs::set_permissions(&oct, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeySet::load(&oct).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&oct, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KeySet::load(&oct).is_ok());
        let ec = dir.path().join("ec.json");
        std::fs::write(
            &ec,
            r#"{"keys":[{"kty":"EC","kid":"b","alg":"ES256","crv":"P-256","x":"AA","y":"AA"}]}"#,
        )
        .unwrap();
        std::fs::set_permissions(&ec, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            KeySet::load(&ec).is_ok(),
            "public keys may be world-readable"
        );
    }

    #[test]
    fn debug_never_prints_secrets() {
        let ks =
            parse(r#"{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"c2VjcmV0c2VjcmV0"}]}"#)
                .unwrap();
        let shown = format!("{ks:?}");
        assert!(!shown.contains("c2VjcmV0c2VjcmV0"), "{shown}");
    }
}
