//! Signing, for operators and tests: key generation (HS256, ES256) and producing compact
//! JWS tasks. Native RustCrypto code, deliberately *outside* the verification path:
//! nothing in `verify` or the pipeline calls into this module, and the runner never needs
//! a private key to run tasks.

use crate::json;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use p256::ecdsa::signature::Signer as _;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

/// Algorithms this module can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignAlg {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "ES256")]
    Es256,
}

impl SignAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SignAlg::Hs256 => "HS256",
            SignAlg::Es256 => "ES256",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("failed to read signing key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key {path} is invalid: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("no key with kid \"{kid}\" in {path}")]
    NoSuchKid { path: PathBuf, kid: String },
    #[error("failed to gather randomness for key generation: {0}")]
    Random(String),
}

/// A private signing key with its id.
pub struct SigningKey {
    pub kid: String,
    secret: Secret,
}

enum Secret {
    Hs256(Vec<u8>),
    Es256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg().as_str())
            .finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_bytes(n: usize) -> Result<Vec<u8>, SignError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| SignError::Random(e.to_string()))?;
    Ok(buf)
}

impl SigningKey {
    /// Generates a fresh key: 256 random bits for HS256, a P-256 key for ES256.
    pub fn generate(alg: SignAlg, kid: &str) -> Result<Self, SignError> {
        let secret = match alg {
            SignAlg::Hs256 => Secret::Hs256(random_bytes(32)?),
            SignAlg::Es256 => loop {
                // A uniformly random 32-byte string is a valid scalar unless it is zero or
                // >= n (probability ~2^-32); retry in that case.
                let candidate = random_bytes(32)?;
                if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&candidate) {
                    break Secret::Es256(k);
                }
            },
        };
        Ok(Self {
            kid: kid.to_owned(),
            secret,
        })
    }

    /// An HS256 key from raw secret bytes (tests and interop).
    pub fn hs256(kid: &str, secret: &[u8]) -> Self {
        Self {
            kid: kid.to_owned(),
            secret: Secret::Hs256(secret.to_vec()),
        }
    }

    /// An ES256 key from its 32-byte scalar.
    pub fn es256(kid: &str, scalar: &[u8]) -> Option<Self> {
        p256::ecdsa::SigningKey::from_slice(scalar)
            .ok()
            .map(|k| Self {
                kid: kid.to_owned(),
                secret: Secret::Es256(k),
            })
    }

    pub fn alg(&self) -> SignAlg {
        match self.secret {
            Secret::Hs256(_) => SignAlg::Hs256,
            Secret::Es256(_) => SignAlg::Es256,
        }
    }

    /// The private JWK (keep it off the edge host).
    pub fn private_jwk(&self) -> Value {
        let mut v = self.public_jwk();
        match &self.secret {
            Secret::Hs256(_) => {}
            Secret::Es256(k) => {
                v["d"] = Value::String(b64(&k.to_bytes()));
            }
        }
        v
    }

    /// The verification JWK for the runner's key set. For HS256 this is the shared
    /// secret itself: the key set must then be protected like a private key.
    pub fn public_jwk(&self) -> Value {
        match &self.secret {
            Secret::Hs256(k) => json!({
                "kty": "oct", "kid": self.kid, "alg": "HS256", "use": "sig", "k": b64(k),
            }),
            Secret::Es256(k) => {
                let point = k.verifying_key().to_sec1_point(false);
                let x = point.x().map(|x| b64(x)).unwrap_or_default();
                let y = point.y().map(|y| b64(y)).unwrap_or_default();
                json!({
                    "kty": "EC", "kid": self.kid, "alg": "ES256", "use": "sig",
                    "crv": "P-256", "x": x, "y": y,
                })
            }
        }
    }

    /// Signs raw bytes, returning the JWS signature bytes (raw R || S for ES256).
    pub fn sign_bytes(&self, signing_input: &[u8]) -> Vec<u8> {
        match &self.secret {
            Secret::Hs256(k) => {
                // HMAC accepts keys of any length, so this cannot fail.
                let mut mac = match <Hmac<Sha256>>::new_from_slice(k) {
                    Ok(m) => m,
                    Err(_) => return Vec::new(),
                };
                mac.update(signing_input);
                mac.finalize().into_bytes().to_vec()
            }
            Secret::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(signing_input);
                sig.to_bytes().to_vec()
            }
        }
    }

    /// Produces a compact JWS task over `payload` with header `{"alg", "kid", "typ"}`,
    /// `typ` being [`crate::manifest::TASK_TYP`].
    pub fn sign_compact(&self, payload: &[u8]) -> String {
        self.sign_typed(payload, crate::manifest::TASK_TYP)
    }

    /// Produces a compact JWS with an explicit `typ` (RFC 8725 section 3.11), so one
    /// signer's tasks and other statements can never be taken for one another.
    pub fn sign_typed(&self, payload: &[u8], typ: &str) -> String {
        let header = json!({"alg": self.alg().as_str(), "kid": self.kid, "typ": typ});
        self.sign_with_header(&header, payload)
    }

    /// Produces a compact JWS with an arbitrary header (tests build hostile headers).
    pub fn sign_with_header(&self, header: &Value, payload: &[u8]) -> String {
        let header = serde_json::to_vec(header).unwrap_or_default();
        let signing_input = format!("{}.{}", b64(&header), b64(payload));
        let sig = self.sign_bytes(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&sig))
    }

    /// Loads a private key from a JWK file, or from a JWKS file by `kid`.
    pub fn load(path: &Path, kid: Option<&str>) -> Result<Self, SignError> {
        let bytes = std::fs::read(path).map_err(|source| SignError::Read {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |problem: &str| SignError::Invalid {
            path: path.to_owned(),
            problem: problem.to_owned(),
        };
        let doc = json::parse_strict(&bytes, 8).map_err(|e| invalid(&e.to_string()))?;
        let candidates: Vec<&Map<String, Value>> = match doc.get("keys") {
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_object).collect(),
            _ => doc.as_object().into_iter().collect(),
        };
        let chosen = match kid {
            Some(want) => candidates
                .into_iter()
                .find(|k| k.get("kid").and_then(Value::as_str) == Some(want))
                .ok_or_else(|| SignError::NoSuchKid {
                    path: path.to_owned(),
                    kid: want.to_owned(),
                })?,
            None if candidates.len() == 1 => candidates[0],
            None => return Err(invalid("holds several keys; pass --kid")),
        };
        let get = |name: &str| chosen.get(name).and_then(Value::as_str);
        let kid = kid
            .or_else(|| get("kid"))
            .ok_or_else(|| invalid("the key has no \"kid\"; pass --kid"))?;
        let decode = |name: &str| {
            get(name)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or_else(|| invalid(&format!("missing or non-base64url \"{name}\"")))
        };
        match get("kty") {
            Some("oct") => {
                let k = decode("k")?;
                if k.len() < 32 {
                    return Err(invalid("HS256 keys need at least 256 bits"));
                }
                Ok(Self::hs256(kid, &k))
            }
            Some("EC") if get("crv") == Some("P-256") => {
                let d = decode("d")?;
                Self::es256(kid, &d).ok_or_else(|| invalid("\"d\" is not a valid P-256 scalar"))
            }
            _ => Err(invalid(
                "only oct (HS256) and EC P-256 (ES256) private keys are supported",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_es256_key_round_trips_through_jwk() {
        let k = SigningKey::generate(SignAlg::Es256, "k1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        std::fs::write(&p, serde_json::to_vec(&k.private_jwk()).unwrap()).unwrap();
        let back = SigningKey::load(&p, None).unwrap();
        assert_eq!(back.public_jwk(), k.public_jwk());
        assert!(k.public_jwk().get("d").is_none());
    }
}
