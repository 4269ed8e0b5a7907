//! One task, end to end: the stages in order, each handing the next an already-checked
//! value, and exactly one event per task out of the end.
//!
//! ```text
//! bytes -> jws::parse -> SignatureVerifier::verify -> manifest::decode (claims)
//!       -> ReplayStore::check -> Armory::resolve -> sandbox::prepare
//!       -> ReplayStore::check_and_record -> Prepared::run -> events
//! ```
//!
//! Any stage that says no ends the task with a [`Refusal`]; the denial event carries its
//! stage and reason code and whatever was known of the task by then. A runner failure
//! (I/O, sandbox setup) is reported the same way with its own reason code, so the control
//! plane always learns that the task did not run. This module owns the order of the
//! stages only: it checks nothing itself.

use crate::armory::{self, Armory};
use crate::config::Config;
use crate::events::{
    CapturedOutput, Denial, Disposition, EmitReport, EventPipeline, EventsError, ExecutionRecord,
    Outcome as EventOutcome, SandboxPosture, TaskContext, Termination as EventTermination,
};
use crate::jws::{self, JwsLimits};
use crate::keys::KeySet;
use crate::manifest::{self, CheckedManifest, ClaimPolicy};
use crate::plugins::{CompileCache, PluginHost, Verifiers};
use crate::reason::{Reason, Refusal};
use crate::replay::ReplayStore;
use crate::sandbox::{self, Executable, Launch, Outcome, SandboxPolicy, Termination};
use crate::timing::StageClock;
use crate::verify::SignatureVerifier;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the runner could not be set up. Configuration errors (exit 2), not task refusals.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Trust(#[from] crate::fsperm::PermError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeysError),
    #[error(transparent)]
    Plugins(#[from] crate::plugins::PluginError),
    #[error(transparent)]
    Armory(armory::ArmoryError),
    #[error("failed to set up event delivery")]
    Events(#[source] EventsError),
}

/// Run the tool, or stop just before launching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The whole pipeline; the nonce is consumed and an event is emitted.
    Run,
    /// Everything up to the launch; the nonce is only checked, not recorded, and no event
    /// is emitted (a dry run is an operator's check, not a task).
    DryRun,
}

/// How a task ended.
#[derive(Debug)]
pub enum Verdict {
    /// The tool ran (whatever its exit status).
    Ran(Box<Outcome>),
    /// Dry run: every check passed; this tool would have run.
    WouldRun { tool_sha256: String },
    /// A stage refused the task.
    Denied(Refusal),
    /// The runner itself failed; the task did not run.
    Failed(Refusal),
}

/// What happened to one task, and to its event.
#[derive(Debug)]
pub struct TaskReport {
    pub verdict: Verdict,
    /// What the runner knew of the task (for logs).
    pub task: TaskContext,
    /// The event's delivery, when one was emitted (never for a dry run).
    pub event: Option<Result<EmitReport, EventsError>>,
    /// Time spent in the runner's own stages, excluding the sandboxed run itself.
    pub overhead: Duration,
}

/// Everything needed to run tasks, set up once.
#[derive(Debug)]
pub struct Runner {
    verifier: SignatureVerifier,
    claims: ClaimPolicy,
    replay: ReplayStore,
    armory: Armory,
    scratch: PathBuf,
    sandbox: SandboxPolicy,
    events: EventPipeline,
    jws_limits: JwsLimits,
}

impl Runner {
    /// Loads plugins, keys, the armory, the replay store, the sandbox policy and the event
    /// pipeline from `config` (`config_file` names the file for masking in the sandbox).
    pub fn open(config: &Config, config_file: Option<&Path>) -> Result<Self, SetupError> {
        let cache = config
            .plugin_cache_dir()
            .map(|d| CompileCache::at(&d))
            .unwrap_or_else(CompileCache::disabled);
        let host = PluginHost::new(config.plugins.limits(), cache)?;
        let events = EventPipeline::new(config, &host).map_err(SetupError::Events)?;
        crate::fsperm::check_trusted(&config.keys, "key set")?;
        let keys = KeySet::load(&config.keys)?;
        // Only the verifiers the keys need: a task signed with another algorithm is refused
        // whatever plugins exist.
        let algorithms = keys.iter().map(|k| k.alg.as_str()).collect();
        let verifiers =
            Verifiers::load_for(host, &config.plugins.verifier_overrides(), &algorithms)?;
        let verifier = SignatureVerifier::new(keys, verifiers)?;
        let armory = Armory::open(&config.armory).map_err(SetupError::Armory)?;
        Ok(Self {
            verifier,
            claims: ClaimPolicy::from_config(config),
            replay: ReplayStore::new(&config.state_dir),
            armory,
            scratch: armory::scratch_dir(&config.state_dir),
            sandbox: config.sandbox_policy(config_file),
            events,
            jws_limits: JwsLimits {
                max_bytes: config.input.max_jws_bytes,
                ..JwsLimits::default()
            },
        })
    }

    /// The sandbox policy tasks run under.
    pub fn sandbox_policy(&self) -> &SandboxPolicy {
        &self.sandbox
    }

    /// Runs one task (a compact JWS) through every stage and emits its event.
    pub fn run(&self, task: &[u8], mode: Mode) -> TaskReport {
        let started = Instant::now();
        // The compact JWS itself: a file's trailing newline is not part of it.
        let task = task.trim_ascii();
        let mut ctx = TaskContext::received(task);
        if task.len() > self.jws_limits.max_bytes {
            // Refused for its size: the event carries its digest, not megabytes of
            // attacker-chosen bytes.
            ctx.manifest_jws = None;
        }
        let mut in_sandbox = Duration::ZERO;
        let verdict = match self.stages(task, mode, &mut ctx, &mut in_sandbox) {
            Ok(v) => v,
            Err(Stop::Denied(r)) => Verdict::Denied(r),
            Err(Stop::Failed(r)) => Verdict::Failed(r),
        };
        let event = (mode == Mode::Run).then(|| {
            let disposition = match &verdict {
                Verdict::Ran(outcome) => Disposition::Completed(event_outcome(outcome)),
                Verdict::Denied(r) | Verdict::Failed(r) => {
                    Disposition::Denied(Denial::from(r.clone()))
                }
                // Unreachable in Run mode; a dry run emits nothing.
                Verdict::WouldRun { .. } => Disposition::Denied(Denial {
                    reason: Reason::SandboxFailed,
                    message: "internal: dry-run verdict in run mode".into(),
                }),
            };
            let emitting = Instant::now();
            let report = self.events.emit(&ExecutionRecord {
                task: ctx.clone(),
                disposition,
            });
            tracing::debug!(us = emitting.elapsed().as_micros() as u64, "event emitted");
            report
        });
        TaskReport {
            verdict,
            task: ctx,
            event,
            overhead: started.elapsed().saturating_sub(in_sandbox),
        }
    }

    fn stages(
        &self,
        task: &[u8],
        mode: Mode,
        ctx: &mut TaskContext,
        in_sandbox: &mut Duration,
    ) -> Result<Verdict, Stop> {
        let mut clock = StageClock::start("stage timings");
        let parsed = jws::parse(task, &self.jws_limits).map_err(Stop::Denied)?;
        let verified = self.verifier.verify(parsed).map_err(Stop::Denied)?;
        clock.lap("verify");
        let manifest = manifest::decode(&verified, &self.claims, chrono::Utc::now())
            .map_err(|e| Stop::Denied(e.to_refusal()))?;
        fill_context(ctx, &manifest);
        clock.lap("claims");

        // A replay is refused before anything is spent on it; the nonce itself is recorded
        // last, right before the launch (below).
        self.replay
            .check(&manifest)
            .map_err(|e| Stop::Denied(e.to_refusal()))?;
        clock.lap("replay");

        let tool = self
            .armory
            .resolve(manifest.tool(), &self.scratch)
            .map_err(|e| match e.to_refusal() {
                Some(r) => Stop::Denied(r),
                None => Stop::Failed(Refusal::new(
                    Reason::ArmoryFailed,
                    format!("{:#}", anyhow_chain(&e)),
                )),
            })?;
        self.check_interpreter(&tool).map_err(Stop::Denied)?;
        clock.lap("armory");
        // The sandbox this host can give, decided now: a required protection the host
        // lacks refuses the task here, for a dry run exactly as for a real one.
        let prepared = sandbox::prepare(&self.sandbox).map_err(sandbox_stop)?;
        if mode == Mode::DryRun {
            return Ok(Verdict::WouldRun {
                tool_sha256: tool.digest().to_owned(),
            });
        }
        // The nonce is recorded durably, and atomically against every other runner, as the
        // last step before the launch: a task refused by any stage above has not spent it
        // (it can run once the refusal is fixed), and once recorded it never runs again.
        self.replay
            .check_and_record(&manifest, chrono::Utc::now())
            .map_err(|e| Stop::Denied(e.to_refusal()))?;
        clock.lap("record");

        let file = tool.file().try_clone().map_err(|e| {
            Stop::Failed(Refusal::new(
                Reason::SandboxFailed,
                format!("failed to hand the verified tool to the sandbox: {e}"),
            ))
        })?;
        let mut limits = self.sandbox.limits.clone();
        let requested = manifest.limits();
        limits.timeout_ms = requested.timeout_ms;
        limits.memory_bytes = requested.memory_bytes;
        limits.output_bytes = requested.output_bytes;
        let launch = Launch {
            executable: Executable::new(file, tool.path().to_owned()),
            args: manifest.args().to_vec(),
            env: task_env(manifest.env()),
            stdin: manifest.stdin(),
            limits,
        };
        let launched = Instant::now();
        let result = prepared.run(launch);
        *in_sandbox = launched.elapsed();
        clock.lap("sandbox");
        // The private copy is removed when `tool` drops, after the run.
        drop(tool);
        clock.lap("cleanup");
        result
            .map(|outcome| Verdict::Ran(Box::new(outcome)))
            .map_err(sandbox_stop)
    }
}

/// A sandbox refusal (a protection the host lacks, a posture that did not come up) or the
/// runner's own failure to run it.
fn sandbox_stop(e: sandbox::SandboxError) -> Stop {
    match e.refusal() {
        Some(r) => Stop::Denied(r),
        None => Stop::Failed(Refusal::new(
            Reason::SandboxFailed,
            format!("{:#}", anyhow_chain(&e)),
        )),
    }
}

/// The runner's base environment, then the manifest's variables. A manifest may not set a
/// base name (the manifest decoder refuses it), except `LANG`, which it may choose.
fn task_env(requested: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = sandbox::base_env()
        .into_iter()
        .filter(|(k, _)| !requested.iter().any(|(r, _)| r == k))
        .collect();
    env.extend(requested.iter().cloned());
    env
}

impl Runner {
    /// A script whose interpreter is not in the sandbox's root would fail at exec with a
    /// bare ENOENT; refuse it here with the reason instead.
    fn check_interpreter(&self, tool: &armory::ResolvedTool) -> Result<(), Refusal> {
        use std::os::unix::fs::FileExt as _;
        let mut head = [0u8; 256];
        let n = tool.file().read_at(&mut head, 0).unwrap_or(0);
        let Some(interpreter) = armory::interpreter(&head[..n]) else {
            return Ok(());
        };
        let inside = self
            .sandbox
            .rootfs
            .join(interpreter.strip_prefix("/").unwrap_or(&interpreter));
        if inside.is_file() {
            return Ok(());
        }
        Err(Refusal::new(
            Reason::ToolNotExecutable,
            format!(
                "the tool is a script for {}, which does not exist in the sandbox's root ({}); \
                 install the interpreter there, or ship the tool as an ELF executable",
                interpreter.display(),
                self.sandbox.rootfs.display()
            ),
        ))
    }
}

/// Why the stages stopped early.
enum Stop {
    Denied(Refusal),
    Failed(Refusal),
}

/// The error and its causes on one line, for a failure's message.
fn anyhow_chain<E: std::error::Error + Send + Sync + 'static>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Copies what the verified manifest says about the task into the event context.
fn fill_context(ctx: &mut TaskContext, m: &CheckedManifest) {
    let t = m.task();
    ctx.task_id = Some(t.task_id.clone());
    ctx.tenant_id = Some(t.tenant_id.clone());
    ctx.operator_id = t.operator_id.clone();
    ctx.action = t.action.clone();
    ctx.target_urn = m.target_urn().map(str::to_owned);
    ctx.tool_sha256 = Some(m.tool().to_string());
}

/// The sandbox's outcome in the event record's terms (the same fields, one-to-one).
fn event_outcome(o: &Outcome) -> EventOutcome {
    let captured = |c: &sandbox::Captured| CapturedOutput {
        bytes: c.bytes.clone(),
        total_bytes: c.total_bytes,
        truncated: c.truncated,
    };
    let p = &o.posture;
    EventOutcome {
        termination: match o.termination {
            Termination::Exited(c) => EventTermination::Exited(c),
            Termination::Signaled(s) => EventTermination::Signaled(s),
        },
        timed_out: o.timed_out,
        stdout: captured(&o.stdout),
        stderr: captured(&o.stderr),
        wall_ms: o.wall_ms,
        cpu_ms: o.cpu_ms,
        peak_memory_bytes: o.peak_memory_bytes,
        posture: SandboxPosture {
            backend: p.backend.clone(),
            namespaces: p.namespaces.clone(),
            capabilities: p.capabilities.clone(),
            seccomp: p.seccomp.clone(),
            apparmor: p.apparmor.clone(),
            network: p.network.clone(),
            uid: p.uid,
            gid: p.gid,
            no_new_privs: p.no_new_privs,
            read_only_root: p.read_only_root,
        },
    }
}

impl Verdict {
    /// True when the tool ran and exited 0 within its time.
    pub fn succeeded(&self) -> bool {
        matches!(self, Verdict::Ran(o) if !o.timed_out && o.termination == Termination::Exited(0))
    }
}
