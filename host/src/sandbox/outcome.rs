//! What a run produced: how the tool ended, its bounded output, its resource use and the
//! isolation that was in force. The one outcome type: it flows unchanged from the sandbox
//! through the pipeline into the event record; `events::mapper::wit` converts it to the
//! `outcome`, `captured-output` and `sandbox-posture` records of `wit/plugin.wit`, which
//! mirror it field for field. No logic lives here.

use serde::Serialize;

/// How the tool's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Termination {
    /// It exited with this status code.
    Exited(i32),
    /// It was killed by this signal number.
    Signaled(i32),
}

impl Termination {
    /// True for `Exited(0)`.
    pub fn success(self) -> bool {
        self == Termination::Exited(0)
    }
}

impl std::fmt::Display for Termination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Termination::Exited(c) => write!(f, "exited with status {c}"),
            Termination::Signaled(s) => {
                let name = nix::sys::signal::Signal::try_from(*s)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// One captured stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Captured {
    /// The kept bytes (at most the configured cap).
    #[serde(serialize_with = "lossy")]
    pub bytes: Vec<u8>,
    /// How many bytes the tool wrote in total.
    pub total_bytes: u64,
    /// True when `bytes` is shorter than what the tool wrote.
    pub truncated: bool,
}

impl Captured {
    /// Output that was captured whole.
    pub fn complete(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        Self {
            total_bytes: bytes.len() as u64,
            truncated: false,
            bytes,
        }
    }
}

fn lossy<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// The isolation that was actually in force while the tool ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Posture {
    /// `runsc` or `native`.
    pub backend: String,
    /// Namespaces the tool ran in (`user`, `mount`, `pid`, `net`, `ipc`, `uts`, `cgroup`).
    pub namespaces: Vec<String>,
    /// Capabilities held by the tool (empty when all five sets were cleared).
    pub capabilities: Vec<String>,
    /// `filter`, `off` or `gvisor`.
    pub seccomp: String,
    /// System calls the operator added to the native allow list (`[sandbox] seccomp_allow`).
    pub seccomp_extra: Vec<String>,
    /// `abi:<n>` (a Landlock ruleset was in force under the kernel's ABI `n`),
    /// `unavailable`, `off` or `gvisor`.
    pub landlock: String,
    /// `v2:<controllers>`, `v1:<controllers>` (the controllers whose limits applied),
    /// `unavailable` or `off`.
    pub cgroup: String,
    /// `enforced:<profile>`, `unavailable` or `off`.
    pub apparmor: String,
    /// `none` or `loopback-only`.
    pub network: String,
    /// The uid and gid the tool ran as (inside the sandbox).
    pub uid: u32,
    /// The gid the tool ran as (inside the sandbox).
    pub gid: u32,
    /// no_new_privs was set.
    pub no_new_privs: bool,
    /// The root filesystem was read-only.
    pub read_only_root: bool,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// How the tool ended.
    pub termination: Termination,
    /// The wall-clock limit was reached and the sandbox was killed.
    pub timed_out: bool,
    /// What the tool wrote on stdout.
    pub stdout: Captured,
    /// What the tool wrote on stderr.
    pub stderr: Captured,
    /// Wall-clock time from the tool's start to its end, milliseconds.
    pub wall_ms: u64,
    /// CPU time (user + system) of everything in the sandbox, milliseconds.
    pub cpu_ms: u64,
    /// Peak memory of the sandbox, bytes (0 when the backend cannot tell).
    pub peak_memory_bytes: u64,
    /// The isolation that was in force while the tool ran.
    pub posture: Posture,
}

impl Outcome {
    /// True when the tool exited 0 within its time.
    pub fn success(&self) -> bool {
        !self.timed_out && self.termination.success()
    }
}
