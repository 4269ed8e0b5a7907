//! TLS and credentials for the HTTP sink: the roots an `https://` receiver is checked
//! against (the system's, a configured CA file, or both), an optional client certificate
//! (mutual TLS) and an optional bearer token, each read once when the sink opens. Private
//! material (client key, token) must be readable by its owner only, like the HMAC key
//! sets and the event signing key. Verification is never disabled and nothing here can
//! make a connection fall back to clear text. This module opens no connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// Why the sink's TLS material or token could not be loaded (a configuration error).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or token file could not be read.
    #[error("failed to read {what} {path}")]
    Read {
        /// What the file is (`CA file`, `client key`, `bearer token file`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A client key or token file is readable by group or others.
    #[error(
        "{what} {path} is readable by group or others (mode {mode:04o}); fix with: chmod 600 {path}"
    )]
    Readable {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is a symbolic link.
    #[error("{what} {path} is a symbolic link; point the configuration at the real file")]
    Symlink {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The file's contents are not usable (no certificate, a bad key or token, ...).
    #[error("{what} {path} is not usable: {problem}")]
    Invalid {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The system's trusted root certificates could not be loaded.
    #[error("failed to load the system's trusted root certificates: {0}")]
    SystemRoots(String),
}

/// What the configuration says about one HTTP sink's TLS and credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file of CA certificates to trust for the receiver.
    pub ca_file: Option<PathBuf>,
    /// Trust the system's roots too (default: only when no `ca_file` is given).
    pub system_roots: Option<bool>,
    /// PEM certificate chain presented to the receiver (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`; owner-readable only.
    pub client_key: Option<PathBuf>,
    /// File holding a bearer token sent as `Authorization: Bearer ...`; owner-readable only.
    pub bearer_token_file: Option<PathBuf>,
}

/// The loaded material: a TLS configuration and the `Authorization` header value.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub tls: TlsConfig,
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print the token or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_cert", &self.tls.client_cert().is_some())
            .field("authorization", &self.authorization.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads a file only its owner can read (a private key, a token); refuses a symlink.
fn read_private(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    use std::io::Read as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let read = |source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                TlsError::Symlink {
                    what,
                    path: path.to_owned(),
                }
            } else {
                read(e)
            }
        })?;
    // Checked on the open descriptor: no window to swap the file after the check.
    let mode = file.metadata().map_err(read)?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TlsError::Readable {
            what,
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = Vec::new();
    file.take(1 << 20).read_to_end(&mut bytes).map_err(read)?;
    Ok(bytes)
}

fn read_public(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn certificates(
    pem: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Vec<Certificate<'static>>, TlsError> {
    let invalid = |problem: String| TlsError::Invalid {
        what,
        path: path.to_owned(),
        problem,
    };
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(c) = item.map_err(|e| invalid(e.to_string()))? {
            out.push(c);
        }
    }
    if out.is_empty() {
        return Err(invalid(
            "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
        ));
    }
    Ok(out)
}

fn system_roots() -> Result<Vec<Certificate<'static>>, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none were found".to_owned(), ToString::to_string);
        return Err(TlsError::SystemRoots(format!(
            "{why}; install ca-certificates or set ca_file"
        )));
    }
    Ok(found
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect())
}

impl TlsSettings {
    /// Loads the roots, the client certificate and the token. The configuration has
    /// already checked that `client_cert` and `client_key` come together.
    pub(crate) fn load(&self) -> Result<Credentials, TlsError> {
        let mut roots = Vec::new();
        if self.system_roots.unwrap_or(self.ca_file.is_none()) {
            roots.extend(system_roots()?);
        }
        if let Some(ca) = &self.ca_file {
            let pem = read_public(ca, "CA file")?;
            roots.extend(certificates(&pem, ca, "CA file")?);
        }
        let mut builder = TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .use_sni(true)
            .disable_verification(false);
        if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
            let chain = certificates(
                &read_public(cert, "client certificate")?,
                cert,
                "client certificate",
            )?;
            let pem = read_private(key, "client key")?;
            let key_item = PrivateKey::from_pem(&pem).map_err(|e| TlsError::Invalid {
                what: "client key",
                path: key.clone(),
                problem: format!("{e} (expected a PEM private key: PKCS#8, SEC1 or PKCS#1)"),
            })?;
            builder = builder.client_cert(Some(ClientCert::new_with_certs(&chain, key_item)));
        }
        let authorization = match &self.bearer_token_file {
            None => None,
            Some(path) => Some(format!("Bearer {}", token(path)?)),
        };
        Ok(Credentials {
            tls: builder.build(),
            authorization,
        })
    }
}

/// The token: one line of visible ASCII (RFC 6750 `b64token` characters), trimmed.
fn token(path: &Path) -> Result<String, TlsError> {
    let bytes = read_private(path, "bearer token file")?;
    let text = String::from_utf8(bytes).unwrap_or_default();
    let t = text.trim();
    let ok = !t.is_empty()
        && t.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
        });
    if !ok {
        return Err(TlsError::Invalid {
            what: "bearer token file",
            path: path.to_owned(),
            problem: "it must hold one token of RFC 6750 characters (A-Z a-z 0-9 - . _ ~ + / =)"
                .into(),
        });
    }
    Ok(t.to_owned())
}

/// A TLS failure in words an operator can act on (ureq's own text, plus what to check).
pub(crate) fn explain(error: &ureq::Error, url: &str) -> Option<String> {
    let text = match error {
        ureq::Error::Rustls(e) => e.to_string(),
        ureq::Error::Tls(e) => (*e).to_owned(),
        ureq::Error::TlsRequired => "the connection would not be encrypted".to_owned(),
        ureq::Error::Io(e) if e.to_string().contains("certificate") => e.to_string(),
        _ => return None,
    };
    let hint = if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        "the receiver's certificate is not signed by a trusted CA: set ca_file to the CA that \
         signed it"
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        "the receiver's certificate does not name this host: use the name in its certificate \
         in the URL"
    } else if text.contains("Expired") || text.contains("expired") {
        "the receiver's certificate has expired"
    } else {
        "check ca_file, client_cert and client_key"
    };
    Some(format!(
        "TLS with {url} failed ({text}): {hint}; the event stays spooled, nothing was sent in \
         clear text"
    ))
}
