//! Signature verification, the first gate of the pipeline: a parsed JWS and the key set
//! in, a [`VerifiedJws`] out (or a refusal).
//!
//! The key is selected by `kid` (an exact map lookup), and the *key's* `alg` decides
//! which plugin verifies: a header `alg` that differs is refused before any plugin runs
//! (RFC 8725 section 3.1; this is what stops "HS256 keyed with the ES256 public key").
//! A [`VerifiedJws`] can only be built here, so no later stage can see an unverified
//! payload. This module does no cryptography itself.

use crate::jws::ParsedJws;
use crate::keys::{KeySet, KeysError};
use crate::plugins::{Verifiers, VerifyFailure};
use crate::reason::{Reason, Refusal};
use crate::text::printable;

/// A JWS whose signature verified with a configured key.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    jws: ParsedJws,
    kid: String,
    alg: String,
    plugin: String,
}

impl VerifiedJws {
    /// The exact compact serialization that verified.
    pub fn compact(&self) -> &str {
        &self.jws.compact
    }
    /// The protected header's `typ`, if any.
    pub fn typ(&self) -> Option<&str> {
        self.jws.header.typ.as_deref()
    }
    /// The verified payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.jws.payload
    }
    /// The id of the key that verified it.
    pub fn kid(&self) -> &str {
        &self.kid
    }
    /// The algorithm (the key's).
    pub fn alg(&self) -> &str {
        &self.alg
    }
    /// The plugin that verified it.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

/// The key set bound to the verifier plugins, every key already validated by its plugin.
#[derive(Debug)]
pub struct SignatureVerifier {
    keys: KeySet,
    verifiers: Verifiers,
}

impl SignatureVerifier {
    /// Binds `keys` to `verifiers`, asking each key's plugin to validate it. A key whose
    /// algorithm has no plugin, or that its plugin refuses, fails the whole key set.
    pub fn new(keys: KeySet, verifiers: Verifiers) -> Result<Self, KeysError> {
        for key in keys.iter() {
            let Some(plugin) = verifiers.get(&key.alg) else {
                let known = verifiers.available();
                return Err(keys.bad_key(
                    &key.kid,
                    format!(
                        "no verifier plugin implements \"{}\" (available: {}); add a plugin \
                         for it in the configuration",
                        printable(&key.alg),
                        known.join(", ")
                    ),
                ));
            };
            match verifiers.validate_key(plugin, &key.alg, &key.members) {
                Ok(()) => {}
                Err(VerifyFailure::KeyRefused(why)) => {
                    return Err(keys.bad_key(&key.kid, format!("{} says: {why}", plugin.name)));
                }
                Err(VerifyFailure::Fault(fault)) => {
                    return Err(keys.bad_key(&key.kid, fault.to_string()));
                }
                Err(other) => {
                    return Err(keys.bad_key(&key.kid, format!("{} says: {other:?}", plugin.name)));
                }
            }
        }
        Ok(Self { keys, verifiers })
    }

    /// The key set signatures are checked against.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `jws` with the key its `kid` names.
    pub fn verify(&self, jws: ParsedJws) -> Result<VerifiedJws, Refusal> {
        let Some(kid) = jws.header.kid.as_deref() else {
            return Err(Refusal::new(
                Reason::KidMissing,
                "the header has no \"kid\"; sign with a key id from the runner's key set",
            ));
        };
        let Some(key) = self.keys.get(kid) else {
            return Err(Refusal::new(
                Reason::KidUnknown,
                format!(
                    "no key with kid \"{}\" is configured (the key set {} has {} keys); check \
                     the signer's key id or add the key",
                    printable(kid),
                    self.keys.source().display(),
                    self.keys.len()
                ),
            ));
        };
        if jws.header.alg != key.alg {
            return Err(Refusal::new(
                Reason::AlgMismatch,
                format!(
                    "the header says alg \"{}\" but key \"{}\" is a {} key; the key decides the \
                     algorithm, so sign with {}",
                    printable(&jws.header.alg),
                    printable(kid),
                    key.alg,
                    key.alg
                ),
            ));
        }
        let Some(plugin) = self.verifiers.get(&key.alg) else {
            // Unreachable after `new`, but fail closed rather than panic.
            return Err(Refusal::new(
                Reason::PluginFailed,
                format!("no verifier plugin for {}", key.alg),
            ));
        };
        match self.verifiers.verify(
            plugin,
            &key.alg,
            &key.members,
            jws.signing_input(),
            &jws.signature,
        ) {
            Ok(()) => Ok(VerifiedJws {
                kid: key.kid.clone(),
                alg: key.alg.clone(),
                plugin: plugin.name.clone(),
                jws,
            }),
            Err(VerifyFailure::Mismatch) => Err(Refusal::new(
                Reason::SignatureInvalid,
                format!(
                    "the signature does not verify with key \"{}\" ({}); the task was altered \
                     or signed with another key",
                    printable(kid),
                    key.alg
                ),
            )),
            Err(VerifyFailure::MalformedSignature(m)) => {
                Err(Refusal::new(Reason::SignatureMalformed, m))
            }
            Err(VerifyFailure::KeyRefused(m)) | Err(VerifyFailure::Unsupported(m)) => {
                Err(Refusal::new(
                    Reason::PluginFailed,
                    format!("{} refused: {m}", plugin.name),
                ))
            }
            Err(VerifyFailure::Fault(f)) => Err(Refusal::new(Reason::PluginFailed, f.to_string())),
        }
    }
}
