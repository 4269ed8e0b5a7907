//! Tools as OCI artifacts in a registry (the OCI distribution API, v2): references, the
//! artifact's media types, and a small HTTPS client. A tool is a single-layer OCI image
//! manifest whose one layer is the tool's bytes; the layer's digest is the armory digest
//! (the one tasks and authorization statements name). `push` tags the manifest
//! `sha256-<hex of the tool digest>`, so `pull REGISTRY/REPO@sha256:<tool>` finds it.
//!
//! The client speaks HTTPS only (system roots or a configured CA file), never follows a
//! redirect to another origin (scheme, host, port), and hands out response bodies as
//! streams so callers can hash and bound them; it trusts nothing it receives (`pull`
//! checks every byte against the digest asked for). It uses ureq, already the HTTP sink's
//! client, rather than an async OCI crate: see docs/operators.md ("Registries").

mod pull;
mod push;
mod reference;

pub use pull::Pulled;
pub use push::Pushed;
pub use reference::{Reference, Repository, check_registry_name};

use reference::tag_for;

use super::ArmoryError;
use crate::events::sinks::tls::{TlsError, TlsSettings};
use crate::reason::{Reason, Refusal, Refuse};
use crate::text::printable;
use std::time::Duration;

/// `mediaType` of the manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `artifactType` of the manifest and `mediaType` of its one layer: the tool's bytes.
pub const TOOL_MEDIA_TYPE: &str = "application/vnd.edge-runner.tool.v1";
/// `mediaType` of the config blob (the OCI empty descriptor, `{}`).
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes and digest (OCI image spec, "Guidance for an empty descriptor").
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// Largest manifest read (distribution's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Redirects followed within the same origin.
const MAX_REDIRECTS: usize = 3;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A registry reference could not be parsed.
    #[error("failed to read the reference \"{text}\": {problem}")]
    Reference {
        /// The reference as given.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The TLS settings for registries could not be built.
    #[error("failed to set up TLS for registries")]
    Tls(#[source] TlsError),
    /// The request did not get an HTTP answer (connection, TLS, timeout, ...).
    #[error("failed to reach {url}: {detail}")]
    Transport {
        /// The URL requested.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The registry answered with an unexpected HTTP status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, made printable.
        body: String,
    },
    /// The registry redirected to another origin, which is never followed.
    #[error(
        "{url} redirected to {location}, another origin; the runner follows redirects only \
         within the registry's own scheme, host and port"
    )]
    Redirect {
        /// The URL requested.
        url: String,
        /// The redirect's target.
        location: String,
    },
    /// What the registry sent does not hash to the digest asked for.
    #[error(
        "failed to pull {reference}: {what} does not match what was asked ({problem}); \
         nothing was stored"
    )]
    DigestMismatch {
        /// The reference pulled.
        reference: String,
        /// Which part (`the manifest`, `the layer`, ...).
        what: &'static str,
        /// How it differs.
        problem: String,
    },
    /// The manifest is not a single-layer edge-runner tool artifact.
    #[error(
        "failed to pull {reference}: the manifest is not a single-layer edge-runner tool \
         artifact ({problem})"
    )]
    NotATool {
        /// The reference pulled.
        reference: String,
        /// What is wrong with the manifest.
        problem: String,
    },
    /// A tool to push or pull is over `armory.max_tool_bytes`.
    #[error(
        "failed to accept {what}: it is {size} bytes, more than armory.max_tool_bytes \
         ({limit}); nothing was stored"
    )]
    TooLarge {
        /// The tool (file or reference).
        what: String,
        /// Its size, in bytes.
        size: u64,
        /// The cap, in bytes.
        limit: u64,
    },
    /// A tool to fetch on demand has no `source` in the authorization statement.
    #[error(
        "failed to pull {digest}: the authorization statement names no source for it; add \
         \"source\": \"REGISTRY/REPOSITORY\" to its entry, or `edge-runner armory pull` it"
    )]
    NoSource {
        /// The tool's digest.
        digest: String,
    },
    /// A tool's source registry is not in `armory.pull.registries`.
    #[error(
        "failed to pull {digest} from {registry}: it is not in armory.pull.registries ({allowed})"
    )]
    NotAllowed {
        /// The tool's digest.
        digest: String,
        /// The registry its source names.
        registry: String,
        /// The allowed registries, comma-separated.
        allowed: String,
    },
    /// A local file to push could not be read.
    #[error("failed to read {path}")]
    ReadFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An armory operation failed.
    #[error(transparent)]
    Armory(#[from] ArmoryError),
}

impl Refuse for RegistryError {
    fn reason(&self) -> Reason {
        match self {
            RegistryError::DigestMismatch { .. } => Reason::RegistryDigestMismatch,
            RegistryError::Redirect { .. } => Reason::RegistryRedirectRefused,
            RegistryError::TooLarge { .. } => Reason::ToolTooLarge,
            RegistryError::NotATool { .. } => Reason::ToolNotExecutable,
            RegistryError::Status { status: 404, .. } => Reason::DigestUnknown,
            RegistryError::Armory(e) => e.reason(),
            RegistryError::Reference { .. } => Reason::DigestInvalid,
            RegistryError::NoSource { .. } | RegistryError::NotAllowed { .. } => {
                Reason::DigestUnknown
            }
            RegistryError::Tls(_)
            | RegistryError::Transport { .. }
            | RegistryError::Status { .. }
            | RegistryError::ReadFile { .. } => Reason::RegistryFailed,
        }
    }

    fn to_refusal(&self) -> Refusal {
        Refusal::new(self.reason(), crate::reason::chain(self))
    }
}

/// The HTTPS client for registries.
pub struct Client {
    agent: ureq::Agent,
    authorization: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("authorization", &self.authorization.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

/// What a request sends.
#[derive(Clone, Copy)]
enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a std::fs::File),
}

impl Client {
    /// A client trusting `tls`'s roots, with `timeout` for each request.
    pub fn new(tls: &TlsSettings, timeout: Duration) -> Result<Self, RegistryError> {
        let credentials = tls.load().map_err(RegistryError::Tls)?;
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_send_body(Some(timeout.saturating_mul(20)))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .https_only(true)
            .tls_config(credentials.tls)
            .user_agent(concat!("edge-runner/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Self {
            agent,
            authorization: credentials.authorization,
        })
    }

    /// Sends one request, following same-origin redirects only; returns the final URL and
    /// response (any status).
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<(String, ureq::http::Response<ureq::Body>), RegistryError> {
        let mut current = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            let mut builder = ureq::http::Request::builder().method(method).uri(&current);
            for (k, v) in headers {
                builder = builder.header(*k, *v);
            }
            if let Some(a) = &self.authorization {
                builder = builder.header("authorization", a);
            }
            let transport = |e: &dyn std::fmt::Display| RegistryError::Transport {
                url: current.clone(),
                detail: e.to_string(),
            };
            let result = match body {
                Body::Empty => builder
                    .body(())
                    .map_err(|e| transport(&e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.explain(&e, &current))),
                Body::Bytes(b) => builder
                    .body(b)
                    .map_err(|e| transport(&e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.explain(&e, &current))),
                Body::File(f) => builder
                    .body(f)
                    .map_err(|e| transport(&e))
                    .and_then(|r| self.agent.run(r).map_err(|e| self.explain(&e, &current))),
            };
            let response = result?;
            let status = response.status().as_u16();
            if !(300..400).contains(&status) || status == 304 {
                return Ok((current, response));
            }
            let location = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let next = url::Url::parse(&current)
                .and_then(|base| base.join(&location))
                .map_err(|e| RegistryError::Transport {
                    url: current.clone(),
                    detail: format!("redirect to an unreadable location: {e}"),
                })?;
            if !same_origin(&current, &next) {
                return Err(RegistryError::Redirect {
                    url: current,
                    location: printable(&location),
                });
            }
            current = next.to_string();
        }
        Err(RegistryError::Transport {
            url: url.to_owned(),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn explain(&self, e: &ureq::Error, url: &str) -> RegistryError {
        RegistryError::Transport {
            url: url.to_owned(),
            detail: crate::events::sinks::tls::explain(e, url)
                .map(|t| {
                    t.replace(
                        "; the event stays spooled, nothing was sent in clear text",
                        "; nothing was fetched",
                    )
                    .replace(
                        "check ca_file, client_cert and client_key",
                        "set armory.pull.ca_file to the CA that signed the registry's certificate",
                    )
                    .replace("set ca_file", "set armory.pull.ca_file")
                })
                .unwrap_or_else(|| e.to_string()),
        }
    }
}

fn same_origin(a: &str, b: &url::Url) -> bool {
    url::Url::parse(a).is_ok_and(|a| {
        a.scheme() == b.scheme()
            && a.host_str() == b.host_str()
            && a.port_or_known_default() == b.port_or_known_default()
    })
}

/// A response's error, with a short excerpt of its body.
fn status_error(url: &str, mut response: ureq::http::Response<ureq::Body>) -> RegistryError {
    use std::io::Read as _;
    let status = response.status().as_u16();
    let mut excerpt = Vec::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(512)
        .read_to_end(&mut excerpt);
    let mut body = printable(String::from_utf8_lossy(&excerpt).trim());
    if status == 401 {
        body.push_str(
            " (the registry wants credentials: set armory.pull.bearer_token_file to a token it \
             accepts)",
        );
    }
    RegistryError::Status {
        url: url.to_owned(),
        status,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_origin_is_followed() {
        let u = |s| url::Url::parse(s).unwrap();
        assert!(same_origin(
            "https://r:5000/v2/x",
            &u("https://r:5000/other")
        ));
        assert!(!same_origin(
            "https://r:5000/v2/x",
            &u("https://r:5001/v2/x")
        ));
        assert!(!same_origin(
            "https://r:5000/v2/x",
            &u("https://s:5000/v2/x")
        ));
        assert!(!same_origin("https://r/v2/x", &u("http://r/v2/x")));
        assert!(same_origin("https://r/v2/x", &u("https://r:443/v2/y")));
    }
}
