//! `edge-runner demo`: the whole product on a throwaway setup. Creates keys, an armory
//! with a sample tool, signs a task, runs it in the strongest sandbox this host offers,
//! prints its event, then shows three refusals and their denial events. Uses only the
//! public library API and the same pipeline as `run`; nothing here is simulated.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::armory::Armory;
use edge_runner::config::Config;
use edge_runner::events::SinkConfig;
use edge_runner::pipeline::{Runner, Verdict};
use edge_runner::sandbox::support::{AppArmor, HostSupport};
use edge_runner::sandbox::{BackendChoice, Requirement};
use edge_runner::sign::{SignAlg, SigningKey};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;

/// Run the end-to-end demo in a temporary directory.
///
/// Creates a key pair, an armory holding an authorized sample tool, signs a manifest,
/// runs it in the strongest sandbox this host offers (saying which and why), prints the
/// CloudEvents, then shows three refusals: a tampered signature, an unauthorized digest
/// and a replayed nonce. Needs root for the sandbox.
///
/// Example: edge-runner demo --keep
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the temporary directory (keys, armory, events file) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// Force a sandbox backend instead of picking the strongest available.
    #[arg(long, value_name = "BACKEND")]
    pub sandbox: Option<BackendChoice>,
}

/// The sample tool: reports who it runs as and what it can see, echoes its parameters
/// (stdin), lists its network interfaces (loopback only) and tries to write the root.
const SAMPLE_TOOL: &str = r#"#!/bin/sh
echo "hello from the sandbox: uid=$(id -u) gid=$(id -g) args=$*"
echo "parameters on stdin: $(cat)"
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo "processes visible: $n"
echo "network interfaces: $(cat /proc/net/dev 2>/dev/null | tail -n +3 | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
touch /etc/owned 2>/dev/null && echo "root fs: writable" || echo "root fs: read-only"
"#;

/// A second tool that is added to the armory but never authorized.
const UNAUTHORIZED_TOOL: &str = "#!/bin/sh\necho 'this must never run'\n";

fn fail(context: &str) -> impl FnOnce(String) -> Failure + '_ {
    move |e| Failure::Runner(anyhow::anyhow!("demo: failed to {context}: {e}"))
}

fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn heading(text: &str) {
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        say(&format!("\n\x1b[1m== {text}\x1b[0m"));
    } else {
        say(&format!("\n== {text}"));
    }
}

pub fn run(_global: &Global, args: DemoArgs) -> CmdResult {
    let dir = tempfile::Builder::new()
        .prefix("edge-runner-demo.")
        .tempdir()
        .map_err(|e| fail("create a temporary directory")(e.to_string()))?;
    let root = dir.path().to_owned();
    let result = demo(&root, &args);
    if args.keep {
        let kept = dir.keep();
        say(&format!("\nkept {}", kept.display()));
    }
    result
}

fn demo(root: &Path, args: &DemoArgs) -> CmdResult {
    heading("setup");
    let state = root.join("state");
    let events_file = root.join("events.jsonl");
    let key = SigningKey::generate(SignAlg::Es256, "demo-control-plane")
        .map_err(|e| fail("generate a key")(e.to_string()))?;
    let keys_path = root.join("keys.json");
    write_private(&keys_path, &json!({ "keys": [key.public_jwk()] }))?;
    say(&format!(
        "signing key: ES256, kid demo-control-plane (private part stays with the signer)\n\
         key set:     {}",
        keys_path.display()
    ));

    let mut config = Config::default();
    config.keys = keys_path;
    config.set_state_dir(state.clone());
    config.events.sinks = vec![SinkConfig::File {
        path: events_file.clone(),
        max_bytes: 64 << 20,
        keep: 1,
    }];
    choose_sandbox(&mut config, args.sandbox);

    let armory =
        Armory::create(&config.armory).map_err(|e| fail("create the armory")(e.to_string()))?;
    let now = chrono::Utc::now();
    let tool = armory
        .add(&mut SAMPLE_TOOL.as_bytes(), "hello-sandbox", "demo", now)
        .map_err(|e| fail("add the sample tool")(e.to_string()))?;
    armory
        .authorize(&tool.digest, "demo-operator", now)
        .map_err(|e| fail("authorize the sample tool")(e.to_string()))?;
    let unauthorized = armory
        .add(
            &mut UNAUTHORIZED_TOOL.as_bytes(),
            "not-authorized",
            "demo",
            now,
        )
        .map_err(|e| fail("add the second tool")(e.to_string()))?;
    say(&format!(
        "armory:      {}\n  authorized      {} (hello-sandbox)\n  NOT authorized  {} (not-authorized)",
        config.armory.display(),
        tool.digest,
        unauthorized.digest
    ));

    let runner = Runner::open(&config, None).map_err(|e| Failure::Usage(e.into()))?;

    heading("1. a signed task runs in the sandbox");
    let aud = config.runner.id.clone();
    let task = sign(&key, &aud, "demo-1", &tool.digest.to_string())?;
    say(&format!(
        "task (compact JWS, {} bytes): {}...",
        task.len(),
        &task[..60.min(task.len())]
    ));
    let report = runner.handle(task.as_bytes());
    match &report.verdict {
        Verdict::Ran(o) => {
            say(&format!(
                "the tool ran: {:?} in {} ms (runner overhead {} us)\n--- its stdout:\n{}",
                o.termination,
                o.wall_ms,
                report.overhead.as_micros(),
                String::from_utf8_lossy(&o.stdout.bytes).trim_end()
            ));
        }
        other => say(&format!("unexpected: {other:?}")),
    }
    print_last_event(&events_file)?;

    heading("2. refused: the signature was tampered with");
    let mut tampered = task.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    refusal(&runner, &tampered, &events_file)?;

    heading("3. refused: the tool's digest is not authorized");
    let t = sign(&key, &aud, "demo-3", &unauthorized.digest.to_string())?;
    refusal(&runner, t.as_bytes(), &events_file)?;

    heading("4. refused: the same task again (replayed nonce)");
    refusal(&runner, task.as_bytes(), &events_file)?;

    heading("done");
    say(&format!(
        "every outcome and refusal above left as one CloudEvent ({}).\n\
         Try it by hand: edge-runner --help, edge-runner sandbox check",
        events_file.display()
    ));
    Ok(Exit::Ok)
}

/// Picks the strongest backend this host offers and relaxes AppArmor (and, for native,
/// Landlock) only if the kernel has none, saying why.
fn choose_sandbox(config: &mut Config, forced: Option<BackendChoice>) {
    let host = HostSupport::probe(config.sandbox.runsc_path.as_deref());
    let backend = forced.unwrap_or(if host.runsc.is_some() {
        BackendChoice::Runsc
    } else {
        BackendChoice::Native
    });
    config.sandbox.backend = backend;
    let why = match (forced, &host.runsc) {
        (Some(_), _) => "forced with --sandbox".to_owned(),
        (None, Some(p)) => format!(
            "gVisor ({}) intercepts every system call in a user-space kernel, on top of \
             namespaces, no capabilities and a read-only root",
            p.display()
        ),
        (None, None) => "runsc is not installed; the native sandbox (namespaces, no \
                          capabilities, no_new_privs, seccomp, rlimits) is the strongest here"
            .to_owned(),
    };
    let name = match backend {
        BackendChoice::Runsc => "runsc (gVisor)",
        BackendChoice::Native => "native",
        BackendChoice::Auto => "auto",
    };
    say(&format!("sandbox:     {name}: {why}"));
    if let AppArmor::Unavailable(reason) = &host.apparmor {
        config.sandbox.apparmor = Requirement::IfAvailable;
        say(&format!(
            "AppArmor:    relaxed to if-available for the demo: this kernel has none ({reason}); \
             production configs keep it required, and every event records it as unavailable"
        ));
    }
    if host.landlock_abi.is_none() && backend == BackendChoice::Native {
        config.sandbox.landlock = Requirement::IfAvailable;
        say(
            "Landlock:    relaxed to if-available for the demo: this kernel has none; \
             production configs keep it required, and every event records it as unavailable",
        );
    }
}

fn sign(key: &SigningKey, aud: &str, task_id: &str, digest: &str) -> Result<String, Failure> {
    let manifest = json!({
        "manifest_version": "1",
        "task_context": {"task_id": task_id, "tenant_id": "demo-tenant", "operator_id": "demo-operator", "action": "greet"},
        "target_urn": "urn:target:host:demo",
        "tool_sha256": digest,
        "args": ["--greeting"],
        "parameters": {"who": "world"},
        "limits": {"timeout_ms": 10000},
    });
    let raw =
        serde_json::to_vec(&manifest).map_err(|e| fail("encode the manifest")(e.to_string()))?;
    let filled = super::manifest::fill(&raw, chrono::Utc::now(), 300, &[aud.to_owned()])
        .map_err(fail("fill the manifest"))?;
    Ok(key.sign_compact(&filled))
}

fn refusal(runner: &Runner, task: &[u8], events: &Path) -> CmdResult {
    let report = runner.handle(task);
    match &report.verdict {
        Verdict::Denied(r) => say(&format!(
            "refused at stage {}: {} - {}",
            r.stage(),
            r.reason.code(),
            r.message
        )),
        other => say(&format!("unexpected: {other:?}")),
    }
    print_last_event(events)?;
    Ok(Exit::Ok)
}

/// Prints the newest event of the events file, with the long JWS shortened for reading
/// (the file holds it whole).
fn print_last_event(path: &Path) -> Result<(), Failure> {
    let text =
        std::fs::read_to_string(path).map_err(|e| fail("read the events file")(e.to_string()))?;
    let Some(line) = text.lines().last() else {
        return Err(fail("read the events file")("it is empty".into()));
    };
    let mut event: Value =
        serde_json::from_str(line).map_err(|e| fail("parse an event")(e.to_string()))?;
    if let Some(jws) = event.pointer_mut("/data/manifest_jws")
        && let Some(s) = jws.as_str()
    {
        *jws = Value::String(format!("{}... ({} bytes)", &s[..40.min(s.len())], s.len()));
    }
    let pretty = serde_json::to_string_pretty(&event).unwrap_or_default();
    say(&format!("--- its CloudEvent:\n{pretty}"));
    Ok(())
}

fn write_private(path: &Path, value: &Value) -> Result<(), Failure> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| fail("encode")(e.to_string()))?;
    edge_runner::durable::create_new(path, &bytes, 0o600)
        .map_err(|e| fail("write the key set")(e.to_string()))
}
