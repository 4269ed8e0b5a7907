//! Issue 5 (telemetry): events through the mapper plugin, validated, delivered without
//! loss. Shared fixtures: a plugin host, configurations, records, and the independent
//! checker (`tests/interop/check_events.py`, Python CloudEvents SDK + official schema).

mod corpus;
mod delivery;
mod faults;
mod http;
pub(crate) mod https;
mod mapping;
pub(crate) mod receiver;
mod signed;

use edge_runner::config::Config;
use edge_runner::events::{
    Denial, Disposition, EventPipeline, ExecutionRecord, Mapped, TaskContext,
};
use edge_runner::plugins::{CompileCache, PluginHost, PluginLimits};
use edge_runner::reason::{Reason, Refusal};
use edge_runner::sandbox::{Captured, Outcome, Posture, Termination};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const JWS: &str = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJ0YXNrX2lkIjoidGFzay00MiJ9.c2lnbmF0dXJlLWJ5dGVzLXNpZ25hdHVyZS1ieXRlcy1zaWduYXR1cmUtYnl0ZXM";

pub fn host() -> PluginHost {
    PluginHost::new(PluginLimits::default(), CompileCache::disabled()).unwrap()
}

/// A configuration with `state_dir` set and `extra` TOML appended (tables only).
pub fn config(state_dir: &Path, extra: &str) -> Config {
    let text = format!("state_dir = {:?}\n{extra}", state_dir.display().to_string());
    Config::parse(&text, Path::new("test-config.toml")).unwrap()
}

/// A pipeline whose only sink is a file in `dir` (tests must not write to stdout).
pub fn pipeline(dir: &Path, extra: &str) -> EventPipeline {
    let sink = format!(
        "[[events.sinks]]\ntype = \"file\"\npath = {:?}\n",
        dir.join("events.jsonl").display().to_string()
    );
    EventPipeline::new(&config(dir, &format!("{extra}\n{sink}")), &host()).unwrap()
}

pub fn task() -> TaskContext {
    TaskContext {
        task_id: Some("task-42".into()),
        tenant_id: Some("tenant-a".into()),
        operator_id: Some("operator-7".into()),
        target_urn: Some("urn:edge:target:pump-3".into()),
        tool_sha256: Some(format!("sha256:{}", "ab".repeat(32))),
        action: Some("inspect".into()),
        ..TaskContext::received(JWS.as_bytes())
    }
}

pub fn posture() -> Posture {
    Posture {
        backend: "native".into(),
        namespaces: ["pid", "net", "mount", "ipc", "uts", "user"]
            .map(String::from)
            .to_vec(),
        capabilities: vec![],
        seccomp: "filter".into(),
        seccomp_extra: vec![],
        landlock: "abi:7".into(),
        cgroup: "v1:pids,memory".into(),
        apparmor: "unavailable".into(),
        network: "none".into(),
        uid: 65534,
        gid: 65534,
        no_new_privs: true,
        read_only_root: true,
    }
}

pub fn outcome(termination: Termination, stdout: Captured, stderr: Captured) -> Outcome {
    Outcome {
        termination,
        timed_out: false,
        stdout,
        stderr,
        wall_ms: 12,
        cpu_ms: 3,
        peak_memory_bytes: 4 << 20,
        posture: posture(),
    }
}

pub fn completed(stdout: &[u8], stderr: &[u8]) -> ExecutionRecord {
    ExecutionRecord {
        task: task(),
        disposition: Disposition::Completed(outcome(
            Termination::Exited(0),
            Captured::complete(stdout),
            Captured::complete(stderr),
        )),
    }
}

pub fn denied(reason: Reason, task: TaskContext) -> ExecutionRecord {
    ExecutionRecord {
        task,
        disposition: Disposition::Denied(Denial::from(Refusal::new(
            reason,
            format!("refused for the test: {}", reason.code()),
        ))),
    }
}

/// A record whose task id selects the fault fixture's behaviour.
pub fn with_task_id(mut record: ExecutionRecord, id: &str) -> ExecutionRecord {
    record.task.task_id = Some(id.into());
    record
}

pub fn json(m: &Mapped) -> serde_json::Value {
    serde_json::from_slice(&m.json).unwrap()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The official CloudEvents schema (a verbatim copy in `tests/fixtures/`), or where
/// `EDGE_RUNNER_CE_SCHEMA` says. Missing is a failure, never a skip.
pub fn schema_path() -> PathBuf {
    let p = std::env::var_os("EDGE_RUNNER_CE_SCHEMA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("tests/fixtures/cloudevents-v1.0.2.schema.json"));
    assert!(
        p.is_file(),
        "CloudEvents schema not found at {} (set EDGE_RUNNER_CE_SCHEMA)",
        p.display()
    );
    p
}

/// Runs the independent checker on `lines`; returns (success, its output).
pub fn python_check(lines: &[Vec<u8>], max_bytes: usize) -> (bool, String) {
    let script = repo_root().join("tests/interop/check_events.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg("--schema")
        .arg(schema_path())
        .arg("--max-bytes")
        .arg(max_bytes.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed (with: pip install cloudevents jsonschema rfc3339-validator rfc3986-validator)");
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            stdin.write_all(l).unwrap();
            stdin.write_all(b"\n").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(2),
        "checker environment incomplete: {text}"
    );
    (out.status.success(), text)
}
