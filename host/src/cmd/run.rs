//! `edge-runner run`: one signed task through the whole pipeline, its event emitted.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::config::Config;
use edge_runner::events::SinkConfig;
use edge_runner::pipeline::{Runner, TaskReport, Verdict};
use edge_runner::sandbox::{BackendChoice, Requirement, Termination};
use std::path::PathBuf;

/// Verify a signed task and run its tool in the sandbox.
///
/// Stages: signature (verifier plugins) -> manifest and claims -> nonce checked -> tool
/// resolved from the armory by digest and re-hashed -> sandbox plan for this host ->
/// nonce recorded -> the tool runs -> one CloudEvent (completed or denied) to the
/// configured sinks. Every refusal emits its denial event before exiting; a task refused
/// before the nonce is recorded can run once the refusal is fixed.
///
/// Example: edge-runner run --config /etc/edge-runner/config.toml task.jws
#[derive(Debug, Args)]
#[command(after_help = super::EXIT_CODES_HELP)]
pub struct RunArgs {
    /// The task: a file holding a compact JWS, or `-` for stdin.
    #[arg(value_name = "TASK")]
    pub task: PathBuf,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Decide the task (every check up to the launch) without recording the nonce or
    /// emitting an event; print the decision as JSON (a refusal exits 3, as for a run).
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags that override the configuration for the paths a user changes most.
#[derive(Debug, Args, Default)]
pub struct Overrides {
    /// The verification key set (JWKS).
    #[arg(long, value_name = "JWKS")]
    pub keys: Option<PathBuf>,
    /// The armory directory.
    #[arg(long, value_name = "DIR")]
    pub armory: Option<PathBuf>,
    /// The state directory (replay store, plugin cache, event spool).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// The sandbox backend: native, runsc or auto.
    #[arg(long, value_name = "BACKEND")]
    pub sandbox: Option<BackendChoice>,
    /// AppArmor: required, if-available or off (relaxing it is recorded in every event).
    #[arg(long, value_name = "MODE")]
    pub apparmor: Option<Requirement>,
    /// Where events go: `stdout`, `file:PATH`, or an `http://` or `https://` CloudEvents
    /// receiver (TLS settings, a client certificate or a token need the configuration).
    #[arg(long, value_name = "SINK")]
    pub events: Option<String>,
}

impl Overrides {
    /// True when any flag is given.
    pub fn any(&self) -> bool {
        self.keys.is_some()
            || self.armory.is_some()
            || self.state.is_some()
            || self.sandbox.is_some()
            || self.apparmor.is_some()
            || self.events.is_some()
    }

    /// Applies the flags to `config`.
    pub fn apply(&self, config: &mut Config) -> Result<(), Failure> {
        if let Some(k) = &self.keys {
            config.keys = k.clone();
        }
        if let Some(s) = &self.state {
            config.set_state_dir(s.clone());
        }
        if let Some(a) = &self.armory {
            config.set_armory(a.clone());
        }
        if let Some(b) = self.sandbox {
            config.sandbox.backend = b;
        }
        if let Some(a) = self.apparmor {
            config.sandbox.apparmor = a;
        }
        if let Some(e) = &self.events {
            config.events.sinks = vec![parse_sink(e)?];
        }
        Ok(())
    }
}

pub(super) fn parse_sink(spec: &str) -> Result<SinkConfig, Failure> {
    if spec == "stdout" {
        return Ok(SinkConfig::Stdout);
    }
    if let Some(path) = spec.strip_prefix("file:") {
        let template: SinkConfig =
            toml::from_str(&format!("type = \"file\"\npath = {path:?}\n"))
                .map_err(|e| Failure::Usage(anyhow::anyhow!("--events {spec}: {e}")))?;
        return Ok(template);
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        // One spool per destination (issue 18: ad-hoc sinks shared one spool, and a later
        // run delivered events spooled for one URL to another).
        let name = format!(
            "adhoc-{}",
            &edge_runner::digest::Digest::of(spec.as_bytes()).hex()[..16]
        );
        let template: SinkConfig = toml::from_str(&format!(
            "type = \"http\"\nurl = {spec:?}\nname = {name:?}\n"
        ))
        .map_err(|e| Failure::Usage(anyhow::anyhow!("--events {spec}: {e}")))?;
        return Ok(template);
    }
    Err(Failure::Usage(anyhow::anyhow!(
        "--events takes `stdout`, `file:PATH` or an `http://` or `https://` URL, not {spec:?}"
    )))
}

pub fn run(global: &Global, args: RunArgs) -> CmdResult {
    let mut config = super::load_config(global)?;
    args.overrides.apply(&mut config)?;
    config
        .check_effective()
        .map_err(|e| Failure::Usage(e.into()))?;
    let config_file = super::config_path(global).and_then(|p| std::fs::canonicalize(p).ok());
    let task = super::read_task(&args.task, config.input.max_jws_bytes)?;
    let opening = std::time::Instant::now();
    let runner =
        Runner::open(&config, config_file.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
    tracing::debug!(
        us = opening.elapsed().as_micros() as u64,
        "runner set up (plugins, keys, armory)"
    );
    if args.dry_run {
        return match runner.decide(&task) {
            Ok(decision) => {
                super::write_stdout(&format!("{}\n", decision.summary()))?;
                Ok(Exit::Ok)
            }
            Err(rejected) => {
                // Scripts read the decision from stdout either way (issue 18).
                let r = &rejected.refusal;
                let decision = serde_json::json!({
                    "decision": "refuse",
                    "reason": r.reason.code(),
                    "stage": r.stage().as_str(),
                    "message": r.message,
                    "task_id": rejected.task.task_id,
                    "tenant_id": rejected.task.tenant_id,
                });
                super::write_stdout(&format!("{decision}\n"))?;
                Err(super::refused(rejected.refusal))
            }
        };
    }
    conclude(runner.handle(&task))
}

/// Maps a task report to the exit-code table, reporting the event's fate loudly.
pub fn conclude(report: TaskReport) -> CmdResult {
    let task_id = report.task.task_id.clone().unwrap_or_else(|| "?".into());
    tracing::info!(
        task_id,
        overhead_us = report.overhead.as_micros() as u64,
        "task finished"
    );
    // An event that could not be delivered or spooled is a runner failure, whatever the
    // task did: the result would otherwise be lost without anyone noticing.
    if let Err(e) = &report.event {
        // The event is lost, but the operator must still learn what happened to the task.
        let happened = match &report.verdict {
            Verdict::Ran(o) => format!("the tool ran and {}", status(o)),
            Verdict::Denied(r) | Verdict::Failed(r) => {
                format!(
                    "it was refused as {} (stage {})",
                    r.reason.code(),
                    r.stage()
                )
            }
        };
        return Err(Failure::Runner(anyhow::anyhow!(
            "task {task_id}: {happened}; but its event was not delivered or spooled: {e:#}"
        )));
    }
    match report.verdict {
        Verdict::Ran(outcome) => {
            if outcome.success() {
                return Ok(Exit::Ok);
            }
            #[allow(clippy::print_stderr)]
            {
                eprintln!("task {task_id}: the tool {}", status(&outcome));
            }
            Ok(Exit::ToolFailed)
        }
        Verdict::Denied(r) | Verdict::Failed(r) => Err(super::refused(r)),
    }
}

/// How the tool ended, in words.
fn status(o: &edge_runner::sandbox::Outcome) -> String {
    match (o.timed_out, o.termination) {
        (true, _) => format!("timed out after {} ms", o.wall_ms),
        (false, Termination::Exited(0)) => "exited with status 0".into(),
        (false, Termination::Exited(c)) => format!("exited with status {c}"),
        (false, Termination::Signaled(s)) => format!("was killed by signal {s}"),
    }
}
