//! The sandbox: runs one verified tool under gVisor (`runsc`) or the runner's own native
//! namespaces sandbox, and reports what happened and what was in force.
//!
//! # Interface (what the pipeline uses)
//!
//! ```text
//! let policy = config.sandbox_policy(config_path);   // [sandbox] + the runner's secrets
//! let launch = Launch {
//!     executable: Executable::new(file, path),        // the armory's private verified copy
//!     args, env, stdin: parameters_json, limits,
//! };
//! match sandbox::run(&policy, launch) {
//!     Ok(outcome) => ...,                              // Outcome mirrors wit `outcome`
//!     Err(e) => match e.refusal() {
//!         Some(refusal) => ...,                        // a required protection is missing
//!         None => ...,                                 // the runner failed (exit 4)
//!     },
//! }
//! ```
//!
//! * [`Executable::new`]`(file, path)`: `file` is an open read-only handle on a private,
//!   runner-owned copy at `path` holding exactly the verified bytes (mode 0555 or 0444 plus
//!   execute for others). The native backend executes the descriptor (`execveat`), never
//!   the path; runsc bind-mounts `path` read-only. Either way the tool sees itself at
//!   `/run/edge-runner/tool`.
//! * [`run`] is synchronous (call it from `spawn_blocking` in async code) and returns only
//!   after every process of the run is gone and reaped, its cgroup and runsc container
//!   removed. Leftovers of a runner killed mid-run are swept at the next start ([`sweep`],
//!   also called once per process by the first [`run`]).
//! * [`SandboxError::refusal`] separates a refusal (`sandbox_unavailable`,
//!   `apparmor_unavailable`, `seccomp_unavailable`, `posture_mismatch`: exit 3) from a
//!   runner failure (I/O, setup: exit 4).
//! * [`Outcome`] and [`Posture`] carry the fields of the WIT `outcome` and `sandbox-posture`
//!   records with the same meaning.
//!
//! # Module map
//!
//! The interface: `launch` (what a run gets: [`Launch`], [`Executable`]), `error`
//! ([`SandboxError`]), `outcome` (what it gives back). Deciding: `policy` (the `[sandbox]`
//! section), `support` (what the host can enforce), `plan` (policy + host = backend and
//! protections, or a refusal). Shared by both backends: `context` (one run's inputs, its
//! cgroup and posture record), `view` (the tool's path, base environment and masked
//! paths), `supervise` (deadline, SIGTERM, grace, SIGKILL, drain, accounting), `output`
//! (bounded concurrent capture), `cgroup`, `state` (run directories and locks), `seccomp`
//! (the syscall table, compiled for both), `apparmor` (the shipped profiles). The
//! backends: `native/` (namespaces, mounts, caps, seccomp, AppArmor, rlimits; step order
//! in `native/init.rs`) and `runsc/` (OCI bundle via oci-spec, private state, sweeping).
//! `posture` confirms the native child's posture from /proc, and `sys` is the only module
//! with `unsafe` code.

pub mod apparmor;
pub mod cgroup;
mod context;
mod error;
mod launch;
mod native;
mod outcome;
mod output;
pub mod plan;
pub mod policy;
mod posture;
mod runsc;
pub mod seccomp;
mod state;
mod supervise;
pub mod support;
mod sys;
mod view;

pub use error::SandboxError;
pub use launch::{Executable, Launch};
pub use outcome::{Captured, Outcome, Posture, Termination};
pub use policy::{BackendChoice, Requirement, RunLimits, SandboxPolicy};
pub use view::{TOOL_PATH, base_env};

use std::path::{Path, PathBuf};
use std::sync::Once;

/// Runs `launch` under `policy`. See the module documentation.
pub fn run(policy: &SandboxPolicy, launch: Launch) -> Result<Outcome, SandboxError> {
    prepare(policy)?.run(launch)
}

/// Decides how tasks would run on this host now, without running anything: the policy is
/// checked, the host probed and the backend chosen. A required protection the host lacks
/// is refused here, so a caller can refuse a task before spending anything on it (its
/// nonce, for the pipeline).
pub fn prepare(policy: &SandboxPolicy) -> Result<Prepared<'_>, SandboxError> {
    let mut clock = crate::timing::StageClock::start("sandbox timings");
    plan::seccomp_allow(policy).map_err(SandboxError::Refused)?;
    policy
        .check()
        .map_err(|message| SandboxError::InvalidPolicy { message })?;
    let state_dir = policy
        .state_dir()
        .ok_or(SandboxError::NoRunnerContext)?
        .to_owned();
    let host = support::HostSupport::probe(policy.runsc_path.as_deref());
    let plan = plan::resolve(policy, &host).map_err(SandboxError::Refused)?;
    clock.lap("probe");
    Ok(Prepared {
        policy,
        state_dir,
        host,
        plan,
        clock,
    })
}

/// A sandbox decided by [`prepare`], ready to run one launch.
pub struct Prepared<'a> {
    policy: &'a SandboxPolicy,
    state_dir: PathBuf,
    host: support::HostSupport,
    plan: plan::Plan,
    clock: crate::timing::StageClock,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("backend", &self.plan.backend.name())
            .finish_non_exhaustive()
    }
}

impl Prepared<'_> {
    /// The backend the task will run under (`native` or `runsc`).
    pub fn backend(&self) -> &'static str {
        self.plan.backend.name()
    }

    /// Runs `launch` in the prepared sandbox.
    pub fn run(self, launch: Launch) -> Result<Outcome, SandboxError> {
        let Prepared {
            policy,
            state_dir,
            host,
            plan,
            mut clock,
        } = self;
        launch.check()?;

        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| {
            let report = sweep_with(policy, &host, &state_dir);
            if report.runs > 0 {
                tracing::warn!(
                    runs = report.runs,
                    "swept leftovers of sandbox runs whose runner died"
                );
            }
        });
        clock.lap("sweep");

        state::private_dir(&state::sandbox_dir(&state_dir)).map_err(|source| SandboxError::Io {
            what: format!("prepare {}", state::sandbox_dir(&state_dir).display()),
            source,
        })?;
        let run = state::Run::begin(&state_dir).map_err(|source| SandboxError::Io {
            what: "create the run directory".into(),
            source,
        })?;
        tracing::debug!(run = %run.id, backend = plan.backend.name(), "sandbox run");
        clock.lap("run_dir");
        let ctx = context::RunContext {
            policy,
            plan: &plan,
            run: &run,
            cgroups: host.cgroups.as_ref().filter(|_| plan.cgroups),
            state_dir: &state_dir,
        };
        let result = match &plan.backend {
            plan::Backend::Native => native::run(&ctx, launch, &mut clock),
            plan::Backend::Runsc { binary } => runsc::run(&ctx, binary, launch, &mut clock),
        };
        clock.lap("backend");
        if let Err(e) = run.finish() {
            tracing::warn!(error = %e, "failed to remove a finished run's directory");
        }
        clock.lap("finish");
        result
    }
}

/// What [`sweep`] cleaned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Runs of dead runners whose cgroups, containers and files were removed.
    pub runs: usize,
}

/// Removes what runs of crashed runners left behind (processes, cgroups, runsc containers,
/// bundles). Runs of live runners sharing the state directory are untouched.
pub fn sweep(policy: &SandboxPolicy) -> Result<SweepReport, SandboxError> {
    let state_dir = policy.state_dir().ok_or(SandboxError::NoRunnerContext)?;
    let host = support::HostSupport::probe(policy.runsc_path.as_deref());
    Ok(sweep_with(policy, &host, state_dir))
}

fn sweep_with(
    policy: &SandboxPolicy,
    host: &support::HostSupport,
    state_dir: &Path,
) -> SweepReport {
    let mut report = SweepReport::default();
    for stale in state::stale_runs(state_dir) {
        let cg = host.cgroups.as_ref().and_then(|layout| {
            cgroup::RunCgroup::existing(layout, &policy.cgroup_parent, &stale.id)
        });
        if let Some(Err(e)) = cg.map(cgroup::RunCgroup::remove) {
            tracing::warn!(run = %stale.id, error = %e, "failed to remove a stale cgroup");
        }
        if let Some(binary) = &host.runsc {
            runsc::delete_container(binary, state_dir, &stale.id);
        }
        if let Err(e) = stale.finish() {
            tracing::warn!(error = %e, "failed to remove a stale run directory");
        }
        report.runs += 1;
    }
    report
}
