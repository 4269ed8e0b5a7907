//! Signing, for operators and tests: key generation (HS256, ES256, EdDSA) and producing compact
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
    /// HMAC with SHA-256 (RFC 7518 section 3.2), a shared secret.
    #[value(name = "HS256")]
    Hs256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 section 3.4).
    #[value(name = "ES256")]
    Es256,
    /// Ed25519 under the polymorphic `alg` of RFC 8037.
    #[value(name = "EdDSA")]
    EdDsa,
    /// Ed25519 under the fully-specified `alg` of RFC 9864.
    #[value(name = "Ed25519")]
    Ed25519,
}

impl SignAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignAlg::Hs256 => "HS256",
            SignAlg::Es256 => "ES256",
            SignAlg::EdDsa => "EdDSA",
            SignAlg::Ed25519 => "Ed25519",
        }
    }
}

/// A signing key could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key file could not be read.
    #[error("failed to read signing key {path}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a signing key this module accepts.
    #[error("signing key {path} is invalid: {problem}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The file holds no key with the requested `kid`.
    #[error("no key with kid \"{kid}\" in {path}")]
    NoSuchKid {
        /// The key file.
        path: PathBuf,
        /// The `kid` asked for.
        kid: String,
    },
    /// The system's random source failed while generating a key.
    #[error("failed to gather randomness for key generation: {0}")]
    Random(String),
}

/// A private signing key with its id.
pub struct SigningKey {
    /// The key id (`kid`) signatures name.
    pub kid: String,
    secret: Secret,
}

enum Secret {
    Hs256(Vec<u8>),
    Es256(p256::ecdsa::SigningKey),
    /// An Ed25519 key and the `alg` it signs under (`EdDSA` or `Ed25519`).
    Ed25519(ed25519_dalek::SigningKey, SignAlg),
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
            SignAlg::EdDsa | SignAlg::Ed25519 => {
                let seed: [u8; 32] = random_bytes(32)?
                    .try_into()
                    .map_err(|_| SignError::Random("short read".into()))?;
                Secret::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed), alg)
            }
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

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SignAlg {
        match self.secret {
            Secret::Hs256(_) => SignAlg::Hs256,
            Secret::Es256(_) => SignAlg::Es256,
            Secret::Ed25519(_, alg) => alg,
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
            Secret::Ed25519(k, _) => {
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
            // RFC 8037 section 2: `x` is the 32-byte public key.
            Secret::Ed25519(k, alg) => json!({
                "kty": "OKP", "kid": self.kid, "alg": alg.as_str(), "use": "sig",
                "crv": "Ed25519", "x": b64(k.verifying_key().as_bytes()),
            }),
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
            Secret::Ed25519(k, _) => {
                use ed25519_dalek::Signer as _;
                k.sign(signing_input).to_bytes().to_vec()
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
            Some("OKP") if get("crv") == Some("Ed25519") => {
                let d: [u8; 32] = decode("d")?
                    .try_into()
                    .map_err(|_| invalid("\"d\" of an Ed25519 key is 32 bytes"))?;
                let key = ed25519_dalek::SigningKey::from_bytes(&d);
                // The key's own `alg` decides between RFC 8037's EdDSA and RFC 9864's
                // fully-specified Ed25519; EdDSA when it names none.
                let alg = match get("alg") {
                    None | Some("EdDSA") => SignAlg::EdDsa,
                    Some("Ed25519") => SignAlg::Ed25519,
                    Some(_) => return Err(invalid("an Ed25519 key's \"alg\" is EdDSA or Ed25519")),
                };
                if let Some(x) = get("x")
                    && URL_SAFE_NO_PAD.decode(x).ok().as_deref()
                        != Some(key.verifying_key().as_bytes().as_slice())
                {
                    return Err(invalid("\"x\" is not the public key of \"d\""));
                }
                Ok(Self {
                    kid: kid.to_owned(),
                    secret: Secret::Ed25519(key, alg),
                })
            }
            _ => Err(invalid(
                "only oct (HS256), EC P-256 (ES256) and OKP Ed25519 (EdDSA) private keys are \
                 supported",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ed25519_keys_round_trip_through_jwk_and_sign_rfc8037_a4() {
        for alg in [SignAlg::EdDsa, SignAlg::Ed25519] {
            let k = SigningKey::generate(alg, "k1").unwrap();
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("k.json");
            std::fs::write(&p, serde_json::to_vec(&k.private_jwk()).unwrap()).unwrap();
            let back = SigningKey::load(&p, None).unwrap();
            assert_eq!(back.public_jwk(), k.public_jwk());
            assert_eq!(back.alg(), alg);
            assert_eq!(k.public_jwk()["kty"], "OKP");
            assert!(k.public_jwk().get("d").is_none());
        }
        // RFC 8037 A.1 key, A.4 signature (Ed25519 is deterministic).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a1.json");
        std::fs::write(
            &p,
            r#"{"kty":"OKP","crv":"Ed25519","kid":"a1",
                "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
                "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        let k = SigningKey::load(&p, None).unwrap();
        let sig = k.sign_bytes(b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc");
        assert_eq!(
            b64(&sig),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
        // A mismatched public half is refused.
        std::fs::write(
            &p,
            r#"{"kty":"OKP","crv":"Ed25519","kid":"a1",
                "d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
                "x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#,
        )
        .unwrap();
        assert!(SigningKey::load(&p, None).is_err());
    }

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
