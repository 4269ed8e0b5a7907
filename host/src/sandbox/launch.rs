//! One run's input, as the pipeline hands it to the sandbox: the verified executable (an
//! open handle on the armory's private copy), the arguments, the complete environment, the
//! bytes for stdin and the limits. [`Launch::check`] refuses what no backend could run; it
//! does not look at the host or the policy.

use super::error::SandboxError;
use super::policy::RunLimits;
use std::path::{Path, PathBuf};

/// The verified executable a run executes.
#[derive(Debug)]
pub struct Executable {
    pub(crate) file: std::fs::File,
    path: PathBuf,
    /// The verified digest (`sha256:<hex>`), for per-tool policy (`seccomp_allow`).
    digest: Option<String>,
}

impl Executable {
    /// `file` must be an open read-only handle on the private, runner-owned copy at `path`
    /// that holds exactly the verified bytes.
    pub fn new(file: std::fs::File, path: PathBuf) -> Self {
        Self {
            file,
            path,
            digest: None,
        }
    }

    /// The same executable, known by its verified digest (`sha256:<hex>`): per-tool
    /// policy entries (`[sandbox.seccomp_allow]`) then apply.
    pub fn with_digest(mut self, digest: impl Into<String>) -> Self {
        self.digest = Some(digest.into());
        self
    }

    /// The verified digest, when the caller gave it.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The private copy's path (bind-mounted by runsc).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when the file starts with `#!`: the kernel then hands the tool's path to an
    /// interpreter, so the path (the native backend's descriptor) must survive the exec.
    pub(crate) fn is_script(&self) -> bool {
        use std::os::unix::fs::FileExt as _;
        let mut head = [0u8; 2];
        self.file
            .read_at(&mut head, 0)
            .is_ok_and(|n| n == 2 && head == *b"#!")
    }
}

/// One run's input.
#[derive(Debug)]
pub struct Launch {
    /// The tool to run.
    pub executable: Executable,
    /// Arguments after the program name (the tool's `argv[0]` is [`super::TOOL_PATH`]).
    pub args: Vec<String>,
    /// The complete environment; nothing of the runner's is inherited.
    pub env: Vec<(String, String)>,
    /// Written to the tool's stdin, which is then closed (the manifest's `parameters`).
    pub stdin: Vec<u8>,
    /// The limits the run enforces.
    pub limits: RunLimits,
}

impl Launch {
    /// Refuses a launch no backend could run: impossible limits (the limits' own check,
    /// the one place the memory floor is enforced inside the sandbox), environment names
    /// that are empty or hold `=`, a relative executable path.
    pub(crate) fn check(&self) -> Result<(), SandboxError> {
        let invalid = |message: String| SandboxError::InvalidLaunch { message };
        self.limits
            .check()
            .map_err(|m| invalid(format!("limits: {m}")))?;
        for (k, _) in &self.env {
            if k.is_empty() || k.contains('=') {
                return Err(invalid(format!(
                    "environment variable name {k:?} is empty or contains '='"
                )));
            }
        }
        if !self.executable.path.is_absolute() {
            return Err(invalid(format!(
                "the executable path {} is not absolute",
                self.executable.path.display()
            )));
        }
        Ok(())
    }
}
