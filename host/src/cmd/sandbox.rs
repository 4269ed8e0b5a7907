//! `edge-runner sandbox check` and `edge-runner sandbox exec`: what this host can enforce,
//! and a local program run under exactly the policy tasks get. Neither verifies anything.

use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use edge_runner::config::Config;
use edge_runner::sandbox::{
    self, BackendChoice, Executable, Launch, Outcome, Requirement, SandboxError, SandboxPolicy,
    support::{AppArmor, HostSupport},
};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Inspect and try the sandbox.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: SandboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    Check(CheckArgs),
    Exec(ExecArgs),
}

/// Report what this host can enforce and whether the configured policy can run here.
///
/// Probes runsc (and runs /bin/true in it), AppArmor, seccomp, user namespaces, the mount
/// API, cgroups and Landlock, then resolves the configured [sandbox] policy and, unless it
/// is refused, runs /bin/true under it. Exit 0: the policy runs here; 3: it is refused (the
/// reason says how to install or relax the missing protection); 4: the trial run failed.
///
/// Example: edge-runner sandbox check
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Run a local program under the sandbox policy tasks get, printing its output and the
/// posture that was in force.
///
/// THIS VERIFIES NOTHING: no signature, no digest, no armory. It copies PROGRAM into a
/// private directory and runs that copy exactly as a task's tool would run (same backend,
/// protections, identity, view and limits), so operators can test their policy. The
/// tool's stdout and stderr are passed through; the outcome goes to stderr (or stdout as
/// JSON with --json). Exit 0: the program exited 0; 1: it failed, was killed or timed out;
/// 3: the policy was refused on this host; 4: the runner failed.
///
/// Example: edge-runner sandbox exec --backend native --apparmor if-available -- /bin/id
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Backend: auto, runsc or native [default: from the configuration].
    #[arg(long, value_name = "B")]
    pub backend: Option<BackendChoice>,
    /// AppArmor: required, if-available or off [default: from the configuration].
    #[arg(long, value_name = "MODE")]
    pub apparmor: Option<Requirement>,
    /// Seccomp: required, if-available or off [default: from the configuration].
    #[arg(long, value_name = "MODE")]
    pub seccomp: Option<Requirement>,
    /// Wall-clock limit, milliseconds [default: from the configuration].
    #[arg(long, value_name = "N")]
    pub timeout_ms: Option<u64>,
    /// Bytes kept from each of stdout and stderr [default: from the configuration].
    #[arg(long, value_name = "N")]
    pub output_bytes: Option<u64>,
    /// Memory cap of the sandbox, bytes [default: from the configuration].
    #[arg(long, value_name = "N")]
    pub memory_bytes: Option<u64>,
    /// An environment variable for the program (repeatable); PATH, HOME, TMPDIR and LANG
    /// are set by default.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A file whose bytes become the program's stdin (as a task's parameters would).
    #[arg(long, value_name = "FILE")]
    pub stdin_file: Option<PathBuf>,
    /// Print the whole outcome as JSON on stdout instead of passing the output through.
    #[arg(long)]
    pub json: bool,
    /// The program (searched in PATH when it has no slash) and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM ARGS"
    )]
    pub command: Vec<String>,
}

pub fn run(global: &Global, args: SandboxArgs) -> CmdResult {
    match args.command {
        SandboxCommand::Check(a) => check(global, a),
        SandboxCommand::Exec(a) => exec(global, a),
    }
}

/// The configuration file in use, if any (the same choice as `load_config`).
fn policy_for(global: &Global) -> Result<(Config, SandboxPolicy), Failure> {
    let config = super::load_config(global)?;
    let path = super::config_path(global).and_then(|p| std::fs::canonicalize(p).ok());
    let mut policy = config.sandbox_policy(path.as_deref());
    // The limits `run` gives a task whose manifest names none.
    policy.limits = edge_runner::pipeline::task_limits(&policy.limits, config.limits.defaults());
    Ok((config, policy))
}

fn runner_err(context: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| Failure::Runner(anyhow::Error::new(e).context(context))
}

/// A private, runner-owned copy of `program` (mode 0555 in a 0700 directory), open
/// read-only: what the armory hands the sandbox for a verified tool.
struct PrivateCopy {
    dir: PathBuf,
}

impl Drop for PrivateCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn private_copy(state_dir: &Path, program: &str) -> Result<(PrivateCopy, Executable), Failure> {
    let source = find_program(program).ok_or_else(|| {
        Failure::Usage(anyhow::anyhow!("program {program} was not found in PATH"))
    })?;
    let base = state_dir.join("sandbox").join("exec");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)
        .map_err(runner_err(format!("failed to create {}", base.display())))?;
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd)
        .map_err(|e| Failure::Runner(anyhow::anyhow!("failed to get random bytes: {e}")))?;
    let dir = base.join(rnd.iter().map(|b| format!("{b:02x}")).collect::<String>());
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(runner_err(format!("failed to create {}", dir.display())))?;
    let copy = PrivateCopy { dir: dir.clone() };
    let path = dir.join("tool");
    std::fs::copy(&source, &path)
        .map_err(runner_err(format!("failed to copy {}", source.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).map_err(runner_err(
        format!("failed to set the mode of {}", path.display()),
    ))?;
    let file = std::fs::File::open(&path)
        .map_err(runner_err(format!("failed to open {}", path.display())))?;
    Ok((copy, Executable::new(file, path)))
}

fn sandbox_failure(e: SandboxError) -> Failure {
    match e.refusal() {
        Some(r) => Failure::Denied(r),
        None => Failure::Runner(anyhow::Error::new(e)),
    }
}

fn exec(global: &Global, args: ExecArgs) -> CmdResult {
    let (config, mut policy) = policy_for(global)?;
    if let Some(b) = args.backend {
        policy.backend = b;
    }
    if let Some(a) = args.apparmor {
        policy.apparmor = a;
    }
    if let Some(s) = args.seccomp {
        policy.seccomp = s;
    }
    let mut limits = policy.limits.clone();
    if let Some(t) = args.timeout_ms {
        limits.timeout_ms = t;
    }
    if let Some(o) = args.output_bytes {
        limits.output_bytes = o;
    }
    if let Some(m) = args.memory_bytes {
        limits.memory_bytes = m;
    }
    let mut env = edge_runner::sandbox::base_env();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Failure::Usage(anyhow::anyhow!("--env {kv:?} is not NAME=VALUE")))?;
        env.retain(|(name, _)| name != k);
        env.push((k.to_owned(), v.to_owned()));
    }
    let stdin = match &args.stdin_file {
        Some(p) => std::fs::read(p).map_err(|e| {
            Failure::Usage(anyhow::Error::new(e).context(format!("failed to read {}", p.display())))
        })?,
        None => Vec::new(),
    };
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Failure::Usage(anyhow::anyhow!("no program given")))?;
    let (_copy, executable) = private_copy(&config.state_dir, program)?;
    let launch = Launch {
        executable,
        args: rest.to_vec(),
        env,
        stdin,
        limits,
    };
    let outcome = sandbox::run(&policy, launch).map_err(sandbox_failure)?;
    report(&outcome, args.json)?;
    Ok(if outcome.success() {
        Exit::Ok
    } else {
        Exit::ToolFailed
    })
}

#[allow(clippy::print_stderr)]
fn report(outcome: &Outcome, json: bool) -> Result<(), Failure> {
    let write_err = |e: std::io::Error| {
        Failure::Runner(anyhow::Error::new(e).context("failed to write the output"))
    };
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, outcome)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
            .map_err(write_err)?;
        return Ok(());
    }
    out.write_all(&outcome.stdout.bytes)
        .and_then(|()| out.flush())
        .map_err(write_err)?;
    let mut err = std::io::stderr().lock();
    let p = &outcome.posture;
    let trunc = |c: &sandbox::Captured| {
        if c.truncated {
            format!(
                " (truncated: {} of {} bytes kept)",
                c.bytes.len(),
                c.total_bytes
            )
        } else {
            String::new()
        }
    };
    err.write_all(&outcome.stderr.bytes)
        .and_then(|()| {
            writeln!(
                err,
                "--- edge-runner: {}{} in {} ms (cpu {} ms, peak memory {} KiB){}{}\n\
                 --- posture: backend={} namespaces={} capabilities={} seccomp={}{} landlock={} \
                 cgroup={} apparmor={} network={} uid={} gid={} no_new_privs={} read_only_root={}",
                outcome.termination,
                if outcome.timed_out { ", timed out" } else { "" },
                outcome.wall_ms,
                outcome.cpu_ms,
                outcome.peak_memory_bytes / 1024,
                trunc(&outcome.stdout).replace("truncated", "stdout truncated"),
                trunc(&outcome.stderr).replace("truncated", "stderr truncated"),
                p.backend,
                p.namespaces.join(","),
                if p.capabilities.is_empty() {
                    "none".to_owned()
                } else {
                    p.capabilities.join(",")
                },
                p.seccomp,
                if p.seccomp_extra.is_empty() {
                    String::new()
                } else {
                    format!("+{}", p.seccomp_extra.join(","))
                },
                p.landlock,
                p.cgroup,
                p.apparmor,
                p.network,
                p.uid,
                p.gid,
                p.no_new_privs,
                p.read_only_root,
            )
        })
        .map_err(write_err)
}

/// Runs /bin/true under `policy`; returns a one-line verdict.
fn trial(policy: &SandboxPolicy, state_dir: &Path) -> Result<String, SandboxError> {
    let (_copy, executable) =
        private_copy(state_dir, "/bin/true").map_err(|f| SandboxError::Io {
            what: "prepare the trial program".into(),
            source: std::io::Error::other(match f {
                Failure::Usage(e) | Failure::Runner(e) => format!("{e:#}"),
                Failure::Denied(r) | Failure::RunnerRefusal(r) => r.to_string(),
            }),
        })?;
    let launch = Launch {
        executable,
        args: Vec::new(),
        env: edge_runner::sandbox::base_env(),
        stdin: Vec::new(),
        limits: policy.limits.clone(),
    };
    let o = sandbox::run(policy, launch)?;
    if o.success() {
        Ok(format!(
            "ran /bin/true in {} ms (seccomp={}, apparmor={})",
            o.wall_ms, o.posture.seccomp, o.posture.apparmor
        ))
    } else {
        Err(SandboxError::Io {
            what: "run /bin/true".into(),
            source: std::io::Error::other(format!("it {}", o.termination)),
        })
    }
}

fn describe(r: &Result<String, SandboxError>) -> String {
    match r {
        Ok(s) => format!("works: {s}"),
        Err(e) => format!("does not work: {}", edge_runner::reason::chain(e)),
    }
}

fn check(global: &Global, args: CheckArgs) -> CmdResult {
    let (config, policy) = policy_for(global)?;
    let host = HostSupport::probe(policy.runsc_path.as_deref());
    let relaxed = |backend| {
        let mut p = policy.clone();
        p.backend = backend;
        p.apparmor = Requirement::IfAvailable;
        p
    };
    let runsc = match &host.runsc {
        Some(path) => format!(
            "{}: {}",
            path.display(),
            describe(&trial(&relaxed(BackendChoice::Runsc), &config.state_dir))
        ),
        None => "not installed (apt-get install runsc)".to_owned(),
    };
    let native = describe(&trial(&relaxed(BackendChoice::Native), &config.state_dir));
    let apparmor = match &host.apparmor {
        AppArmor::Enabled { .. } => {
            let loaded = |p: &str| {
                if host.apparmor_profile_loaded(p) {
                    "loaded"
                } else {
                    "not loaded (edge-runner apparmor install)"
                }
            };
            format!(
                "enabled; {} {}, {} {}",
                policy.apparmor_profile,
                loaded(&policy.apparmor_profile),
                policy.apparmor_runsc_profile,
                loaded(&policy.apparmor_runsc_profile)
            )
        }
        AppArmor::Unavailable(why) => format!("unavailable: {why}"),
    };
    let ok_or = |r: &Result<(), String>| match r {
        Ok(()) => "available".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let seccomp = match &host.seccomp {
        Ok(()) => format!(
            "available (native: an allow list of {} system calls, ENOSYS for any other; {} \
             known-dangerous calls EPERM; foreign ABIs killed)",
            sandbox::seccomp::allowed_syscalls().len(),
            sandbox::seccomp::denied_syscalls().len()
        ),
        Err(e) => format!("unavailable: {e}"),
    };
    let cgroups = host.cgroups.as_ref().map_or_else(
        || match &host.cgroups_problem {
            Some(sandbox::cgroup::Problem::NotDelegated(why)) => {
                format!("refused (cgroup_not_delegated): {why}")
            }
            Some(sandbox::cgroup::Problem::Missing(why)) => {
                format!("unavailable (no per-run process and memory caps; rlimits only): {why}")
            }
            None => "unavailable".to_owned(),
        },
        |l| l.describe(),
    );
    let landlock = host.landlock_abi.map_or_else(
        || "unavailable (the native sandbox's second filesystem layer cannot apply)".to_owned(),
        |v| {
            format!(
                "ABI {v} (native: execute only the tool and {}, write only /tmp)",
                policy
                    .landlock_exec
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    );
    let wanted = format!(
        "backend={} apparmor={} seccomp={} landlock={} cgroups={}",
        policy.backend.as_str(),
        policy.apparmor.as_str(),
        policy.seccomp.as_str(),
        policy.landlock.as_str(),
        policy.cgroups.as_str()
    );
    let (verdict, exit) = match sandbox::plan::resolve(&policy, &host) {
        Err(r) => (
            format!("REFUSED: {}: {}", r.reason.code(), r.message),
            Exit::Denied,
        ),
        Ok(plan) => match trial(&policy, &config.state_dir) {
            Ok(s) => (
                format!(
                    "OK: tasks run with backend={} seccomp={} landlock={} apparmor={}; {s}",
                    plan.backend.name(),
                    plan.seccomp_posture(),
                    plan.landlock_posture(),
                    plan.apparmor_posture()
                ),
                Exit::Ok,
            ),
            Err(e) => (
                format!("FAILED: {}", edge_runner::reason::chain(&e)),
                if e.refusal().is_some() {
                    Exit::Denied
                } else {
                    Exit::RunnerFailed
                },
            ),
        },
    };
    let rows = [
        ("runsc", runsc),
        ("native", native),
        ("apparmor", apparmor),
        ("seccomp", seccomp),
        ("user namespaces", ok_or(&host.user_namespaces)),
        ("mount api", ok_or(&host.mount_api)),
        ("cgroups", cgroups),
        ("landlock", landlock),
        ("policy", wanted),
        ("verdict", verdict),
    ];
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let map: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(k, v)| (k.replace(' ', "_"), serde_json::Value::from(v.clone())))
            .collect();
        serde_json::to_writer_pretty(&mut out, &map)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        rows.iter()
            .try_for_each(|(k, v)| writeln!(out, "{k:<16} {v}"))
    };
    written.map_err(runner_err("failed to write the report".into()))?;
    Ok(exit)
}
