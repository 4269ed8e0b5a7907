//! Signed events: the runner signs every event it emits with its own key, so a consumer can
//! tell an event from this runner about this task from one written by anyone who can write
//! to a sink.
//!
//! The signature is a detached compact JWS (RFC 7515 appendix F) carried in the CloudEvents
//! extension `runnersig`, the event's last member:
//!
//! ```text
//! signed line   = unsigned[..len-1] || ',"runnersig":"' || BASE64URL(header) || '..' || BASE64URL(sig) || '"}'
//! signing input = BASE64URL(header) || '.' || BASE64URL(unsigned)
//! header        = {"alg":"ES256","kid":K,"typ":"edge-runner-event+jws",
//!                  "event_id":<the event's id>,"manifest_sha256":<the task's JWS digest or null>}
//! ```
//!
//! `unsigned` is the event exactly as the mapper produced and the host validated it, so
//! the signature covers every attribute and every byte of `data`; the protected header
//! binds the event id and the manifest digest, so an event cannot be moved to another
//! task or given another id. A verifier strips the last member to get `unsigned` back
//! (the bytes, not a re-serialization: sinks deliver the line unchanged) and verifies it
//! through the same verifier plugins as tasks. This module signs and checks signatures; it
//! does not build, deliver or dedupe events (the `events verify` command dedupes a stream).

use crate::json;
use crate::jws::{self, JwsLimits};
use crate::sign::{SignAlg, SignError, SigningKey};
use crate::text::printable;
use crate::verify::SignatureVerifier;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub use super::validate::SIGNATURE_EXTENSION;
/// The `typ` of an event signature, so that a task signature can never pass as one.
pub const EVENT_JWS_TYP: &str = "edge-runner-event+jws";
/// The longest event id the host chooses (a UUID) and a manifest digest, for the size
/// reserve.
const MAX_EVENT_ID_LEN: usize = 36;
const SHA256_ID_LEN: usize = 71;

/// The signing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file's metadata could not be read.
    #[error("failed to inspect event signing key {path}")]
    Inspect {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is readable by group or others.
    #[error(
        "event signing key {path} is readable by group or others (mode {mode:04o}); fix \
         with: chmod 600 {path}"
    )]
    Readable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key path is a symbolic link.
    #[error(
        "event signing key {path} is a symbolic link; point the configuration at the real file"
    )]
    Symlink {
        /// The key path.
        path: PathBuf,
    },
    /// The key file's owner or write permissions fail the trust checks.
    #[error("event signing key {path} is not trusted")]
    Untrusted {
        /// The key file.
        path: PathBuf,
        /// What the check found.
        #[source]
        source: crate::fsperm::PermError,
    },
    /// The key file is not a valid signing key.
    #[error("failed to load event signing key {path}")]
    Load {
        /// The key file.
        path: PathBuf,
        /// Why it did not load.
        #[source]
        source: SignError,
    },
    /// The key is not an ES256 key, the only algorithm events are signed with.
    #[error(
        "event signing key {path} is an {alg} key; events are signed with ES256 (a public \
         key verifies them; an HMAC secret would let every consumer forge events). Make \
         one with: edge-runner keys generate --alg ES256 --kid KID"
    )]
    Algorithm {
        /// The key file.
        path: PathBuf,
        /// The key's algorithm.
        alg: &'static str,
    },
}

/// The runner's event signing key.
#[derive(Debug)]
pub struct EventSigner {
    key: SigningKey,
}

impl EventSigner {
    /// Loads a private ES256 JWK (as `keys generate --private` writes it) that only its
    /// owner can read: a signing key readable by others is refused, like an HMAC key set.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::symlink_metadata(path).map_err(|source| SigningError::Inspect {
            path: path.to_owned(),
            source,
        })?;
        if meta.file_type().is_symlink() {
            return Err(SigningError::Symlink {
                path: path.to_owned(),
            });
        }
        // Owned by the runner (or root) and not writable by others: another user must not
        // be able to swap in a key of their choosing.
        crate::fsperm::check_metadata(&meta, path, "event signing key").map_err(|source| {
            SigningError::Untrusted {
                path: path.to_owned(),
                source,
            }
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SigningError::Readable {
                path: path.to_owned(),
                mode,
            });
        }
        let key = SigningKey::load(path, None).map_err(|source| SigningError::Load {
            path: path.to_owned(),
            source,
        })?;
        Self::new(key).map_err(|alg| SigningError::Algorithm {
            path: path.to_owned(),
            alg,
        })
    }

    /// Wraps a key; only ES256 keys sign events (returns the refused algorithm).
    pub fn new(key: SigningKey) -> Result<Self, &'static str> {
        match key.alg() {
            SignAlg::Es256 => Ok(Self { key }),
            other => Err(other.as_str()),
        }
    }

    /// The key id (`kid`) that signed events name.
    pub fn kid(&self) -> &str {
        &self.key.kid
    }

    /// The public key set a consumer verifies these events with.
    pub fn public_jwks(&self) -> Value {
        json!({ "keys": [self.key.public_jwk()] })
    }

    /// Bytes a signature adds to an event at most: the mapper's size cap is lowered by
    /// this much, so a signed event still fits `events.max_event_bytes`.
    pub fn overhead(&self) -> usize {
        let header = self.header(
            &"0".repeat(MAX_EVENT_ID_LEN),
            Some(&"0".repeat(SHA256_ID_LEN)),
        );
        let b64 = |n: usize| n.div_ceil(3) * 4;
        let sig = b64(64);
        format!(",\"{SIGNATURE_EXTENSION}\":\"\"").len() + b64(header.len()) + 2 + sig
    }

    fn header(&self, event_id: &str, manifest_sha256: Option<&str>) -> Vec<u8> {
        let header = json!({
            "alg": self.key.alg().as_str(),
            "kid": self.key.kid,
            "typ": EVENT_JWS_TYP,
            "event_id": event_id,
            "manifest_sha256": manifest_sha256,
        });
        serde_json::to_vec(&header).unwrap_or_default()
    }

    /// Signs `unsigned` (one serialized event, a JSON object) with event id `event_id`,
    /// the id inside it, and the task's manifest digest; returns the signed line.
    pub fn sign(&self, unsigned: &[u8], event_id: &str, manifest_sha256: Option<&str>) -> Vec<u8> {
        let header = URL_SAFE_NO_PAD.encode(self.header(event_id, manifest_sha256));
        let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(unsigned));
        let sig = URL_SAFE_NO_PAD.encode(self.key.sign_bytes(signing_input.as_bytes()));
        let body = unsigned.strip_suffix(b"}").unwrap_or(unsigned);
        let mut out = Vec::with_capacity(unsigned.len() + header.len() + sig.len() + 20);
        out.extend_from_slice(body);
        out.extend_from_slice(
            format!(",\"{SIGNATURE_EXTENSION}\":\"{header}..{sig}\"}}").as_bytes(),
        );
        out
    }
}

/// Why an event failed verification. `code()` is stable (`events verify` prints it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventCheck {
    /// The line is not a valid CloudEvent.
    #[error("not a valid CloudEvent: {0}")]
    Invalid(String),
    /// The signature extension is missing or not the event's last member.
    #[error("the event carries no `{SIGNATURE_EXTENSION}` signature as its last member")]
    Unsigned,
    /// The signature value is not a detached compact JWS.
    #[error("the `{SIGNATURE_EXTENSION}` value is not a detached compact JWS: {0}")]
    Malformed(String),
    /// The detached JWS was refused when parsed or verified.
    #[error("the signature is refused [{code}]: {message}")]
    Signature {
        /// The stable reason code of the refusal.
        code: &'static str,
        /// The refusal's message.
        message: String,
    },
    /// The JWS header is not an event signature's header.
    #[error("the signature header is not an event signature: {0}")]
    Header(String),
    /// The signature names another event id than the event carries.
    #[error("the signature was made for event id \"{signed}\", but the event's id is \"{actual}\"")]
    IdMismatch {
        /// The id the signature was made for.
        signed: String,
        /// The id in the event.
        actual: String,
    },
    /// The signature binds another manifest digest than the event's data names.
    #[error("the signature binds manifest {signed}, but the event's data names manifest {actual}")]
    ManifestMismatch {
        /// The manifest digest the signature binds.
        signed: String,
        /// The manifest digest in the event's data.
        actual: String,
    },
    /// An event with the same `source` and `id` was seen earlier in the stream.
    #[error(
        "event id {id} from {source_uri} was already seen at line {first_line}{}",
        if *.identical {
            " (an identical copy: a redelivery or a replay; consumers deduplicate on source + id)"
        } else {
            ", with different content"
        }
    )]
    Replayed {
        /// The event's `id`.
        id: String,
        /// The event's `source`.
        source_uri: String,
        /// The line of the first sighting.
        first_line: usize,
        /// Whether the earlier line is byte-for-byte identical (a redelivery).
        identical: bool,
    },
}

impl EventCheck {
    /// The stable code `events verify` prints for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            EventCheck::Invalid(_) => "event_invalid",
            EventCheck::Unsigned => "event_unsigned",
            EventCheck::Malformed(_) => "event_signature_malformed",
            EventCheck::Signature { .. } => "event_signature_invalid",
            EventCheck::Header(_) => "event_signature_header",
            EventCheck::IdMismatch { .. } => "event_id_mismatch",
            EventCheck::ManifestMismatch { .. } => "event_manifest_mismatch",
            EventCheck::Replayed { .. } => "event_replayed",
        }
    }
}

/// An event whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// The event's `id`.
    pub id: String,
    pub(crate) source: String,
    /// The key that signed it.
    pub kid: String,
    /// The manifest digest the signature binds (null for a task received empty).
    pub manifest_sha256: Option<String>,
}

/// Splits a signed line into the unsigned event and the detached JWS's two segments.
pub fn split(line: &[u8]) -> Result<(Vec<u8>, String, String), EventCheck> {
    let line = line.trim_ascii();
    let marker = format!(",\"{SIGNATURE_EXTENSION}\":\"");
    let body = line.strip_suffix(b"\"}").ok_or(EventCheck::Unsigned)?;
    let at = body
        .windows(marker.len())
        .rposition(|w| w == marker.as_bytes())
        .ok_or(EventCheck::Unsigned)?;
    let value = &body[at + marker.len()..];
    // base64url and dots only: nothing that JSON escapes, so the member ends where it seems.
    if !value
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(EventCheck::Unsigned);
    }
    let text = std::str::from_utf8(value).map_err(|_| EventCheck::Unsigned)?;
    let mut parts = text.split('.');
    let (Some(h), Some(""), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EventCheck::Malformed(
            "expected BASE64URL(header)..BASE64URL(signature) (an empty payload segment)".into(),
        ));
    };
    let mut unsigned = body[..at].to_vec();
    unsigned.push(b'}');
    Ok((unsigned, h.to_owned(), s.to_owned()))
}

/// Checks one signed event line: a valid CloudEvent, whose detached signature verifies
/// with a key of `keys` (through its verifier plugin), made for this event's id and for
/// the manifest its data names.
pub fn verify(line: &[u8], keys: &SignatureVerifier) -> Result<VerifiedEvent, EventCheck> {
    let line = line.trim_ascii();
    let event = crate::events::validate::check_json(line, None)
        .map_err(|e| EventCheck::Invalid(e.to_string()))?;
    let (unsigned, h, s) = split(line)?;
    // The member stripped must be the one the event carried: the unsigned event is a valid
    // event without it (a duplicate or a trailing copy would differ here).
    let doc = json::parse_strict(&unsigned, 66).map_err(|e| EventCheck::Invalid(e.to_string()))?;
    if doc.get(SIGNATURE_EXTENSION).is_some() {
        return Err(EventCheck::Malformed(format!(
            "`{SIGNATURE_EXTENSION}` appears more than once"
        )));
    }
    let compact = format!("{h}.{}.{s}", URL_SAFE_NO_PAD.encode(&unsigned));
    let limits = JwsLimits {
        max_bytes: usize::MAX,
        ..JwsLimits::default()
    };
    let parsed = jws::parse(compact.as_bytes(), &limits).map_err(|r| EventCheck::Signature {
        code: r.reason.code(),
        message: r.message,
    })?;
    let header_bytes = URL_SAFE_NO_PAD
        .decode(&h)
        .map_err(|e| EventCheck::Malformed(e.to_string()))?;
    let verified = keys.verify(parsed).map_err(|r| EventCheck::Signature {
        code: r.reason.code(),
        message: r.message,
    })?;
    let header =
        json::parse_strict(&header_bytes, 4).map_err(|e| EventCheck::Header(e.to_string()))?;
    if header.get("typ").and_then(Value::as_str) != Some(EVENT_JWS_TYP) {
        return Err(EventCheck::Header(format!(
            "\"typ\" is not \"{EVENT_JWS_TYP}\" (a task signature is not an event signature)"
        )));
    }
    use cloudevents::AttributesReader as _;
    let signed_id = header
        .get("event_id")
        .and_then(Value::as_str)
        .ok_or_else(|| EventCheck::Header("no \"event_id\"".into()))?;
    if signed_id != event.id() {
        return Err(EventCheck::IdMismatch {
            signed: printable(signed_id),
            actual: printable(event.id()),
        });
    }
    let manifest = match header.get("manifest_sha256") {
        Some(Value::String(m)) => Some(m.clone()),
        Some(Value::Null) => None,
        _ => {
            return Err(EventCheck::Header(
                "\"manifest_sha256\" is missing or not a string or null".into(),
            ));
        }
    };
    // The signature covers `data` anyway; a data member naming another manifest than the
    // header means the signer was fed two tasks, which a consumer must not paper over.
    if let Some(in_data) = doc
        .get("data")
        .and_then(|d| d.get("manifest_sha256"))
        .and_then(Value::as_str)
        && manifest.as_deref() != Some(in_data)
    {
        return Err(EventCheck::ManifestMismatch {
            signed: manifest.as_deref().map_or("null".into(), printable),
            actual: printable(in_data),
        });
    }
    Ok(VerifiedEvent {
        id: event.id().to_owned(),
        source: event.source().to_owned(),
        kid: verified.kid().to_owned(),
        manifest_sha256: manifest,
    })
}

/// Verifies a stream of events: each signature, and each (`source`, `id`) at most once. A
/// redelivery (at-least-once) repeats an event byte for byte; it is reported as such but
/// still fails, because a consumer must deduplicate, not count an event twice.
#[derive(Debug)]
pub struct StreamVerifier<'k> {
    keys: &'k SignatureVerifier,
    /// (source, id) -> (line of the first sighting, digest of that line).
    seen: std::collections::HashMap<(String, String), (usize, String)>,
}

impl<'k> StreamVerifier<'k> {
    /// A verifier with no events seen yet, checking signatures against `keys`.
    pub fn new(keys: &'k SignatureVerifier) -> Self {
        Self {
            keys,
            seen: std::collections::HashMap::new(),
        }
    }

    /// Checks the event on line `line_no`.
    pub fn check(&mut self, line: &[u8], line_no: usize) -> Result<VerifiedEvent, EventCheck> {
        let v = verify(line, self.keys)?;
        let digest = crate::digest::sha256_id(line.trim_ascii());
        let key = (v.source.clone(), v.id.clone());
        if let Some((first_line, d)) = self.seen.get(&key) {
            return Err(EventCheck::Replayed {
                id: printable(&v.id),
                source_uri: printable(&v.source),
                first_line: *first_line,
                identical: *d == digest,
            });
        }
        self.seen.insert(key, (line_no, digest));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(kid: &str) -> EventSigner {
        EventSigner::new(SigningKey::generate(SignAlg::Es256, kid).unwrap()).unwrap()
    }

    #[test]
    fn signing_appends_the_extension_and_split_recovers_the_bytes() {
        let s = signer("runner-1");
        let unsigned = br#"{"specversion":"1.0","id":"e1","source":"urn:x","type":"t"}"#;
        let line = s.sign(unsigned, "e1", Some("sha256:00"));
        assert!(line.ends_with(b"\"}"));
        let (back, h, sig) = split(&line).unwrap();
        assert_eq!(back, unsigned);
        assert!(!h.is_empty() && !sig.is_empty());
        // The signed line is itself a valid CloudEvent (a string extension).
        crate::events::validate::check_json(&line, None).unwrap();
        assert!(line.len() - unsigned.len() <= s.overhead());
    }

    #[test]
    fn unsigned_and_malformed_lines_are_named() {
        let unsigned = br#"{"specversion":"1.0","id":"e1","source":"urn:x","type":"t"}"#;
        assert_eq!(split(unsigned).unwrap_err(), EventCheck::Unsigned);
        let attached = br#"{"id":"e1","runnersig":"aaa.bbb.ccc"}"#;
        assert_eq!(
            split(attached).unwrap_err().code(),
            "event_signature_malformed"
        );
    }

    #[test]
    fn only_es256_keys_sign_events() {
        let k = SigningKey::generate(SignAlg::Hs256, "h").unwrap();
        assert_eq!(EventSigner::new(k).unwrap_err(), "HS256");
    }

    #[test]
    fn a_signing_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("event.jwk");
        let k = SigningKey::generate(SignAlg::Es256, "runner-1").unwrap();
        std::fs::write(&p, serde_json::to_vec(&k.private_jwk()).unwrap()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = EventSigner::load(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(EventSigner::load(&p).unwrap().kid(), "runner-1");
        // A key another user owns could have been swapped by them.
        nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        let e = EventSigner::load(&p).unwrap_err();
        assert!(matches!(e, SigningError::Untrusted { .. }), "{e}");
        nix::unistd::chown(&p, Some(nix::unistd::geteuid()), None).unwrap();
        let l = dir.path().join("link.jwk");
        std::os::unix::fs::symlink(&p, &l).unwrap();
        assert!(matches!(
            EventSigner::load(&l),
            Err(SigningError::Symlink { .. })
        ));
    }
}
