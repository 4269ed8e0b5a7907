//! Issue 4: the sandbox, tested from inside. A small C probe (fixtures/sandbox/probe.c,
//! compiled here with the system compiler) runs under each backend and reports what it can
//! see and do; other modes of the same probe misbehave on purpose. These tests need root
//! and runsc (CI has both) and fail, not skip, without them.

mod allowlist;
mod cgroup_v2;
mod faults;
mod isolation;
mod landlock;
mod profiles;
mod reaping;

use edge_runner::sandbox::{
    self, BackendChoice, Executable, Launch, Outcome, Requirement, RunLimits, SandboxPolicy,
};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const BACKENDS: [BackendChoice; 2] = [BackendChoice::Native, BackendChoice::Runsc];

/// The compiled probe (built once per test run).
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sandbox-probe");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sandbox/probe.c");
        let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
        let status = std::process::Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("a C compiler (cc) is needed to build the sandbox probe");
        assert!(status.success(), "failed to compile {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// A runner's world for one test: state directory, secrets, an "armory" holding private
/// copies of the probe, and a cgroup parent of its own.
pub struct World {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub keys: PathBuf,
    pub config: PathBuf,
    pub armory: PathBuf,
    pub cgroup_parent: String,
    pub marker: String,
}

impl World {
    /// Everything lives under `/var/lib/edge-runner-tests`, which the sandbox's read-only
    /// view of the host shows wherever the checkout is: the secrets are hidden by masking,
    /// not by being out of sight. (The target directory would not do: a checkout under
    /// /tmp, /root or /srv is hidden inside the sandbox, which has its own /tmp and masks
    /// the others, and the control file would vanish with the secrets.)
    pub fn new() -> World {
        let base = Path::new("/var/lib/edge-runner-tests");
        std::fs::create_dir_all(base).unwrap();
        std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = tempfile::Builder::new()
            .prefix("sandbox-world-")
            .tempdir_in(base)
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let suffix = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace("sandbox-world-", "");
        // Unique per world: tests run in parallel and look for their own processes.
        let marker = format!("secret-{}-{suffix}", std::process::id());
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        let keys = etc.join("keys.json");
        std::fs::write(&keys, format!("{{\"k\":\"{marker}\"}}")).unwrap();
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        // World-readable on purpose: only masking keeps these from the tool.
        let config = etc.join("config.toml");
        std::fs::write(&config, format!("# {marker}\n")).unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(etc.join("public.txt"), format!("{marker}\n")).unwrap();
        std::fs::set_permissions(
            etc.join("public.txt"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(state.join("replay.db"), format!("{marker}\n")).unwrap();
        std::fs::set_permissions(
            state.join("replay.db"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let armory = dir.path().join("armory");
        std::fs::create_dir(&armory).unwrap();
        std::fs::set_permissions(&armory, std::fs::Permissions::from_mode(0o755)).unwrap();
        World {
            state,
            keys,
            config,
            armory,
            cgroup_parent: format!("er-test-{suffix}"),
            marker,
            dir,
        }
    }

    pub fn policy(&self, backend: BackendChoice) -> SandboxPolicy {
        let mut p = SandboxPolicy::default();
        p.backend = backend;
        p.apparmor = Requirement::IfAvailable;
        p.cgroup_parent = self.cgroup_parent.clone();
        p.limits.timeout_ms = 20_000;
        p.with_runner(
            &self.state,
            &[self.keys.clone(), self.config.clone(), self.armory.clone()],
        )
    }

    /// A private copy of the probe in the armory, as the armory would hand it over.
    pub fn executable(&self) -> Executable {
        let path = self.armory.join(format!("probe-{:016x}", rand()));
        std::fs::copy(probe(), &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        Executable::new(std::fs::File::open(&path).unwrap(), path)
    }

    /// A private copy of `src` (any program) in the armory.
    pub fn tool(&self, src: &Path) -> Executable {
        let path = self.armory.join(format!("tool-{:016x}", rand()));
        std::fs::copy(src, &path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        Executable::new(std::fs::File::open(&path).unwrap(), path)
    }

    /// A script tool (`#!...` first line) in the armory.
    pub fn script(&self, text: &str) -> Executable {
        let path = self.armory.join(format!("script-{:016x}", rand()));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o555)).unwrap();
        Executable::new(std::fs::File::open(&path).unwrap(), path)
    }

    /// Runs `executable` under `policy` (the probe's environment); checks that nothing is
    /// left.
    pub fn run_tool(
        &self,
        policy: &SandboxPolicy,
        executable: Executable,
        args: &[&str],
        limits: RunLimits,
    ) -> Outcome {
        let launch = Launch {
            executable,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: Vec::new(),
            limits,
        };
        let outcome =
            sandbox::run(policy, launch).unwrap_or_else(|e| panic!("{:?}: {e:#?}", policy.backend));
        self.assert_clean(policy.backend);
        outcome
    }

    pub fn launch(&self, args: &[&str], limits: RunLimits) -> Launch {
        Launch {
            executable: self.executable(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            stdin: Vec::new(),
            limits,
        }
    }

    pub fn run(&self, backend: BackendChoice, args: &[&str], limits: RunLimits) -> Outcome {
        let policy = self.policy(backend);
        let outcome = sandbox::run(&policy, self.launch(args, limits))
            .unwrap_or_else(|e| panic!("{backend:?}: {e:#?}"));
        self.assert_clean(backend);
        outcome
    }

    /// Nothing of a finished run survives: run directories, runsc containers, cgroups,
    /// mounts.
    pub fn assert_clean(&self, backend: BackendChoice) {
        let runs = self.state.join("sandbox/runs");
        let left: Vec<_> = std::fs::read_dir(&runs)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            left.is_empty(),
            "{backend:?}: run directories left: {left:?}"
        );
        let runsc_root = self.state.join("sandbox/runsc");
        let containers: Vec<_> = std::fs::read_dir(&runsc_root)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            containers.is_empty(),
            "{backend:?}: runsc state left: {containers:?}"
        );
        for h in ["pids", "memory", "cpuacct", "unified", ""] {
            let parent = Path::new("/sys/fs/cgroup")
                .join(h)
                .join(&self.cgroup_parent);
            let sub: Vec<_> = std::fs::read_dir(&parent)
                .map(|d| {
                    d.flatten()
                        .filter(|e| e.file_type().unwrap().is_dir())
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default();
            assert!(sub.is_empty(), "{backend:?}: cgroups left: {sub:?}");
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(self.dir.path().to_str().unwrap()),
            "{backend:?}: a mount survived"
        );
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for h in ["pids", "memory", "cpuacct", "unified", ""] {
            let _ = std::fs::remove_dir(
                Path::new("/sys/fs/cgroup")
                    .join(h)
                    .join(&self.cgroup_parent),
            );
        }
    }
}

fn rand() -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).unwrap();
    u64::from_le_bytes(b)
}

/// Host processes whose command line contains `token`.
pub fn host_processes_with(token: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| c.windows(token.len()).any(|w| w == token.as_bytes()))
                .unwrap_or(false)
        })
        .filter(|pid| *pid != std::process::id() as i32)
        .collect()
}

pub fn stdout(o: &Outcome) -> String {
    String::from_utf8_lossy(&o.stdout.bytes).into_owned()
}

/// `key=value` lines of the probe.
pub fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in probe output:\n{text}"))
}

/// Tests that need root say so instead of passing vacuously.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the sandbox integration tests need root (CI runs them as root)"
    );
}
