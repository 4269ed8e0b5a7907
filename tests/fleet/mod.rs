//! Issue 13: a fleet of `edge-runner serve` runners on a real NATS JetStream server
//! (Debian's `nats-server`, started here on a loopback port with a temporary store; no
//! mock stands in for it). Tasks are signed in process, published with a real client,
//! and every event is read back from the event stream.

mod faults;

use edge_runner::armory::Armory;
use edge_runner::sign::{SignAlg, SigningKey};
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sandboxed tools the fleet runs.
pub const QUICK_TOOL: &str = "#!/bin/sh\necho ran\n";
pub const SLOW_TOOL: &str =
    "#!/bin/sh\ntrap 'echo term; exit 0' TERM\nsleep 4 & wait\necho slept\n";

/// A nats-server with JetStream on a free loopback port and a private store directory.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nats {
    pub fn start() -> Nats {
        let binary = Path::new("/usr/sbin/nats-server");
        let binary = if binary.exists() {
            binary.to_owned()
        } else {
            PathBuf::from("nats-server")
        };
        assert!(
            Command::new(&binary).arg("--version").output().is_ok(),
            "the fleet tests need Debian's nats-server (scripts/bootstrap installs it: apt-get \
             install nats-server)"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\nmax_payload: 16MB\njetstream {{\n  store_dir: {:?}\n}}\n",
                dir.path().join("store")
            ),
        )
        .unwrap();
        let mut n = Nats {
            child: None,
            port,
            conf,
            _dir: dir,
        };
        n.spawn(binary);
        n
    }

    fn spawn(&mut self, binary: PathBuf) {
        let child = Command::new(binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, a clean shutdown) and starts it again on the same port
    /// and store.
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        let binary = if Path::new("/usr/sbin/nats-server").exists() {
            PathBuf::from("/usr/sbin/nats-server")
        } else {
            PathBuf::from("nats-server")
        };
        self.spawn(binary);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Keys, an armory with the tools, and runner configurations, in a private directory.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub key: SigningKey,
    pub quick: String,
    pub slow: String,
    pub nats: String,
}

/// A running `edge-runner serve`.
pub struct Serve {
    pub id: String,
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Serve {
    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).unwrap();
    }

    /// Waits for the process to exit; its exit code (None: killed by a signal).
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "runner {} did not exit within {within:?}; log:\n{}",
                self.id,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Fleet {
    pub fn new(nats: &Nats) -> Fleet {
        crate::run::prerequisites(crate::run::Backend::Native);
        let dir = tempfile::Builder::new().prefix("fleet-").tempdir().unwrap();
        let key = SigningKey::generate(SignAlg::Es256, "cp-1").unwrap();
        let keys = dir.path().join("keys.json");
        std::fs::write(
            &keys,
            serde_json::to_vec(&json!({"keys": [key.public_jwk()]})).unwrap(),
        )
        .unwrap();
        let armory = Armory::create(&dir.path().join("armory")).unwrap();
        let now = chrono::Utc::now();
        let add = |bytes: &str, name: &str| {
            let t = armory
                .add(&mut bytes.as_bytes(), name, "test", now)
                .unwrap();
            armory.authorize(&t.digest, "test", now).unwrap();
            t.digest.to_string()
        };
        let quick = add(QUICK_TOOL, "quick");
        let slow = add(SLOW_TOOL, "slow");
        Fleet {
            dir,
            key,
            quick,
            slow,
            nats: nats.url(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `edge-runner serve` as runner `id` of pool `fleet`, serving `tenants`, with
    /// `extra` TOML appended to its [fleet] section; waits until it serves.
    pub fn runner(&self, id: &str, tenants: &[&str], extra_fleet: &str) -> Serve {
        let config = self.path(&format!("{id}.toml"));
        let state = self.path(&format!("{id}-state"));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            &config,
            format!(
                "keys = {:?}\nstate_dir = {:?}\narmory = {:?}\n[runner]\nid = {id:?}\npools = [\"fleet\"]\n\
                 [sandbox]\nbackend = \"native\"\napparmor = \"if-available\"\n\
                 [fleet]\nnats_url = {:?}\ntenants = {:?}\n{extra_fleet}\n",
                self.path("keys.json"),
                state,
                self.path("armory"),
                self.nats,
                tenants,
            ),
        )
        .unwrap();
        let log = self.path(&format!("{id}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(crate::support::bin())
            .args(["-v", "--log-format", "json", "serve"])
            .env("EDGE_RUNNER_CONFIG", &config)
            .env("EDGE_RUNNER_LOG", "info,edge_runner=debug")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .unwrap();
        let serve = Serve {
            id: id.to_owned(),
            child: Some(child),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !serve.log_text().contains("\"serving\"") {
            assert!(
                Instant::now() < deadline,
                "runner {id} did not start serving; log:\n{}",
                serve.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        serve
    }

    /// A task for pool `fleet`, tenant `tenant`, running `digest`.
    pub fn task(&self, tenant: &str, task_id: &str, digest: &str) -> String {
        self.task_with(tenant, task_id, digest, |_| {})
    }

    pub fn task_with(
        &self,
        tenant: &str,
        task_id: &str,
        digest: &str,
        edit: impl FnOnce(&mut Value),
    ) -> String {
        let now = chrono::Utc::now();
        let t =
            |d: chrono::DateTime<chrono::Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut m = json!({
            "manifest_version": "1",
            "aud": "fleet",
            "task_context": {"task_id": task_id, "tenant_id": tenant},
            "tool_sha256": digest,
            "nonce": crate::task_kit::nonce(),
            "issued_at": t(now),
            "expires_at": t(now + chrono::TimeDelta::minutes(10)),
            "limits": {"timeout_ms": 20000},
        });
        edit(&mut m);
        self.key.sign_compact(&serde_json::to_vec(&m).unwrap())
    }
}

/// A tokio runtime for the test's own NATS client.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Publishes `payload` on `subject` (after the runners created the stream), with
/// `Nats-Msg-Id` = `msg_id` when given.
pub async fn publish(
    client: &async_nats::Client,
    subject: &str,
    payload: Vec<u8>,
    msg_id: Option<&str>,
) {
    let js = async_nats::jetstream::new(client.clone());
    let mut headers = async_nats::HeaderMap::new();
    if let Some(id) = msg_id {
        headers.insert("Nats-Msg-Id", id);
    }
    js.publish_with_headers(subject.to_owned(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

pub async fn client(url: &str) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .unwrap()
}

/// Reads events from the event stream until `want` arrived (by `done`) or `within` ran out.
/// Returns every event read, in stream order.
pub fn collect(url: &str, within: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    rt().block_on(async {
        let client = client(url).await;
        let js = async_nats::jetstream::new(client);
        let deadline = Instant::now() + within;
        let stream = loop {
            match js.get_stream("EDGE_RUNNER_EVENTS").await {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("no event stream: {e}"),
            }
        };
        let consumer: async_nats::jetstream::consumer::PullConsumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let mut events = Vec::new();
        while !done(&events) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match tokio::time::timeout(left.min(Duration::from_secs(1)), messages.next()).await {
                Ok(Some(Ok(m))) => events.push(serde_json::from_slice(&m.payload).unwrap()),
                Ok(Some(Err(_))) | Ok(None) => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(_) => {}
            }
        }
        events
    })
}

/// Events by task id: (completed events, denial reasons).
pub fn by_task(events: &[Value]) -> BTreeMap<String, (usize, Vec<String>)> {
    let mut out: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for e in events {
        let id = e["data"]["task_id"].as_str().unwrap_or("?").to_owned();
        let slot = out.entry(id).or_default();
        if e["type"] == "dev.edge-runner.task.completed.v1" {
            slot.0 += 1;
        } else {
            slot.1
                .push(e["data"]["reason"].as_str().unwrap_or("?").to_owned());
        }
    }
    out
}

/// The `data` of every event about task `id`, for failure messages (a denial's message
/// says why, where its reason code alone does not).
pub fn task_data<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["data"]["task_id"].as_str() == Some(id))
        .map(|e| &e["data"])
        .collect()
}

/// The JSON log lines of a runner.
pub fn log_lines(s: &Serve) -> Vec<Value> {
    BufReader::new(std::fs::File::open(&s.log).unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}
