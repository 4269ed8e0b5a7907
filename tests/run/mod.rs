//! Issue 6: `edge-runner run`, `config check` and `demo` end to end, through the binary.
//! Each test builds its own world in a temporary directory with the CLI itself (`keys
//! generate`, `armory add/authorize`, `manifest sign --fill`), runs `edge-runner run` on
//! each sandbox backend, and checks the exit code, the stderr reason code and the event in
//! the events file; every events file is also validated by the independent Python checker.
//! These tests need root and runsc (CI has both) and fail, never skip, without them.

/// `on_both_backends!(name, ...)` turns each `fn name(backend: Backend)` into two tests,
/// `name::native` and `name::runsc`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn native() {
                super::$name(crate::run::Backend::Native)
            }
            #[test]
            fn runsc() {
                super::$name(crate::run::Backend::Runsc)
            }
        }
    )*};
}

mod backends;
mod config_check;
mod demo;
mod denials;
mod outcomes;
mod reaping;
mod signed;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const COMPLETED: &str = "dev.edge-runner.task.completed.v1";
pub const DENIED: &str = "dev.edge-runner.task.denied.v1";
/// `events.max_event_bytes` of the test configurations (the default).
const MAX_EVENT_BYTES: usize = 65536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Native,
    Runsc,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Runsc => "runsc",
        }
    }
}

/// Root and (for runsc) an installed runsc, or a loud failure.
pub fn prerequisites(backend: Backend) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the end-to-end run tests need root (CI runs them as root): the sandbox sets up \
         namespaces, cgroups and an unprivileged tool identity"
    );
    if backend == Backend::Runsc {
        assert!(
            edge_runner::sandbox::support::find_runsc(None).is_some(),
            "the runsc backend tests need gVisor's runsc on PATH (apt-get install runsc)"
        );
    }
}

/// A tool that reports its arguments (one per line, bracketed), an environment variable,
/// its parameters (stdin) and its uid.
pub const ECHO_TOOL: &str = r#"#!/bin/sh
for a in "$@"; do echo "arg=[$a]"; done
echo "env GREETING=[$GREETING]"
printf 'stdin=%s\n' "$(cat)"
echo "uid=$(id -u)"
"#;

/// One runner's world: config, keys, armory, state and events file in a private
/// temporary directory.
pub struct World {
    dir: tempfile::TempDir,
    pub backend: Backend,
    tasks: std::cell::Cell<u32>,
}

impl World {
    /// A world with an ES256 key set (kid `k1`) and a configuration naming the state
    /// directory and nothing else.
    pub fn new(backend: Backend) -> World {
        prerequisites(backend);
        let dir = tempfile::Builder::new()
            .prefix("run-e2e-")
            .tempdir()
            .unwrap();
        let w = World {
            dir,
            backend,
            tasks: std::cell::Cell::new(0),
        };
        w.write_config("");
        let o = w.er(&["keys", "generate", "--alg", "ES256", "--kid", "k1"]);
        assert_exit(&o, 0);
        w
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn config_file(&self) -> PathBuf {
        self.path("config.toml")
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn events_file(&self) -> PathBuf {
        self.path("events.jsonl")
    }

    /// Writes config.toml: `state_dir`, then `extra` (TOML).
    pub fn write_config(&self, extra: &str) {
        std::fs::write(
            self.config_file(),
            format!("state_dir = {:?}\n{extra}", self.state().to_str().unwrap()),
        )
        .unwrap();
    }

    /// `edge-runner ARGS` in the world's directory, with `$EDGE_RUNNER_CONFIG` naming its
    /// configuration.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(crate::support::bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("EDGE_RUNNER_CONFIG", self.config_file())
            .env_remove("EDGE_RUNNER_LOG");
        c
    }

    pub fn er(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Adds `script` to the armory (authorized or not); returns its digest.
    pub fn add_tool(&self, name: &str, script: &str, authorize: bool) -> String {
        let file = self.path(name);
        std::fs::write(&file, script).unwrap();
        let o = self.er(&["armory", "add", file.to_str().unwrap(), "--name", name]);
        assert_exit(&o, 0);
        let digest = String::from_utf8(o.stdout).unwrap().trim().to_owned();
        assert!(edge_runner::digest::is_sha256_id(&digest), "{digest}");
        if authorize {
            assert_exit(&self.er(&["armory", "authorize", &digest]), 0);
        }
        digest
    }

    /// A manifest template for `digest` (nonce and times are filled in when signing).
    pub fn manifest(&self, task_id: &str, digest: &str) -> Value {
        json!({
            "manifest_version": "1",
            // This host's runner, by its default id (the host name).
            "aud": edge_runner::config::RunnerConfig::default().id,
            "task_context": {"task_id": task_id, "tenant_id": "acme", "operator_id": "op-7"},
            "tool_sha256": digest,
        })
    }

    /// Signs `manifest` with `key` (a private JWK file in the world) through `manifest
    /// sign --fill`; returns the task file.
    pub fn sign_with(&self, manifest: &Value, key: &str) -> PathBuf {
        self.sign_text_with(&manifest.to_string(), key)
    }

    /// Signs the manifest template `text` exactly as written (for parameters that a
    /// `serde_json::Value` could not carry, such as `1E2`).
    pub fn sign_text(&self, text: &str) -> PathBuf {
        self.sign_text_with(text, "signing-key.jwk")
    }

    fn sign_text_with(&self, text: &str, key: &str) -> PathBuf {
        let n = self.tasks.get() + 1;
        self.tasks.set(n);
        let template = self.path(&format!("manifest-{n}.json"));
        std::fs::write(&template, text).unwrap();
        let o = self.er(&[
            "manifest",
            "sign",
            "--fill",
            "--key",
            key,
            template.to_str().unwrap(),
        ]);
        assert_exit(&o, 0);
        let task = self.path(&format!("task-{n}.jws"));
        std::fs::write(&task, &o.stdout).unwrap();
        task
    }

    pub fn sign(&self, manifest: &Value) -> PathBuf {
        self.sign_with(manifest, "signing-key.jwk")
    }

    /// The flags every run gets: the key set, this world's backend, AppArmor as given, and
    /// the events file.
    pub fn flags(&self, apparmor: &str) -> Vec<String> {
        vec![
            "--keys".into(),
            "keys.json".into(),
            "--sandbox".into(),
            self.backend.name().into(),
            "--apparmor".into(),
            apparmor.into(),
            "--events".into(),
            format!("file:{}", self.events_file().display()),
        ]
    }

    /// `edge-runner run` of `task` with `flags(apparmor)` and `extra`.
    pub fn run_with(&self, task: &Path, apparmor: &str, extra: &[&str]) -> Output {
        let mut args = vec!["run".to_owned()];
        args.extend(self.flags(apparmor));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.push(task.to_str().unwrap().to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.er(&args)
    }

    /// `edge-runner run` with AppArmor relaxed to if-available (this kernel has none).
    pub fn run(&self, task: &Path) -> Output {
        self.run_with(task, "if-available", &[])
    }

    /// Every event in the events file, after the independent checker (Python CloudEvents
    /// SDK + the official schema + the extra spec rules) accepted the whole file.
    pub fn events(&self) -> Vec<Value> {
        let text = match std::fs::read(self.events_file()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("failed to read {}: {e}", self.events_file().display()),
        };
        let lines: Vec<Vec<u8>> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        if !lines.is_empty() {
            let (ok, report) = crate::events::python_check(&lines, MAX_EVENT_BYTES);
            assert!(
                ok,
                "the events file fails the independent checker:\n{report}"
            );
        }
        lines
            .iter()
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    /// The one event of the events file.
    pub fn only_event(&self) -> Value {
        let mut events = self.events();
        assert_eq!(events.len(), 1, "expected exactly one event: {events:#?}");
        events.remove(0)
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// Exit 3 with `error[<reason>]` and the stage on stderr; nothing on stdout, except that
/// a dry run prints its refusal as a JSON decision.
pub fn assert_refused(o: &Output, reason: &str, stage: &str) {
    assert_exit(o, 3);
    let err = stderr(o);
    assert!(
        err.contains(&format!("error[{reason}]")) && err.contains(&format!("(stage: {stage})")),
        "expected error[{reason}] at stage {stage}: {err}"
    );
    if !o.stdout.is_empty() {
        let d: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("stdout on refusal is not a decision ({e}): {}", stdout(o)));
        assert_eq!(d["decision"], "refuse", "{d}");
        assert_eq!(d["reason"], reason, "{d}");
        assert_eq!(d["stage"], stage, "{d}");
    }
}

/// The denial event for `reason` at `stage`, carrying the submitted task.
pub fn assert_denial_event(event: &Value, task: &Path, reason: &str, stage: &str) {
    assert_eq!(event["type"], DENIED, "{event:#}");
    let d = &event["data"];
    assert_eq!(d["reason"], reason, "{event:#}");
    assert_eq!(d["stage"], stage, "{event:#}");
    assert_eq!(d["status"], "denied", "{event:#}");
    assert!(
        d["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{event:#}"
    );
    assert_received(event, task);
}

/// The event carries the task exactly as submitted, and its digest.
pub fn assert_received(event: &Value, task: &Path) {
    let jws = std::fs::read_to_string(task).unwrap();
    let jws = jws.trim();
    let d = &event["data"];
    assert_eq!(d["manifest_jws"], jws, "{event:#}");
    assert_eq!(
        d["manifest_sha256"],
        edge_runner::digest::sha256_id(jws.as_bytes()),
        "{event:#}"
    );
}

/// The linkage the runner knows once the manifest verified: task, tenant and tool.
pub fn assert_linked(event: &Value, task_id: &str, digest: &str) {
    let d = &event["data"];
    assert_eq!(d["task_id"], task_id, "{event:#}");
    assert_eq!(d["tenant_id"], "acme", "{event:#}");
    assert_eq!(d["operator_id"], "op-7", "{event:#}");
    assert_eq!(d["tool_sha256"], digest, "{event:#}");
    assert_eq!(event["subject"], task_id, "{event:#}");
    assert_eq!(event["tenantid"], "acme", "{event:#}");
}
