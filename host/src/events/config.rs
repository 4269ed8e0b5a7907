//! `[events]` in the runner's configuration: the CloudEvents `source`, the size cap, the
//! sinks and the spool limits. This module parses and checks; it opens nothing.
//!
//! ```toml
//! [events]
//! source = "urn:edge-runner:edge-7"   # default: urn:edge-runner:<hostname>
//! max_event_bytes = 65536
//!
//! [[events.sinks]]
//! type = "stdout"                      # the default when no sink is listed
//!
//! [[events.sinks]]
//! type = "file"
//! path = "/var/log/edge-runner/events.jsonl"
//! max_bytes = 67108864                 # rotate past this size
//! keep = 5                             # rotated files kept
//!
//! [[events.sinks]]
//! type = "http"
//! url = "https://collector.example/events" # structured mode, application/cloudevents+json
//! name = "collector"                   # names the spool: <state_dir>/events/spool/collector
//! timeout_ms = 5000
//! ca_file = "/etc/edge-runner/collector-ca.pem"      # default: the system's roots
//! client_cert = "/etc/edge-runner/runner.crt"        # mutual TLS, with client_key (0600)
//! client_key = "/etc/edge-runner/runner.key"
//! bearer_token_file = "/etc/edge-runner/collector.token" # 0600
//!
//! [events.spool]
//! max_events = 100000
//! max_bytes = 1073741824
//! backoff_initial_ms = 500
//! backoff_max_ms = 300000
//!
//! [events.signing]
//! key = "/etc/edge-runner/event-signing.jwk"  # private ES256 JWK, mode 0600: sign every event
//! ```
//!
//! The mapper plugin is chosen under `[plugins.mapper]` (`path` + `sha256`), like the
//! verifiers.

use super::sinks::spool::SpoolLimits;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Smallest cap accepted: room for the linkage fields of a typical task and a little
/// output.
pub const MIN_EVENT_BYTES: usize = 4096;

/// `[events]`: the CloudEvents source, the size cap, the sinks, spooling and signing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The CloudEvents `source`: a URI naming this runner instance.
    #[serde(default)]
    pub source: Option<String>,
    /// Largest serialized event; stdout/stderr are cut to fit, never the linkage fields.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Where events go; stdout when empty.
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    #[serde(default)]
    pub(crate) spool: SpoolConfig,
    /// Sign every event with the runner's own key (`events::signing`).
    #[serde(default)]
    pub signing: Option<SigningConfig>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            source: None,
            max_event_bytes: default_max_event_bytes(),
            sinks: Vec::new(),
            spool: SpoolConfig::default(),
            signing: None,
        }
    }
}

/// `[events.signing]`: the runner's event signing key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// A private ES256 JWK (`edge-runner keys generate --alg ES256 --private FILE`),
    /// readable by its owner only. Consumers verify with the matching public key set
    /// (`edge-runner events verify --keys`).
    pub key: PathBuf,
}

/// One sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines on stdout.
    Stdout,
    /// JSON lines appended to a file, fsync per event, rotated by size.
    File {
        /// The file appended to.
        path: PathBuf,
        /// Rotate when the file would grow past this many bytes.
        #[serde(default = "default_file_max_bytes")]
        max_bytes: u64,
        /// Rotated files kept (`<path>.1` to `<path>.<keep>`).
        #[serde(default = "default_keep")]
        keep: u32,
    },
    /// POST to a CloudEvents receiver, spooled on failure.
    Http {
        /// The receiver's URL (`http://` or `https://`).
        url: String,
        /// The sink's name, which names its spool; `http` by default.
        #[serde(default = "default_http_name")]
        name: String,
        /// Timeout of one delivery request, in milliseconds.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
        /// Deadline of the attempt made while a task's event is emitted (at most
        /// `timeout_ms`); an event not delivered in time stays spooled for `events flush`.
        #[serde(default = "default_emit_timeout_ms")]
        emit_timeout_ms: u64,
        /// Allow plain HTTP to a host other than loopback. Events carry task output and
        /// the manifest: send them in clear over a network only on purpose.
        #[serde(default)]
        allow_remote_plaintext: bool,
        /// PEM CA certificates the `https://` receiver's certificate must chain to.
        #[serde(default)]
        ca_file: Option<PathBuf>,
        /// Trust the system's roots as well (default: only when `ca_file` is not set).
        #[serde(default)]
        system_roots: Option<bool>,
        /// PEM certificate chain for mutual TLS (with `client_key`).
        #[serde(default)]
        client_cert: Option<PathBuf>,
        /// PEM private key of `client_cert`, readable by its owner only.
        #[serde(default)]
        client_key: Option<PathBuf>,
        /// A file (owner-readable only) holding a bearer token for `Authorization`.
        #[serde(default)]
        bearer_token_file: Option<PathBuf>,
    },
}

/// `[events.spool]`: bounds of each HTTP sink's durable queue and its retry schedule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpoolConfig {
    #[serde(default = "default_spool_events")]
    pub(crate) max_events: u64,
    #[serde(default = "default_spool_bytes")]
    pub(crate) max_bytes: u64,
    #[serde(default = "default_backoff_initial")]
    pub(crate) backoff_initial_ms: u64,
    #[serde(default = "default_backoff_max")]
    pub(crate) backoff_max_ms: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_events: default_spool_events(),
            max_bytes: default_spool_bytes(),
            backoff_initial_ms: default_backoff_initial(),
            backoff_max_ms: default_backoff_max(),
        }
    }
}

impl SpoolConfig {
    pub fn limits(&self) -> SpoolLimits {
        SpoolLimits {
            max_events: self.max_events,
            max_bytes: self.max_bytes,
            backoff_initial: Duration::from_millis(self.backoff_initial_ms),
            backoff_max: Duration::from_millis(self.backoff_max_ms),
        }
    }
}

fn default_max_event_bytes() -> usize {
    64 * 1024
}
fn default_file_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_keep() -> u32 {
    5
}
fn default_http_name() -> String {
    "http".to_owned()
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_emit_timeout_ms() -> u64 {
    1000
}
fn default_spool_events() -> u64 {
    100_000
}
fn default_spool_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_backoff_initial() -> u64 {
    500
}
fn default_backoff_max() -> u64 {
    300_000
}

impl SinkConfig {
    /// The TLS and credential settings of an HTTP sink.
    pub fn tls_settings(&self) -> Option<super::sinks::tls::TlsSettings> {
        match self {
            SinkConfig::Http {
                ca_file,
                system_roots,
                client_cert,
                client_key,
                bearer_token_file,
                ..
            } => Some(super::sinks::tls::TlsSettings {
                ca_file: ca_file.clone(),
                system_roots: *system_roots,
                client_cert: client_cert.clone(),
                client_key: client_key.clone(),
                bearer_token_file: bearer_token_file.clone(),
            }),
            _ => None,
        }
    }
}

impl EventsConfig {
    /// The configured `source`, or `urn:edge-runner:<hostname>`.
    pub fn source(&self) -> String {
        match &self.source {
            Some(s) => s.clone(),
            None => {
                let host = nix::unistd::gethostname()
                    .ok()
                    .and_then(|h| h.into_string().ok())
                    .map(|h| sanitize_nss(&h))
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".to_owned());
                format!("urn:edge-runner:{host}")
            }
        }
    }

    /// The sinks in force: stdout when none is configured.
    pub fn sinks(&self) -> Vec<SinkConfig> {
        if self.sinks.is_empty() {
            vec![SinkConfig::Stdout]
        } else {
            self.sinks.clone()
        }
    }

    /// Checks everything that can be checked without touching the system. Returns a
    /// message naming the offending key.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = &self.source
            && !(super::validate::is_uri_reference(s) && super::validate::is_attribute_string(s))
        {
            return Err(format!(
                "events.source \"{}\" is not a URI-reference (RFC 3986), for example \
                 urn:edge-runner:edge-7",
                crate::text::printable(s)
            ));
        }
        if self.max_event_bytes < MIN_EVENT_BYTES {
            return Err(format!(
                "events.max_event_bytes must be at least {MIN_EVENT_BYTES}"
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for sink in &self.sinks {
            match sink {
                SinkConfig::Stdout => {}
                SinkConfig::File { max_bytes, .. } => {
                    if *max_bytes < self.max_event_bytes as u64 {
                        return Err(
                            "events.sinks file: max_bytes must be at least max_event_bytes".into(),
                        );
                    }
                }
                SinkConfig::Http {
                    url,
                    name,
                    timeout_ms,
                    emit_timeout_ms,
                    allow_remote_plaintext,
                    ca_file,
                    system_roots,
                    client_cert,
                    client_key,
                    bearer_token_file,
                } => {
                    let https = check_http_url(url, *allow_remote_plaintext)?;
                    let tls_keys = ca_file.is_some()
                        || system_roots.is_some()
                        || client_cert.is_some()
                        || client_key.is_some();
                    if tls_keys && !https {
                        return Err(format!(
                            "events.sinks http url \"{url}\": ca_file, system_roots, \
                             client_cert and client_key apply to https:// only"
                        ));
                    }
                    if client_cert.is_some() != client_key.is_some() {
                        return Err(format!(
                            "events.sinks http url \"{url}\": client_cert and client_key go \
                             together (mutual TLS needs both)"
                        ));
                    }
                    if system_roots == &Some(false) && ca_file.is_none() {
                        return Err(format!(
                            "events.sinks http url \"{url}\": system_roots = false needs a \
                             ca_file, or no certificate could ever be trusted"
                        ));
                    }
                    if bearer_token_file.is_some() && !https && *allow_remote_plaintext {
                        return Err(format!(
                            "events.sinks http url \"{url}\": a bearer token is never sent in \
                             clear over a network; use https://"
                        ));
                    }
                    let name_ok = !name.is_empty()
                        && name.len() <= 64
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                    if !name_ok {
                        return Err(format!(
                            "events.sinks http name \"{}\" must be 1-64 of [A-Za-z0-9_-]",
                            crate::text::printable(name)
                        ));
                    }
                    if !names.insert(name.clone()) {
                        return Err(format!(
                            "events.sinks: two http sinks are named \"{name}\"; give each a distinct name"
                        ));
                    }
                    if *timeout_ms == 0 || *emit_timeout_ms == 0 {
                        return Err(
                            "events.sinks http timeout_ms and emit_timeout_ms must be positive"
                                .into(),
                        );
                    }
                }
            }
        }
        let s = &self.spool;
        if s.max_events == 0 || s.max_bytes < self.max_event_bytes as u64 {
            return Err(
                "events.spool: max_events must be positive and max_bytes at least max_event_bytes"
                    .into(),
            );
        }
        if s.backoff_initial_ms == 0 || s.backoff_max_ms < s.backoff_initial_ms {
            return Err(
                "events.spool: backoff_initial_ms must be positive and at most backoff_max_ms"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Checks the URL; returns whether it is `https://`.
fn check_http_url(url: &str, allow_remote_plaintext: bool) -> Result<bool, String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("events.sinks http url \"{url}\": {e}"))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            if parsed.host().is_none() {
                return Err(format!("events.sinks http url \"{url}\" has no host"));
            }
            return Ok(true);
        }
        other => {
            return Err(format!(
                "events.sinks http url \"{url}\": scheme {other} is neither http nor https"
            ));
        }
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("events.sinks http url \"{url}\" has no host")),
    };
    if !loopback && !allow_remote_plaintext {
        return Err(format!(
            "events.sinks http url \"{url}\" sends events (task output, manifests) in clear \
             to a remote host; use https://, or set allow_remote_plaintext = true"
        ));
    }
    Ok(false)
}

/// A hostname as the namespace-specific part of a URN: keep RFC 8141 safe characters.
fn sanitize_nss(host: &str) -> String {
    host.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EventsConfig, String> {
        let c: EventsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check().map(|()| c)
    }

    #[test]
    fn defaults_are_stdout_and_a_hostname_urn() {
        let c = parse("").unwrap();
        assert_eq!(c.sinks(), vec![SinkConfig::Stdout]);
        assert!(c.source().starts_with("urn:edge-runner:"));
        assert!(super::super::validate::is_uri_reference(&c.source()));
        assert_eq!(c.max_event_bytes, 65536);
    }

    #[test]
    fn sinks_parse_and_unknown_keys_are_refused() {
        let c = parse(
            "[[sinks]]\ntype = \"file\"\npath = \"/tmp/e.jsonl\"\n[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/e\"\n",
        )
        .unwrap();
        assert_eq!(c.sinks.len(), 2);
        assert!(parse("[[sinks]]\ntype = \"file\"\npath = \"/x\"\nsize = 1\n").is_err());
        assert!(parse("[[sinks]]\ntype = \"kafka\"\n").is_err());
    }

    #[test]
    fn http_urls_are_loopback_plain_http_unless_relaxed() {
        assert!(check_http_url("http://127.0.0.1:8080/x", false).is_ok());
        assert!(check_http_url("http://localhost/x", false).is_ok());
        assert!(check_http_url("http://[::1]:9/x", false).is_ok());
        assert_eq!(
            check_http_url("https://collector.example/x", false),
            Ok(true)
        );
        let e = check_http_url("http://collector.example/x", false).unwrap_err();
        assert!(e.contains("allow_remote_plaintext"), "{e}");
        assert!(check_http_url("http://collector.example/x", true).is_ok());
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let e = parse("source = \"not a uri\"\n").unwrap_err();
        assert!(e.contains("events.source"), "{e}");
        let e = parse("max_event_bytes = 100\n").unwrap_err();
        assert!(e.contains("max_event_bytes"), "{e}");
        let tls_on_http =
            "[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\nca_file = \"/x\"\n";
        assert!(parse(tls_on_http).unwrap_err().contains("https:// only"));
        let half =
            "[[sinks]]\ntype = \"http\"\nurl = \"https://c.example/\"\nclient_cert = \"/x\"\n";
        assert!(parse(half).unwrap_err().contains("go together"));
        let clear_token = "[[sinks]]\ntype = \"http\"\nurl = \"http://c.example/\"\nallow_remote_plaintext = true\nbearer_token_file = \"/t\"\n";
        assert!(
            parse(clear_token)
                .unwrap_err()
                .contains("never sent in clear")
        );
        let two = "[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:1/\"\n[[sinks]]\ntype = \"http\"\nurl = \"http://127.0.0.1:2/\"\n";
        assert!(parse(two).unwrap_err().contains("distinct name"));
    }
}
