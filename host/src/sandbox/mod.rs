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
//! `policy` (the `[sandbox]` section), `support` (what the host can enforce), `plan`
//! (policy + host = backend and protections, or a refusal), `native/` (namespaces, mounts,
//! caps, seccomp, AppArmor, rlimits; step order in `native/init.rs`), `runsc/` (OCI bundle
//! via oci-spec, private state, sweeping), `seccomp` (the deny table for both backends),
//! `posture` (confirming the child's posture from /proc), `output` (bounded concurrent
//! capture), `cgroup`, `state` (run directories and locks), `apparmor` (the shipped
//! profiles), and `sys`, the only module with `unsafe` code.

pub mod apparmor;
pub mod cgroup;
mod native;
mod outcome;
mod output;
pub mod plan;
pub mod policy;
mod posture;
mod runsc;
pub mod seccomp;
mod state;
pub mod support;
mod sys;

pub use native::mounts::TOOL_PATH;
pub use outcome::{Captured, Outcome, Posture, Termination};
pub use policy::{BackendChoice, Requirement, RunLimits, SandboxPolicy};

use crate::reason::Refusal;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// The environment every tool starts from, before the manifest's own variables (which may
/// not override these: see `manifest::env`). `HOME` and `TMPDIR` point at the private
/// `/tmp`; `PATH` is the standard one of the sandbox root.
pub fn base_env() -> Vec<(String, String)> {
    [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The verified executable a run executes.
#[derive(Debug)]
pub struct Executable {
    file: std::fs::File,
    path: PathBuf,
}

impl Executable {
    /// `file` must be an open read-only handle on the private, runner-owned copy at `path`
    /// that holds exactly the verified bytes.
    pub fn new(file: std::fs::File, path: PathBuf) -> Self {
        Self { file, path }
    }

    /// The private copy's path (bind-mounted by runsc).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One run's input.
#[derive(Debug)]
pub struct Launch {
    pub executable: Executable,
    /// Arguments after the program name (the tool's `argv[0]` is [`TOOL_PATH`]).
    pub args: Vec<String>,
    /// The complete environment; nothing of the runner's is inherited.
    pub env: Vec<(String, String)>,
    /// Written to the tool's stdin, which is then closed (the manifest's `parameters`).
    pub stdin: Vec<u8>,
    pub limits: RunLimits,
}

/// Why a run did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A required protection is not available, or the sandbox came up in another posture.
    #[error(transparent)]
    Refused(Refusal),
    #[error("the sandbox policy is invalid: {message}")]
    InvalidPolicy { message: String },
    #[error("the launch is invalid: {message}")]
    InvalidLaunch { message: String },
    #[error(
        "the sandbox policy lacks the runner's state directory and secrets (SandboxPolicy::with_runner)"
    )]
    NoRunnerContext,
    #[error("failed to {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {step} in the sandbox: {errno}")]
    Child {
        step: String,
        errno: nix::errno::Errno,
    },
    #[error("failed to execute the tool: {errno}")]
    Exec { errno: nix::errno::Errno },
    #[error("failed to run the tool under runsc: {message}")]
    Runsc { message: String },
}

impl SandboxError {
    /// The refusal, when the task was refused rather than the runner failing.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            SandboxError::Refused(r) => Some(r.clone()),
            _ => None,
        }
    }
}

/// A sandbox refusal keeps its own reason; anything else is the runner's failure to set
/// up or supervise the run.
impl crate::reason::Refuse for SandboxError {
    fn reason(&self) -> crate::reason::Reason {
        match self {
            SandboxError::Refused(r) => r.reason,
            _ => crate::reason::Reason::SandboxFailed,
        }
    }

    fn to_refusal(&self) -> Refusal {
        match self {
            SandboxError::Refused(r) => r.clone(),
            other => Refusal::new(self.reason(), crate::reason::chain(other)),
        }
    }
}

fn check_launch(launch: &Launch) -> Result<(), SandboxError> {
    let invalid = |message: String| SandboxError::InvalidLaunch { message };
    launch
        .limits
        .check()
        .map_err(|m| invalid(format!("limits: {m}")))?;
    for (k, _) in &launch.env {
        if k.is_empty() || k.contains('=') {
            return Err(invalid(format!(
                "environment variable name {k:?} is empty or contains '='"
            )));
        }
    }
    if !launch.executable.path.is_absolute() {
        return Err(invalid(format!(
            "the executable path {} is not absolute",
            launch.executable.path.display()
        )));
    }
    Ok(())
}

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
        check_launch(&launch)?;

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
        let cgroups = host.cgroups.as_ref().filter(|_| plan.cgroups);
        let result = match &plan.backend {
            plan::Backend::Native => {
                native::run(policy, &plan, launch, &run, cgroups, &state_dir, &mut clock)
            }
            plan::Backend::Runsc { binary } => {
                runsc::run(policy, &plan, binary, launch, &run, cgroups, &state_dir)
            }
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
