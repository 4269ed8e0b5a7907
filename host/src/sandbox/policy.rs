//! The `[sandbox]` policy: which backend, which protections are required, who the tool
//! runs as, what it sees, and the default limits. Deserialized from the configuration with
//! hardened defaults; unknown keys are refused. This module only describes and checks the
//! policy; it never probes the host (see `support`) and never launches anything.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which sandbox backend runs the tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// `runsc` when its binary is installed, otherwise `native`. The choice is recorded in
    /// the outcome's posture; it never changes in the middle of a run.
    #[default]
    Auto,
    /// gVisor: the tool runs on gVisor's user-space kernel.
    Runsc,
    /// Namespaces, seccomp, capabilities and rlimits applied by the runner itself.
    Native,
}

impl BackendChoice {
    /// The configuration value (`auto`, `runsc`, `native`).
    pub fn as_str(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::Runsc => "runsc",
            BackendChoice::Native => "native",
        }
    }
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "runsc" => Ok(Self::Runsc),
            "native" => Ok(Self::Native),
            other => Err(format!(
                "unknown backend {other:?}; expected auto, runsc or native"
            )),
        }
    }
}

/// How strongly a protection is wanted. `Required` is the default for every protection:
/// when the host cannot apply it, the task is refused with a stable reason code. The
/// operator relaxes one protection at a time, explicitly; the outcome records what was in
/// force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Requirement {
    /// Refuse the task when the protection cannot be applied.
    #[default]
    Required,
    /// Apply the protection when the host supports it; otherwise run without it and record
    /// that in the posture.
    IfAvailable,
    /// Do not apply the protection.
    Off,
}

impl Requirement {
    /// The configuration value (`required`, `if-available`, `off`).
    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Required => "required",
            Requirement::IfAvailable => "if-available",
            Requirement::Off => "off",
        }
    }
}

impl std::str::FromStr for Requirement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "required" => Ok(Self::Required),
            "if-available" => Ok(Self::IfAvailable),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown requirement {other:?}; expected required, if-available or off"
            )),
        }
    }
}

/// Limits of one run. The policy holds the operator's defaults; a task's own limits (from
/// its manifest, already checked against the operator's maxima) arrive in
/// [`super::Launch::limits`].
///
/// The three limits a manifest may request (`timeout_ms`, `memory_bytes`, `output_bytes`)
/// are configured once, in `[limits]` (defaults and maxima), and copied here by
/// `Config::sandbox_policy`; `[sandbox.limits]` refuses them so that no second default can
/// disagree with the first, and does not print them either (`config check` prints the
/// configuration: these values would be placeholders there, and would not load back).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunLimits {
    /// Wall-clock limit from the moment the tool starts, milliseconds. At the limit the
    /// sandbox gets SIGTERM, then SIGKILL after `kill_grace_ms`.
    #[serde(skip)]
    pub timeout_ms: u64,
    /// Time between SIGTERM and SIGKILL of the whole sandbox on timeout, milliseconds.
    pub kill_grace_ms: u64,
    /// Memory cap of the sandbox (cgroup), bytes. With runsc it covers gVisor's own memory
    /// as well, plus `runsc_overhead_bytes` of the policy.
    #[serde(skip)]
    pub memory_bytes: u64,
    /// Address-space cap of each process (RLIMIT_AS), bytes.
    pub address_space_bytes: u64,
    /// Cap on the bytes kept from stdout, and separately from stderr. Bytes past the cap
    /// are counted and discarded.
    #[serde(skip)]
    pub output_bytes: u64,
    /// Processes (and threads) the tool may have at once (pids cgroup and RLIMIT_NPROC).
    pub max_processes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Largest file the tool may write (RLIMIT_FSIZE), bytes.
    pub file_size_bytes: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            kill_grace_ms: 500,
            memory_bytes: 512 << 20,
            address_space_bytes: 4 << 30,
            output_bytes: 1 << 20,
            max_processes: 64,
            open_files: 256,
            file_size_bytes: 64 << 20,
        }
    }
}

impl RunLimits {
    /// RLIMIT_CPU in seconds: the wall-clock limit rounded up, plus one second, so that a
    /// tool spinning on every core is stopped even if the runner's timer were late.
    pub(crate) fn cpu_seconds(&self) -> u64 {
        self.timeout_ms.div_ceil(1000).saturating_add(1)
    }

    /// Refuses limits that cannot work (zero timeout, tiny memory, no processes).
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.timeout_ms == 0 {
            return Err("timeout_ms must be positive".into());
        }
        if self.memory_bytes < MIN_MEMORY_BYTES || self.address_space_bytes < MIN_MEMORY_BYTES {
            return Err("memory_bytes and address_space_bytes must be at least 8 MiB".into());
        }
        if self.max_processes == 0 || self.open_files < 8 {
            return Err("max_processes must be positive and open_files at least 8".into());
        }
        if self.output_bytes > (1 << 30) {
            return Err("output_bytes must be at most 1 GiB".into());
        }
        Ok(())
    }
}

/// The smallest memory (and address-space) limit a run can have: below it not even a
/// shell starts. Manifests asking for less are refused before the nonce is spent.
pub const MIN_MEMORY_BYTES: u64 = 8 << 20;

/// The `[sandbox]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxPolicy {
    /// `auto`, `runsc` or `native`.
    pub backend: BackendChoice,
    /// AppArmor confinement of what the runner launches (exec transition into
    /// `apparmor_profile`, or `apparmor_runsc_profile` for runsc).
    pub apparmor: Requirement,
    /// The native backend's seccomp filter. With runsc, gVisor intercepts every system call
    /// itself (posture `gvisor`); `required` also loads the same deny rules inside gVisor.
    pub seccomp: Requirement,
    /// The native backend's Landlock ruleset, a second filesystem layer under the mount
    /// view: execute only the tool and `landlock_exec`, write only the private `/tmp` (and
    /// the harmless devices), read only the view; no TCP, no abstract sockets or signals
    /// outside the sandbox where the kernel's ABI has them. runsc: not applied (`gvisor`).
    pub landlock: Requirement,
    /// Directories whose programs and libraries the tool may execute under Landlock
    /// (interpreters, the dynamic loader, the utilities a script runs); entries that do not
    /// exist in the root filesystem are skipped.
    pub landlock_exec: Vec<PathBuf>,
    /// Per-run cgroups (pids and memory controllers): the sandbox-wide process and memory
    /// caps and the peak-memory figure. Without them only per-process rlimits apply.
    pub cgroups: Requirement,
    /// The profile the native backend's tool runs under.
    pub apparmor_profile: String,
    /// The profile the `runsc` process tree runs under (runsc ignores `apparmorProfile`).
    pub apparmor_runsc_profile: String,
    /// The tool's uid and gid inside the sandbox. Never 0; no supplementary groups.
    pub uid: u32,
    pub(crate) gid: u32,
    /// The root filesystem the tool sees, read-only. `/` is a read-only view of the host.
    pub rootfs: PathBuf,
    /// Paths hidden inside the sandbox (an empty read-only directory or an empty file
    /// stands in for each). The runner's own secrets are added by
    /// [`SandboxPolicy::with_runner`].
    pub masked_paths: Vec<PathBuf>,
    /// Size of the private `/tmp`, bytes.
    pub tmp_bytes: u64,
    /// The runsc binary; `None` searches `PATH`.
    pub runsc_path: Option<PathBuf>,
    /// Memory gVisor itself needs on top of the tool's `memory_bytes`, bytes.
    pub runsc_overhead_bytes: u64,
    /// Name of the cgroup under which each run gets its own cgroup.
    pub cgroup_parent: String,
    /// System calls added to the native allow list: `"*"` for every tool, or a tool digest
    /// (`sha256:<hex>`) for that tool only. Names are checked against the runner's x86-64
    /// table; a call the deny table refuses cannot be added.
    pub seccomp_allow: BTreeMap<String, Vec<String>>,
    /// Default limits.
    pub limits: RunLimits,
    /// What only the runner knows; set by [`SandboxPolicy::with_runner`].
    #[serde(skip)]
    pub(crate) runner: Option<RunnerContext>,
}

/// The runner's state directory and secret paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunnerContext {
    pub state_dir: PathBuf,
    pub secrets: Vec<PathBuf>,
}

/// Paths a tool has no business reading, hidden by default: home directories, runtime
/// sockets (a unix socket is reachable without a network), logs and spools.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/home",
    "/root",
    "/run",
    "/var/run",
    "/var/tmp",
    "/var/log",
    "/var/spool",
    "/var/mail",
    "/var/backups",
    "/boot",
    "/mnt",
    "/media",
    "/srv",
    "/lost+found",
];

/// Where a Debian system keeps programs, interpreters, the dynamic loader and libraries.
pub const DEFAULT_LANDLOCK_EXEC: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64"];

impl Default for SandboxPolicy {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            apparmor: Requirement::Required,
            seccomp: Requirement::Required,
            landlock: Requirement::Required,
            landlock_exec: DEFAULT_LANDLOCK_EXEC.iter().map(PathBuf::from).collect(),
            cgroups: Requirement::Required,
            apparmor_profile: "edge-runner-tool".into(),
            apparmor_runsc_profile: "edge-runner-runsc".into(),
            uid: 65534,
            gid: 65534,
            rootfs: PathBuf::from("/"),
            masked_paths: DEFAULT_MASKED_PATHS.iter().map(PathBuf::from).collect(),
            tmp_bytes: 64 << 20,
            runsc_path: None,
            runsc_overhead_bytes: 256 << 20,
            cgroup_parent: "edge-runner".into(),
            seccomp_allow: BTreeMap::new(),
            limits: RunLimits::default(),
            runner: None,
        }
    }
}

impl SandboxPolicy {
    /// Completes the policy with what only the runner knows: its state directory (private
    /// runsc state, run locks, the staging mount point) and its secret paths (key set,
    /// configuration file, armory, state directory), which are masked in every sandbox.
    pub fn with_runner(mut self, state_dir: &Path, secrets: &[PathBuf]) -> Self {
        let mut all = secrets.to_vec();
        all.push(state_dir.to_owned());
        all.sort();
        all.dedup();
        self.runner = Some(RunnerContext {
            state_dir: state_dir.to_owned(),
            secrets: all,
        });
        self
    }

    /// The runner's state directory, once [`SandboxPolicy::with_runner`] set it.
    pub fn state_dir(&self) -> Option<&Path> {
        self.runner.as_ref().map(|r| r.state_dir.as_path())
    }

    /// Every path masked in the sandbox: the policy's list and the runner's secrets.
    pub fn all_masked_paths(&self) -> Vec<PathBuf> {
        let mut v = self.masked_paths.clone();
        if let Some(r) = &self.runner {
            v.extend(r.secrets.iter().cloned());
        }
        v
    }

    /// The system calls added to the allow list for the tool with `digest` (the `"*"`
    /// entry plus the tool's own), unchecked.
    pub fn seccomp_extra(&self, digest: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = self.seccomp_allow.get("*").cloned().unwrap_or_default();
        if let Some(own) = digest.and_then(|d| self.seccomp_allow.get(d)) {
            v.extend(own.iter().cloned());
        }
        v.sort();
        v.dedup();
        v
    }

    /// Checks `seccomp_allow`: keys `"*"` or a tool digest, every name a known call that the
    /// deny table does not refuse. The message starts with the stable code.
    pub fn check_seccomp_allow(&self) -> Result<(), String> {
        for (key, names) in &self.seccomp_allow {
            let digest_like = key.strip_prefix("sha256:").is_some_and(|h| {
                h.len() == 64
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
            if key != "*" && !digest_like {
                return Err(format!(
                    "{}: sandbox.seccomp_allow key {key:?} is neither \"*\" (every tool) nor a \
                     tool digest sha256:<64 lowercase hex digits>",
                    crate::reason::Reason::SeccompAllowUnknown.code()
                ));
            }
            super::seccomp::check_extra(names).map_err(|e| {
                format!(
                    "{}: {e} (in [sandbox.seccomp_allow] {key:?})",
                    crate::reason::Reason::SeccompAllowUnknown.code()
                )
            })?;
        }
        Ok(())
    }

    /// Checks values a configuration could get wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.uid == 0 || self.gid == 0 {
            return Err("sandbox.uid and sandbox.gid must not be 0".into());
        }
        if !self.rootfs.is_absolute() {
            return Err("sandbox.rootfs must be an absolute path".into());
        }
        if let Some(p) = self
            .masked_paths
            .iter()
            .find(|p| !p.is_absolute() || p.as_os_str() == "/")
        {
            return Err(format!(
                "sandbox.masked_paths entry {} must be an absolute path other than /",
                p.display()
            ));
        }
        if self.tmp_bytes < (1 << 20) {
            return Err("sandbox.tmp_bytes must be at least 1 MiB".into());
        }
        for (name, profile) in [
            ("apparmor_profile", &self.apparmor_profile),
            ("apparmor_runsc_profile", &self.apparmor_runsc_profile),
        ] {
            let ok = !profile.is_empty()
                && profile.len() <= 128
                && profile
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(format!(
                    "sandbox.{name} must be 1-128 characters of letters, digits, '-', '_' or '.'"
                ));
            }
        }
        self.check_seccomp_allow()?;
        if let Some(p) = self.landlock_exec.iter().find(|p| !p.is_absolute()) {
            return Err(format!(
                "sandbox.landlock_exec entry {} must be an absolute path",
                p.display()
            ));
        }
        let cg = &self.cgroup_parent;
        if cg.is_empty() || cg.contains('/') || cg.starts_with('.') {
            return Err("sandbox.cgroup_parent must be a single cgroup name".into());
        }
        self.limits
            .check()
            .map_err(|m| format!("sandbox.limits: {m}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_hardened() {
        let p = SandboxPolicy::default();
        assert_eq!(p.apparmor, Requirement::Required);
        assert_eq!(p.seccomp, Requirement::Required);
        assert_ne!(p.uid, 0);
        assert!(p.masked_paths.iter().any(|m| m == Path::new("/run")));
        assert!(p.check().is_ok());
    }

    #[test]
    fn parses_a_section_and_refuses_unknown_keys() {
        let p: SandboxPolicy = toml::from_str(
            "backend = \"native\"\napparmor = \"if-available\"\n[limits]\nkill_grace_ms = 5\n",
        )
        .unwrap();
        assert_eq!(p.backend, BackendChoice::Native);
        assert_eq!(p.apparmor, Requirement::IfAvailable);
        assert_eq!(p.limits.kill_grace_ms, 5);
        assert_eq!(p.limits.output_bytes, 1 << 20);
        // What a manifest may request is configured in the top-level [limits] only.
        for key in ["timeout_ms", "memory_bytes", "output_bytes"] {
            assert!(toml::from_str::<SandboxPolicy>(&format!("[limits]\n{key} = 5\n")).is_err());
        }
        // ...and not printed here either (it would not load back).
        let printed = toml::to_string(&SandboxPolicy::default()).unwrap();
        assert!(!printed.contains("timeout_ms"), "{printed}");
        assert_eq!(
            toml::from_str::<SandboxPolicy>(&printed).unwrap(),
            SandboxPolicy::default()
        );
        assert!(toml::from_str::<SandboxPolicy>("apparmour = \"off\"\n").is_err());
        assert!(toml::from_str::<SandboxPolicy>("[limits]\ntimeot_ms = 1\n").is_err());
        assert!(toml::from_str::<SandboxPolicy>("backend = \"docker\"\n").is_err());
    }

    #[test]
    fn refuses_root_and_bad_names() {
        let p = SandboxPolicy {
            uid: 0,
            ..SandboxPolicy::default()
        };
        assert!(p.check().is_err());
        let p = SandboxPolicy {
            apparmor_profile: "x y".into(),
            ..SandboxPolicy::default()
        };
        assert!(p.check().is_err());
        let p = SandboxPolicy {
            masked_paths: vec![PathBuf::from("/")],
            ..SandboxPolicy::default()
        };
        assert!(p.check().is_err());
    }

    #[test]
    fn runner_secrets_are_masked() {
        let p = SandboxPolicy::default().with_runner(
            Path::new("/var/lib/er"),
            &[PathBuf::from("/etc/er/keys.json")],
        );
        let all = p.all_masked_paths();
        assert!(all.contains(&PathBuf::from("/etc/er/keys.json")));
        assert!(all.contains(&PathBuf::from("/var/lib/er")));
    }
}
