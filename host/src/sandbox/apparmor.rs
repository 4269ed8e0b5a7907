//! The AppArmor profiles edge-runner ships (`host/apparmor/`), their installation
//! (write to `/etc/apparmor.d/`, load with `apparmor_parser`), and the exec transition the
//! runner asks for before starting what it confines. The transition goes through a procfs
//! handle that is checked to be procfs, so a planted file cannot swallow the request
//! (CVE-2019-16884). [`confirm_current`] reads back from the kernel what a running process
//! is confined by, so the runsc posture an event reports is the kernel's, not the plan's. This module never decides whether AppArmor is required (`plan` does).

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::CStr;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

/// The profile tools run under in the native backend.
pub const TOOL_PROFILE: (&str, &str) = (
    "edge-runner-tool",
    include_str!("../../apparmor/edge-runner-tool"),
);
/// The profile the runsc process tree runs under.
pub const RUNSC_PROFILE: (&str, &str) = (
    "edge-runner-runsc",
    include_str!("../../apparmor/edge-runner-runsc"),
);

/// Where profiles are installed by default.
pub const PROFILE_DIR: &str = "/etc/apparmor.d";

/// `PROC_SUPER_MAGIC`.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Asks the kernel to move the calling thread into a profile at its next exec. `request`
/// is `exec <profile>`. Allocation-free: called between fork and exec.
pub(crate) fn exec_transition(request: &CStr) -> Result<(), Errno> {
    let flags = OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let fd = nix::fcntl::open(
        c"/proc/thread-self/attr/apparmor/exec",
        flags,
        Mode::empty(),
    )
    .or_else(|_| nix::fcntl::open(c"/proc/thread-self/attr/exec", flags, Mode::empty()))?;
    let fs = nix::sys::statfs::fstatfs(&fd)?;
    if fs.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
        return Err(Errno::EXDEV);
    }
    super::sys::write_all(fd.as_raw_fd(), request.to_bytes())
}

/// Confirms from `/proc/<pid>/attr/apparmor/current` that `pid` runs under `profile` in
/// enforce mode; otherwise says what the kernel reported instead. A profile in complain
/// mode only logs, so it does not count. (Only `current` can be read for another process:
/// the kernel answers `exec` and `prev` from the reader's own context, so a pending
/// transition cannot be confirmed from outside.)
pub(crate) fn confirm_current(pid: i32, profile: &str) -> Result<(), std::io::Error> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/attr/apparmor/current"))
        .or_else(|_| std::fs::read_to_string(format!("/proc/{pid}/attr/current")))?;
    check_label(&text, profile).map_err(|label| {
        std::io::Error::other(format!(
            "AppArmor label {label:?} instead of \"{profile} (enforce)\""
        ))
    })
}

/// `Ok` when the attribute text names `profile` in enforce mode; else the label found.
fn check_label(text: &str, profile: &str) -> Result<(), String> {
    let label = text.trim_end_matches(['\n', '\0']).trim();
    match label.strip_suffix(" (enforce)") {
        Some(name) if name == profile => Ok(()),
        _ => Err(label.to_owned()),
    }
}

/// Why installing failed.
#[derive(Debug, thiserror::Error)]
pub enum AppArmorError {
    /// The kernel has no AppArmor, so no profile can be installed.
    #[error(
        "AppArmor is not available on this kernel: {reason}; nothing was installed. Run with \
         [sandbox] apparmor = \"if-available\" (or \"off\") until the host has AppArmor"
    )]
    Unavailable {
        /// Why it is not available.
        reason: String,
    },
    /// A profile file could not be written.
    #[error("failed to write the profile {path}")]
    Write {
        /// The profile file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `apparmor_parser` could not be run.
    #[error("failed to run {parser} (install it with: apt-get install apparmor)")]
    Parser {
        /// The parser's path.
        parser: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `apparmor_parser` refused to load a profile.
    #[error("failed to load the profile {path}: apparmor_parser said: {stderr}")]
    Load {
        /// The profile file.
        path: PathBuf,
        /// What the parser wrote on stderr.
        stderr: String,
    },
}

/// Writes the shipped profiles to `dir` and loads them with `parser`. Refuses up front
/// when the kernel has no AppArmor.
pub fn install(dir: &Path, parser: &Path) -> Result<Vec<PathBuf>, AppArmorError> {
    if let super::support::AppArmor::Unavailable(reason) =
        super::support::HostSupport::probe(None).apparmor
    {
        return Err(AppArmorError::Unavailable { reason });
    }
    let mut installed = Vec::new();
    for (name, text) in [TOOL_PROFILE, RUNSC_PROFILE] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| AppArmorError::Write {
            path: path.clone(),
            source,
        })?;
        let out = std::process::Command::new(parser)
            .args(["--replace", "--write-cache"])
            .arg(&path)
            .output()
            .map_err(|source| AppArmorError::Parser {
                parser: parser.to_owned(),
                source,
            })?;
        if !out.status.success() {
            return Err(AppArmorError::Load {
                path,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        installed.push(path);
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_profile_in_enforce_mode_is_confirmed() {
        assert!(check_label("edge-runner-tool (enforce)\n", "edge-runner-tool").is_ok());
        assert!(check_label("edge-runner-tool (enforce)", "edge-runner-tool").is_ok());
        for wrong in [
            "edge-runner-tool (complain)\n",
            "unconfined\n",
            "edge-runner-tool-x (enforce)\n",
            "edge-runner-runsc (enforce)\n",
            "",
        ] {
            assert!(check_label(wrong, "edge-runner-tool").is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn shipped_profiles_declare_their_names_and_deny_the_essentials() {
        for (name, text) in [TOOL_PROFILE, RUNSC_PROFILE] {
            assert!(text.contains(&format!("profile {name} ")), "{name}");
            assert!(text.contains("attach_disconnected"), "{name}");
        }
        let tool = TOOL_PROFILE.1;
        for rule in [
            "deny capability,",
            "deny mount,",
            "deny ptrace,",
            "network unix,",
        ] {
            assert!(tool.contains(rule), "{rule}");
        }
        assert!(!tool.contains("network inet"));
        // The runner's own files, beyond what the mounts mask (issue 12; the VM test
        // reads one and expects EACCES).
        for rule in [
            "audit deny @{EDGE_RUNNER_CONFIG}/{,**} rwklx,",
            "audit deny @{EDGE_RUNNER_STATE}/{,**} rwklx,",
        ] {
            assert!(tool.contains(rule), "{rule}");
        }
        assert!(
            RUNSC_PROFILE
                .1
                .contains("deny @{EDGE_RUNNER_CONFIG}/** rwklx,")
        );
    }
}
