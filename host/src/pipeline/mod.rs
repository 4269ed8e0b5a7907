//! One task, end to end, in two steps that every command shares (`run`, `run --dry-run`,
//! `verify --armory`, `demo`, `serve`):
//!
//! ```text
//! Runner::decide   bytes -> jws::parse -> SignatureVerifier::verify -> manifest::decode
//!                  -> ReplayStore::check -> Armory::resolve -> interpreter present?
//!                  -> sandbox::prepare                        => Decision (reads only)
//! Runner::launch   Decision -> ReplayStore::check_and_record -> Prepared::run => Outcome
//! Runner::handle   decide, launch, then exactly one event (completed or denied)
//! ```
//!
//! Any stage that says no ends the task with a [`Refusal`] (every stage error converts to
//! one through [`crate::reason::Refuse`], so the stages are a plain chain of `?`); the
//! denial event carries its stage and reason code and whatever was known of the task by
//! then. A runner failure (I/O, sandbox setup) is a refusal with a runner-failure reason,
//! so the control plane always learns that the task did not run. A [`Runner`] is opened
//! once per process and handles any number of tasks. This module owns the order of the
//! stages only: it checks nothing itself.

mod decision;
pub mod setup;

pub use decision::Decision;
pub use setup::SetupError;

use crate::armory::{self, Armory, ResolvedTool};
use crate::config::Config;
use crate::events::{
    Denial, Disposition, EmitReport, EventPipeline, EventsError, ExecutionRecord, TaskContext,
};
use crate::jws::{self, JwsLimits};
use crate::manifest::{self, CheckedManifest, ClaimPolicy, Limits};
use crate::reason::{Reason, Refusal};
use crate::replay::{ReplayGuard, ReplayStore};
use crate::sandbox::{self, Executable, Launch, Outcome, RunLimits, SandboxPolicy};
use crate::timing::StageClock;
use crate::verify::SignatureVerifier;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a task ended.
#[derive(Debug)]
pub enum Verdict {
    /// The tool ran (whatever its exit status).
    Ran(Box<Outcome>),
    /// A stage refused the task.
    Denied(Refusal),
    /// The runner itself failed; the task did not run (or its result was lost).
    Failed(Refusal),
}

impl Verdict {
    /// True when the tool ran and exited 0 within its time.
    pub fn succeeded(&self) -> bool {
        matches!(self, Verdict::Ran(o) if o.success())
    }

    fn refused(refusal: Refusal) -> Self {
        if refusal.is_runner_failure() {
            Verdict::Failed(refusal)
        } else {
            Verdict::Denied(refusal)
        }
    }
}

/// A task that a stage refused, with what was known of it by then.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The event's linkage fields, as far as they were read.
    pub task: TaskContext,
    /// Which stage said no, and why.
    pub refusal: Refusal,
}

/// A task whose tool ran.
#[derive(Debug)]
pub struct Ran {
    /// The event's linkage fields.
    pub task: TaskContext,
    /// How the tool ended, what it wrote, and the posture it ran under.
    pub outcome: Outcome,
    /// Time spent inside the sandbox's run (setup, the tool, teardown).
    pub in_sandbox: Duration,
}

/// What happened to one task, and to its event.
#[derive(Debug)]
pub struct TaskReport {
    /// How the task ended.
    pub verdict: Verdict,
    /// What the runner knew of the task (for logs).
    pub task: TaskContext,
    /// The event's delivery.
    pub event: Result<EmitReport, EventsError>,
    /// Time spent in the runner's own stages, excluding the sandboxed run itself.
    pub overhead: Duration,
}

/// Everything needed to run tasks, set up once per process.
#[derive(Debug)]
pub struct Runner {
    verifier: SignatureVerifier,
    claims: ClaimPolicy,
    replay: Box<dyn ReplayGuard>,
    armory: Armory,
    scratch: PathBuf,
    sandbox: SandboxPolicy,
    events: EventPipeline,
    jws_limits: JwsLimits,
}

impl Runner {
    /// Opens every component `config` names: plugins, event pipeline, key set and
    /// verifiers, armory (see [`setup`]); `config_file` names the file for masking in the
    /// sandbox.
    pub fn open(config: &Config, config_file: Option<&Path>) -> Result<Self, SetupError> {
        Self::open_with(config, config_file, false)
    }

    /// [`Runner::open`] for a process that handles many tasks (`serve`): the plugin
    /// engine keeps its instance pool between tasks.
    pub fn open_long_lived(
        config: &Config,
        config_file: Option<&Path>,
    ) -> Result<Self, SetupError> {
        Self::open_with(config, config_file, true)
    }

    fn open_with(
        config: &Config,
        config_file: Option<&Path>,
        long_lived: bool,
    ) -> Result<Self, SetupError> {
        let plugins = setup::plugin_host(config, long_lived)?;
        let events = setup::events(config, &plugins)?;
        let verifier = setup::verifier(config, plugins)?;
        let armory = setup::armory(config)?;
        Ok(Self {
            verifier,
            claims: ClaimPolicy::new(&config.claims, &config.limits, &config.env)
                .for_audience(config.runner.audience()),
            replay: Box::new(ReplayStore::new(&config.state_dir)),
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

    /// The same runner with another replay guard (the fleet's shared one, for `serve`).
    pub fn with_replay_guard(mut self, guard: Box<dyn ReplayGuard>) -> Self {
        self.replay = guard;
        self
    }

    /// The sandbox policy tasks run under.
    pub fn sandbox_policy(&self) -> &SandboxPolicy {
        &self.sandbox
    }

    /// The event pipeline every task's event goes through.
    pub fn events(&self) -> &EventPipeline {
        &self.events
    }

    /// Every check short of running: signature, manifest and claims, replay (read only),
    /// armory (authorized, bytes re-hashed into a private copy), the interpreter of a
    /// script, and the sandbox this host can give. Spends nothing: the nonce stays
    /// unrecorded, and no event is emitted.
    pub fn decide(&self, task: &[u8]) -> Result<Decision<'_>, Box<Rejected>> {
        // The compact JWS itself: a file's trailing newline is not part of it.
        let task = task.trim_ascii();
        let mut ctx = TaskContext::received(task);
        if task.len() > self.jws_limits.max_bytes {
            // Refused for its size: the event carries its digest, not megabytes of
            // attacker-chosen bytes.
            ctx.manifest_jws = None;
        }
        let mut clock = StageClock::start("decision timings");
        match self.decide_stages(task, &mut ctx, &mut clock) {
            Ok((manifest, tool, sandbox)) => Ok(Decision {
                task: ctx,
                manifest,
                tool,
                sandbox,
            }),
            Err(refusal) => Err(Box::new(Rejected { task: ctx, refusal })),
        }
    }

    fn decide_stages(
        &self,
        task: &[u8],
        ctx: &mut TaskContext,
        clock: &mut StageClock,
    ) -> Result<(CheckedManifest, ResolvedTool, sandbox::Prepared<'_>), Refusal> {
        let parsed = jws::parse(task, &self.jws_limits)?;
        let verified = self.verifier.verify(parsed)?;
        clock.lap("verify");
        let manifest = manifest::decode(&verified, &self.claims, chrono::Utc::now())?;
        fill_context(ctx, &manifest);
        clock.lap("claims");
        // A replay is refused before anything is spent on it; the nonce itself is recorded
        // by `launch`, right before the tool starts.
        self.replay.check(&manifest)?;
        clock.lap("replay");
        let tool = self.armory.resolve(manifest.tool(), &self.scratch)?;
        self.check_interpreter(&tool)?;
        clock.lap("armory");
        // The sandbox this host can give, decided now: a required protection the host
        // lacks refuses the task here, for a dry run exactly as for a real one.
        let prepared = sandbox::prepare(&self.sandbox)?;
        clock.lap("sandbox_plan");
        Ok((manifest, tool, prepared))
    }

    /// Records the nonce and runs the tool. The record is durable, and atomic against
    /// every other runner sharing the state directory, before the tool starts: a task
    /// refused by any stage of `decide` has not spent its nonce (it can run once the
    /// refusal is fixed), and once recorded it never runs again.
    pub fn launch(&self, decision: Decision<'_>) -> Result<Ran, Box<Rejected>> {
        let Decision {
            task,
            manifest,
            tool,
            sandbox,
        } = decision;
        let result = self.launch_stages(&manifest, &tool, sandbox);
        // The private copy is removed when `tool` drops, after the run.
        drop(tool);
        match result {
            Ok((outcome, in_sandbox)) => Ok(Ran {
                task,
                outcome,
                in_sandbox,
            }),
            Err(refusal) => Err(Box::new(Rejected { task, refusal })),
        }
    }

    fn launch_stages(
        &self,
        manifest: &CheckedManifest,
        tool: &ResolvedTool,
        sandbox: sandbox::Prepared<'_>,
    ) -> Result<(Outcome, Duration), Refusal> {
        let mut clock = StageClock::start("launch timings");
        self.replay.check_and_record(manifest, chrono::Utc::now())?;
        clock.lap("record");
        let file = tool.file().try_clone().map_err(|e| {
            Refusal::new(
                Reason::SandboxFailed,
                format!("failed to hand the verified tool to the sandbox: {e}"),
            )
        })?;
        let launch = Launch {
            executable: Executable::new(file, tool.path().to_owned()).with_digest(tool.digest()),
            args: manifest.args().to_vec(),
            env: task_env(manifest.env()),
            stdin: manifest.stdin(),
            limits: task_limits(&self.sandbox.limits, manifest.limits()),
        };
        let started = Instant::now();
        let outcome = sandbox.run(launch)?;
        let in_sandbox = started.elapsed();
        clock.lap("sandbox");
        Ok((outcome, in_sandbox))
    }

    /// What a task that ended as `result` amounts to: its verdict, and the record its one
    /// event is made from (for callers that deliver the event themselves, as `serve`).
    pub fn settle(&self, result: Result<Ran, Box<Rejected>>) -> (Verdict, ExecutionRecord) {
        match result {
            Ok(Ran { task, outcome, .. }) => {
                let record = ExecutionRecord {
                    task,
                    disposition: Disposition::Completed(outcome.clone()),
                };
                (Verdict::Ran(Box::new(outcome)), record)
            }
            Err(rejected) => {
                let Rejected { task, refusal } = *rejected;
                let record = ExecutionRecord {
                    task,
                    disposition: Disposition::Denied(Denial::from(refusal.clone())),
                };
                (Verdict::refused(refusal), record)
            }
        }
    }

    /// Emits the one event of a task that ended as `result` to the configured sinks.
    pub fn report(&self, result: Result<Ran, Box<Rejected>>, overhead: Duration) -> TaskReport {
        let (verdict, record) = self.settle(result);
        let emitting = Instant::now();
        let event = self.events.emit(&record);
        tracing::debug!(us = emitting.elapsed().as_micros() as u64, "event emitted");
        TaskReport {
            verdict,
            task: record.task,
            event,
            overhead,
        }
    }

    /// One task through every stage, then its event: what `run`, `demo` and `serve` do
    /// with each task.
    pub fn handle(&self, task: &[u8]) -> TaskReport {
        let started = Instant::now();
        let result = self.decide(task).and_then(|d| self.launch(d));
        let in_sandbox = result.as_ref().map_or(Duration::ZERO, |r| r.in_sandbox);
        self.report(result, started.elapsed().saturating_sub(in_sandbox))
    }

    /// A script whose interpreter is not in the sandbox's root would fail at exec with a
    /// bare ENOENT; refuse it here with the reason instead.
    fn check_interpreter(&self, tool: &ResolvedTool) -> Result<(), Refusal> {
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

/// The run limits of one task: the operator's fixed sandbox limits (processes, files,
/// address space, grace) with the task's own time, memory and output limits, which the
/// manifest stage decided (the manifest's, else the defaults, within the maxima).
pub fn task_limits(base: &RunLimits, task: Limits) -> RunLimits {
    RunLimits {
        timeout_ms: task.timeout_ms,
        memory_bytes: task.memory_bytes,
        output_bytes: task.output_bytes,
        ..base.clone()
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
