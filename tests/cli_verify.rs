//! `edge-runner verify`, `keys generate`, `manifest sign` and `plugins` through the real
//! binary: exit codes, stderr reason codes, no secret echo, the compile cache.

use crate::support::bin;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        let state = env.path("state");
        std::fs::write(
            env.path("config.toml"),
            format!("state_dir = {:?}\n", state.to_str().unwrap()),
        )
        .unwrap();
        env
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("EDGE_RUNNER_CONFIG", self.path("config.toml"))
            .env_remove("EDGE_RUNNER_LOG");
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Generates keys for `alg` and signs a valid manifest for task `task_id` into
    /// task.jws (nonce and times filled in by `manifest sign --fill`).
    pub(crate) fn signed(&self, alg: &str, task_id: &str) -> PathBuf {
        let o = self.run(&["keys", "generate", "--alg", alg, "--kid", "k1"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let manifest = serde_json::json!({
            "manifest_version": "1",
            "task_context": {"task_id": task_id, "tenant_id": "acme"},
            "tool_sha256": format!("sha256:{}", "ab".repeat(32)),
        });
        std::fs::write(self.path("m.json"), manifest.to_string()).unwrap();
        let o = self.run(&[
            "manifest",
            "sign",
            "--fill",
            "--key",
            "signing-key.jwk",
            "--aud",
            "edge-7",
            "m.json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let task = self.path("task.jws");
        std::fs::write(&task, &o.stdout).unwrap();
        task
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn verify_prints_the_payload_and_exits_zero() {
    // EdDSA and Ed25519: `keys generate` and `manifest sign` with an Ed25519 key (issue 11).
    for alg in ["ES256", "HS256", "EdDSA", "Ed25519"] {
        let env = Env::new();
        let task = env.signed(alg, "hello-world");
        let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let payload: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(payload["task_context"]["task_id"], "hello-world");
    }
}

#[test]
fn verify_reads_stdin() {
    let env = Env::new();
    let task = env.signed("ES256", "t-stdin");
    let mut child = env
        .cmd(&["verify", "--keys", "keys.json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&task).unwrap();
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_tampered_task_exits_3_with_a_reason_and_no_secret() {
    let env = Env::new();
    let task = env.signed("HS256", "t-tamper");
    let text = std::fs::read_to_string(&task).unwrap();
    // Change the payload (re-encoded so that parsing succeeds).
    let parts: Vec<&str> = text.trim().split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], "eyJ4IjoyfQ", parts[2]);
    std::fs::write(env.path("forged.jws"), forged).unwrap();
    let o = env.run(&["verify", "--keys", "keys.json", "forged.jws"]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains("error[signature_invalid]"), "{err}");
    assert!(o.stdout.is_empty(), "nothing printed on refusal");
    // The HMAC secret and the expected MAC never appear.
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("keys.json")).unwrap()).unwrap();
    let k = keys["keys"][0]["k"].as_str().unwrap();
    assert!(!err.contains(k), "secret echoed: {err}");
    assert!(!err.contains(parts[2]), "MAC echoed: {err}");
}

#[test]
fn malformed_input_exits_3_with_parse_reason() {
    let env = Env::new();
    env.signed("ES256", "t-1");
    std::fs::write(env.path("bad.jws"), "not.a.jws.at.all").unwrap();
    let o = env.run(&["verify", "--keys", "keys.json", "bad.jws"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("error[jws_malformed]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn configuration_errors_exit_2() {
    let env = Env::new();
    let task = env.signed("ES256", "t-1");
    // Missing key set.
    let o = env.run(&["verify", "--keys", "missing.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.json"));
    // A key set others can write.
    std::fs::set_permissions(
        env.path("keys.json"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("chmod go-w"), "{}", stderr(&o));
    assert!(stderr(&o).contains("error[keys_invalid]"), "{}", stderr(&o));
    // Issue 18: the same error as one JSON object, with its stable code, for scripts.
    let o = env.run(&[
        "--log-format",
        "json",
        "verify",
        "--keys",
        "keys.json",
        task.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let line = stderr(&o).lines().last().unwrap_or_default().to_owned();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["error"]["code"], "keys_invalid", "{v}");
    assert_eq!(v["error"]["exit"], 2, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("chmod go-w"),
        "{v}"
    );
    std::fs::set_permissions(
        env.path("keys.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Unknown configuration key, named with the file.
    std::fs::write(env.path("config.toml"), "kyes = \"x\"\n").unwrap();
    let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("kyes") && stderr(&o).contains("config.toml"),
        "{}",
        stderr(&o)
    );
    // Bad flags.
    let o = env.run(&["verify", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_pinned_plugin_file_replaces_the_default_and_a_bad_pin_refuses() {
    let env = Env::new();
    let task = env.signed("HS256", "t-1");
    let plugin = crate::support::fixture("misbehaving");
    let digest = edge_runner::digest::sha256_id(&std::fs::read(&plugin).unwrap());
    let state = env.path("state");
    let write_config = |pin: &str| {
        std::fs::write(
            env.path("config.toml"),
            format!(
                "state_dir = {state:?}\n[plugins.verifiers.HS256]\npath = {plugin:?}\nsha256 = \"{pin}\"\n",
            ),
        )
        .unwrap();
    };
    write_config(&digest);
    let o = env.run(&["plugins", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hs = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["algorithm"] == "HS256")
        .unwrap();
    assert_eq!(hs["sha256"], digest.as_str());
    assert!(hs["origin"].as_str().unwrap().starts_with("file:"));
    // The fixture answers "mismatch" for a kid it does not know: refused, exit 3.
    let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    // A wrong pin refuses to start, naming both digests.
    let wrong = format!("sha256:{}", "f".repeat(64));
    write_config(&wrong);
    let o = env.run(&["verify", "--keys", "keys.json", task.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&wrong) && stderr(&o).contains(&digest),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plugins_lists_the_builtins_with_their_digests() {
    let env = Env::new();
    let o = env.run(&["plugins", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let verifiers: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "verifier" && p["active"] == true)
        .collect();
    let algs: Vec<&str> = verifiers
        .iter()
        .map(|p| p["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["ES256", "Ed25519", "EdDSA", "HS256"]);
    let mappers = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "mapper");
    assert_eq!(mappers.count(), 1, "the default mapper is listed");
    for p in verifiers {
        assert_eq!(p["origin"], "builtin");
        // No ambient authority: the default plugins import nothing at all.
        assert_eq!(p["imports"], serde_json::json!([]), "{p}");
        assert!(edge_runner::digest::is_sha256_id(
            p["sha256"].as_str().unwrap()
        ));
    }
}

fn compiled_entries(state: &Path) -> usize {
    std::fs::read_dir(state.join("plugin-cache"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_second_process_uses_the_compile_cache() {
    let env = Env::new();
    let task = env.signed("ES256", "t-1");
    let args = [
        "-v",
        "verify",
        "--keys",
        "keys.json",
        task.to_str().unwrap(),
    ];
    let first = env.run(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("compiling plugin"),
        "{}",
        stderr(&first)
    );
    // Issue 18: logs to a pipe carry no colour codes.
    assert!(!stderr(&first).contains('\x1b'), "{:?}", stderr(&first));
    // Only the verifier the key set needs (ES256) is loaded, hence compiled.
    assert_eq!(compiled_entries(&env.path("state")), 1);
    let second = env.run(&args);
    assert_eq!(second.status.code(), Some(0));
    assert!(
        !stderr(&second).contains("compiling plugin"),
        "{}",
        stderr(&second)
    );
    // A tampered cache entry (wrong owner mode) is ignored, never loaded.
    for e in std::fs::read_dir(env.path("state/plugin-cache")).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let third = env.run(&args);
    assert_eq!(third.status.code(), Some(0));
    assert!(
        stderr(&third).contains("untrusted compiled plugin"),
        "{}",
        stderr(&third)
    );
}

#[test]
fn help_documents_exit_codes_and_examples() {
    let o = Command::new(bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Exit codes") && text.contains("3  the task was refused"),
        "{text}"
    );
    let o = Command::new(bin())
        .args(["verify", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("Example:"));
}

/// Issue 18: `events validate --help` listed `--events` and `--state`, which it ignores.
#[test]
fn help_texts_list_only_the_flags_a_command_uses() {
    for sub in ["validate", "verify"] {
        let o = Command::new(crate::support::bin())
            .args(["events", sub, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{help}");
        for flag in ["--events", "--state"] {
            assert!(
                !help.contains(flag),
                "events {sub} --help lists {flag}:\n{help}"
            );
        }
    }
    let o = Command::new(crate::support::bin())
        .args(["events", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("--events") && help.contains("--state"),
        "{help}"
    );
}
