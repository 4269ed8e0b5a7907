//! Issue 14, tools pulled from an OCI registry: against a real registry (Debian's
//! `docker-registry`, the CNCF distribution registry 2.8) that each test starts on a
//! loopback port with a temporary storage directory and a TLS certificate the test makes,
//! plus a misbehaving TLS proxy in front of it (`tests/interop/registry_proxy.py`) for the
//! bytes a real registry would never serve. No mock registry.

mod pull;
mod signed;

use crate::events::https::{Ca, ca, leaf};
use crate::events::receiver::free_port;
use crate::events::repo_root;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's package puts the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry; killed on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub ca: Ca,
    pub dir: PathBuf,
}

impl Registry {
    /// Starts a registry under `dir` (storage, config, certificate).
    pub fn start(dir: &Path) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "the registry tests need Debian's docker-registry ({REGISTRY_BIN}); \
             scripts/bootstrap installs it (apt-get install docker-registry)"
        );
        let ca = ca(dir, "registry");
        let (cert, key) = leaf(
            dir,
            &ca,
            "registry",
            "localhost",
            &["localhost", "127.0.0.1"],
        );
        let port = free_port();
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n",
                storage.display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("failed to start docker-registry");
        let registry = Registry {
            child,
            port,
            ca,
            dir: dir.to_owned(),
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not start: {}",
                std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `localhost:PORT`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// A raw HTTPS request to the registry (for what `push` never does, such as tagging a
    /// manifest under another tool's tag).
    pub fn put_manifest(&self, repo: &str, tag: &str, body: &[u8]) -> u16 {
        let pem = std::fs::read(&self.ca.pem).unwrap();
        let roots: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i.unwrap() {
                ureq::tls::PemItem::Certificate(c) => Some(c),
                _ => None,
            })
            .collect();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(roots)))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .build()
            .into();
        let r = agent
            .put(&format!(
                "https://{}/v2/{repo}/manifests/{tag}",
                self.host()
            ))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .send(body)
            .unwrap();
        r.status().as_u16()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The misbehaving proxy in front of `registry`; killed on drop.
pub struct Proxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Proxy {
    pub fn start(registry: &Registry, mode: &str, redirect_to: &str) -> Proxy {
        let dir = &registry.dir;
        let (cert, key) = leaf(
            dir,
            &registry.ca,
            &format!("proxy-{mode}"),
            "localhost",
            &["localhost", "127.0.0.1"],
        );
        let port_file = dir.join(format!("proxy-{mode}.port"));
        let log = dir.join(format!("proxy-{mode}.log"));
        let child = Command::new("python3")
            .arg(repo_root().join("tests/interop/registry_proxy.py"))
            .args(["--cert", cert.to_str().unwrap()])
            .args(["--key", key.to_str().unwrap()])
            .args(["--ca", registry.ca.pem.to_str().unwrap()])
            .args(["--upstream", &format!("localhost:{}", registry.port)])
            .args(["--mode", mode])
            .args(["--redirect-to", redirect_to])
            .args(["--port-file", port_file.to_str().unwrap()])
            .args(["--log", log.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 must be installed to run the registry proxy tests");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "the registry proxy did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Proxy { child, port, log }
    }

    pub fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// The request lines the proxy saw.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
