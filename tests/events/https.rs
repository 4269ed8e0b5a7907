//! Issue 15, HTTPS for the HTTP sink: against a real TLS server (Python's ssl module,
//! OpenSSL, `tests/interop/tls_receiver.py`) with a certificate authority each test makes
//! (rcgen): delivery with the CA file, mutual TLS and a bearer token; a wrong CA refused
//! with a clear message and the event kept in the spool (delivered once the CA is fixed);
//! never a byte of clear text to an `https://` URL; `Retry-After` as an HTTP-date.

use super::receiver::free_port;
use super::*;
use edge_runner::events::Delivery;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Child;
use std::time::{Duration, Instant};

/// A test CA: its PEM certificate file and the issuer that signs leaves.
pub(crate) struct Ca {
    pub pem: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

pub(crate) fn ca(dir: &Path, name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(DnType::CommonName, format!("edge-runner test CA {name}"));
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let pem = dir.join(format!("{name}-ca.pem"));
    std::fs::write(&pem, issuer.as_ref().pem()).unwrap();
    Ca { pem, issuer }
}

/// A leaf certificate for `names` signed by `ca`: (cert PEM file, key PEM file 0600).
pub(crate) fn leaf(
    dir: &Path,
    ca: &Ca,
    file: &str,
    cn: &str,
    names: &[&str],
) -> (PathBuf, PathBuf) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
    (c, k)
}

/// The Python TLS receiver; killed on drop.
pub(crate) struct TlsReceiver {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl TlsReceiver {
    pub(crate) fn start(dir: &Path, cert: &Path, key: &Path, extra: &[&str]) -> Self {
        let port_file = dir.join(format!("port-{}", free_port()));
        let log = dir.join(format!("requests-{}.jsonl", free_port()));
        let child = Command::new("python3")
            .arg(repo_root().join("tests/interop/tls_receiver.py"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--log")
            .arg(&log)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 must be installed to run the HTTPS sink tests");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the TLS receiver did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, port, log }
    }

    pub(crate) fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TlsReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One https sink to `127.0.0.1:port` with `keys` added to its table, and a fast retry
/// schedule.
fn https_config(port: u16, keys: &str) -> String {
    format!(
        "[[events.sinks]]\ntype = \"http\"\nurl = \"https://localhost:{port}/events\"\nname = \"tls\"\ntimeout_ms = 5000\n{keys}\n\
         [events.spool]\nbackoff_initial_ms = 20\nbackoff_max_ms = 100\n",
    )
}

fn key_path(name: &str, p: &Path) -> String {
    format!("{name} = {:?}\n", p.display().to_string())
}

#[test]
fn delivers_over_https_with_mutual_tls_and_a_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "a");
    let (srv_cert, srv_key) = leaf(
        dir.path(),
        &ca,
        "server",
        "localhost",
        &["localhost", "127.0.0.1"],
    );
    let (cli_cert, cli_key) = leaf(
        dir.path(),
        &ca,
        "client",
        "edge-runner-7",
        &["edge-runner-7"],
    );
    let token = dir.path().join("collector.token");
    std::fs::write(&token, "s3cr3t-T0ken_value\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rx = TlsReceiver::start(
        dir.path(),
        &srv_cert,
        &srv_key,
        &[
            "--client-ca",
            ca.pem.to_str().unwrap(),
            "--token",
            "s3cr3t-T0ken_value",
        ],
    );
    let keys = key_path("ca_file", &ca.pem)
        + &key_path("client_cert", &cli_cert)
        + &key_path("client_key", &cli_key)
        + &key_path("bearer_token_file", &token);
    let p =
        EventPipeline::new(&config(dir.path(), &https_config(rx.port, &keys)), &host()).unwrap();
    let report = p.emit(&completed(b"over tls", b"")).unwrap();
    assert_eq!(
        report.deliveries,
        vec![("http:tls".to_owned(), Delivery::Delivered)]
    );
    let log = rx.log();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], 200);
    assert_eq!(log[0]["authorization"], "Bearer s3cr3t-T0ken_value");
    assert_eq!(log[0]["client_cn"], "edge-runner-7", "mutual TLS");
    assert_eq!(
        log[0]["content_type"],
        "application/cloudevents+json; charset=utf-8"
    );
    let body: serde_json::Value = serde_json::from_str(log[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], report.event_id.as_str());
    assert_eq!(body["data"]["stdout"], "over tls");
}

#[test]
fn a_wrong_ca_is_refused_clearly_and_the_event_waits_in_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let right = ca(dir.path(), "right");
    let wrong = ca(dir.path(), "wrong");
    let (srv_cert, srv_key) = leaf(dir.path(), &right, "server", "localhost", &["localhost"]);
    let rx = TlsReceiver::start(dir.path(), &srv_cert, &srv_key, &[]);
    let cfg = |ca: &Ca| {
        config(
            dir.path(),
            &https_config(rx.port, &key_path("ca_file", &ca.pem)),
        )
    };

    let p = EventPipeline::new(&cfg(&wrong), &host()).unwrap();
    let report = p.emit(&completed(b"keep me", b"")).unwrap();
    let Delivery::Spooled { pending, reason } = &report.deliveries[0].1 else {
        panic!("a wrong CA must spool the event: {:?}", report.deliveries);
    };
    assert_eq!(*pending, 1);
    assert!(reason.contains("TLS with https://localhost"), "{reason}");
    assert!(reason.contains("not signed by a trusted CA"), "{reason}");
    assert!(reason.contains("ca_file"), "{reason}");
    assert!(
        reason.contains("nothing was sent in clear text"),
        "{reason}"
    );
    assert!(
        rx.log().iter().all(|e| e.get("body").is_none()),
        "no request may reach the receiver: {:?}",
        rx.log()
    );
    drop(p);

    // Fixing the CA delivers the very event that waited.
    let p = EventPipeline::new(&cfg(&right), &host()).unwrap();
    let flushed = p.sinks().flush(Duration::from_secs(5)).unwrap();
    assert_eq!(flushed[0].delivered, 1, "{flushed:?}");
    assert_eq!(flushed[0].pending, 0);
    let bodies: Vec<serde_json::Value> = rx
        .log()
        .iter()
        .filter_map(|e| e["body"].as_str().map(|b| serde_json::from_str(b).unwrap()))
        .collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["id"], report.event_id.as_str());
}

#[test]
fn a_receiver_that_requires_a_client_certificate_refuses_a_runner_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "m");
    let (srv_cert, srv_key) = leaf(dir.path(), &ca, "server", "localhost", &["localhost"]);
    let rx = TlsReceiver::start(
        dir.path(),
        &srv_cert,
        &srv_key,
        &["--client-ca", ca.pem.to_str().unwrap()],
    );
    let p = EventPipeline::new(
        &config(
            dir.path(),
            &https_config(rx.port, &key_path("ca_file", &ca.pem)),
        ),
        &host(),
    )
    .unwrap();
    let report = p.emit(&completed(b"x", b"")).unwrap();
    assert!(
        matches!(report.deliveries[0].1, Delivery::Spooled { .. }),
        "{:?}",
        report.deliveries
    );
    assert!(rx.log().iter().all(|e| e.get("body").is_none()));
}

#[test]
fn an_https_url_never_gets_clear_text() {
    // A plain TCP listener records what the runner sends: it must be a TLS handshake
    // record (0x16), never an HTTP request line, and the event stays spooled.
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "p");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut first = [0u8; 16];
        let n = conn.read(&mut first).unwrap();
        first[..n].to_vec()
    });
    let p = EventPipeline::new(
        &config(
            dir.path(),
            &https_config(port, &key_path("ca_file", &ca.pem)),
        ),
        &host(),
    )
    .unwrap();
    let report = p.emit(&completed(b"secret output", b"")).unwrap();
    let first = seen.join().unwrap();
    assert_eq!(first.first(), Some(&0x16), "not a TLS record: {first:?}");
    assert!(!first.starts_with(b"POST"), "clear text was sent");
    assert!(
        matches!(report.deliveries[0].1, Delivery::Spooled { .. }),
        "{:?}",
        report.deliveries
    );
}

#[test]
fn private_credentials_readable_by_others_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "r");
    let token = dir.path().join("t.token");
    std::fs::write(&token, "abc\n").unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let keys = key_path("ca_file", &ca.pem) + &key_path("bearer_token_file", &token);
    let e = EventPipeline::new(&config(dir.path(), &https_config(1, &keys)), &host()).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::new(e));
    assert!(chain.contains("chmod 600"), "{chain}");
    assert!(chain.contains("bearer token file"), "{chain}");

    let (cert, key) = leaf(dir.path(), &ca, "c", "c", &["c"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let keys = key_path("ca_file", &ca.pem)
        + &key_path("client_cert", &cert)
        + &key_path("client_key", &key);
    let e = EventPipeline::new(&config(dir.path(), &https_config(1, &keys)), &host()).unwrap_err();
    let chain = format!("{:#}", anyhow::Error::new(e));
    assert!(
        chain.contains("client key") && chain.contains("chmod 600"),
        "{chain}"
    );
}

#[test]
fn retry_after_as_an_http_date_sets_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca(dir.path(), "d");
    let (srv_cert, srv_key) = leaf(dir.path(), &ca, "server", "localhost", &["localhost"]);
    let rx = TlsReceiver::start(
        dir.path(),
        &srv_cert,
        &srv_key,
        &["--status", "503", "--retry-after-date-secs", "40"],
    );
    let sink = format!(
        "[[events.sinks]]\ntype = \"http\"\nurl = \"https://localhost:{}/events\"\nname = \"tls\"\n{}\n\
         [events.spool]\nbackoff_initial_ms = 20\nbackoff_max_ms = 120000\n",
        rx.port,
        key_path("ca_file", &ca.pem)
    );
    let p = EventPipeline::new(&config(dir.path(), &sink), &host()).unwrap();
    let report = p.emit(&completed(b"later", b"")).unwrap();
    assert!(matches!(report.deliveries[0].1, Delivery::Spooled { .. }));
    let s = p.sinks().spool_status().unwrap().remove(0);
    // The date has one-second resolution and the request took some time: 38..=40 s, far
    // above the 20 ms the backoff alone would wait.
    let wait = s.next_attempt_in;
    assert!(
        wait >= Duration::from_secs(37) && wait <= Duration::from_secs(40),
        "{wait:?}"
    );
}
