//! What this host can enforce: runsc, AppArmor (and whether our profiles are loaded),
//! seccomp, user namespaces, the mount API the native backend needs, cgroups and Landlock.
//! Each probe is cheap and side-effect free; `sandbox check` adds a real trial run on top.
//! This module observes only; deciding what a policy needs is `plan`'s job.

use super::cgroup::Layout;
use std::fs;
use std::path::{Path, PathBuf};

/// AppArmor as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppArmor {
    /// Enabled; the names of the loaded profiles.
    Enabled {
        /// The loaded profiles' names.
        profiles: Vec<String>,
    },
    /// Not usable, and why.
    Unavailable(String),
}

/// The host's enforcement abilities.
#[derive(Debug, Clone)]
pub struct HostSupport {
    /// The runsc binary, if found.
    pub runsc: Option<PathBuf>,
    /// Whether AppArmor is enabled, and its loaded profiles.
    pub apparmor: AppArmor,
    /// `Ok` when seccomp filters can be installed.
    pub seccomp: Result<(), String>,
    /// `Ok` when the runner can create user namespaces.
    pub user_namespaces: Result<(), String>,
    /// `Ok` when `open_tree`/`mount_setattr`/`move_mount` exist (Linux 5.12+).
    pub mount_api: Result<(), String>,
    /// Usable cgroup controllers.
    pub cgroups: Option<Layout>,
    /// Why `cgroups` is `None` (a v2 cgroup that is not delegated is refused by name).
    pub cgroups_problem: Option<super::cgroup::Problem>,
    /// The Landlock ABI version, if Landlock is enabled.
    pub landlock_abi: Option<i32>,
    /// The runner runs as root.
    pub root: bool,
}

impl HostSupport {
    /// Probes the host. `runsc_path` is the policy's runsc (or `None` to search PATH).
    pub fn probe(runsc_path: Option<&Path>) -> HostSupport {
        let (cgroups, cgroups_problem) = match Layout::detect() {
            Ok(l) => (Some(l), None),
            Err(p) => (None, Some(p)),
        };
        HostSupport {
            runsc: find_runsc(runsc_path),
            apparmor: apparmor(),
            seccomp: seccomp(),
            user_namespaces: user_namespaces(),
            mount_api: mount_api(),
            cgroups,
            cgroups_problem,
            landlock_abi: landlock_abi(),
            root: nix::unistd::geteuid().is_root(),
        }
    }

    /// True when `profile` is loaded (and AppArmor is enabled).
    pub fn apparmor_profile_loaded(&self, profile: &str) -> bool {
        matches!(&self.apparmor, AppArmor::Enabled { profiles } if profiles.iter().any(|p| p == profile))
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The configured runsc, or the first `runsc` on PATH.
pub fn find_runsc(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = configured {
        return is_executable(p).then(|| p.to_owned());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join("runsc"))
        .find(|p| p.is_absolute() && is_executable(p))
}

fn apparmor() -> AppArmor {
    let enabled = fs::read_to_string("/sys/module/apparmor/parameters/enabled");
    match enabled.as_deref().map(str::trim) {
        Ok("Y") => {}
        Ok(v) => {
            return AppArmor::Unavailable(format!(
                "the AppArmor module is present but disabled (enabled={v}); boot with \
                 apparmor=1 security=apparmor"
            ));
        }
        Err(_) => {
            return AppArmor::Unavailable(
                "this kernel has no AppArmor (/sys/module/apparmor is missing)".into(),
            );
        }
    }
    match fs::read_to_string("/sys/kernel/security/apparmor/profiles") {
        Ok(text) => AppArmor::Enabled {
            // Lines look like "edge-runner-tool (enforce)".
            profiles: text
                .lines()
                .filter_map(|l| l.rsplit_once(" (").map(|(name, _)| name.to_owned()))
                .collect(),
        },
        Err(e) => AppArmor::Unavailable(format!(
            "AppArmor is enabled but its profile list cannot be read \
             (/sys/kernel/security/apparmor/profiles: {e}); is securityfs mounted?"
        )),
    }
}

fn seccomp() -> Result<(), String> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    if !status.lines().any(|l| l.starts_with("Seccomp:")) {
        return Err("the kernel was built without seccomp (CONFIG_SECCOMP)".into());
    }
    let actions = fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    for needed in ["errno", "kill_process"] {
        if !actions.split_whitespace().any(|a| a == needed) {
            return Err(format!(
                "the kernel's seccomp lacks the {needed} action (CONFIG_SECCOMP_FILTER, Linux 4.14+)"
            ));
        }
    }
    super::sys::seccomp_mode()
        .map(drop)
        .map_err(|e| format!("prctl(PR_GET_SECCOMP) failed: {e}"))
}

fn read_number(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn user_namespaces() -> Result<(), String> {
    if !Path::new("/proc/self/ns/user").exists() {
        return Err("the kernel has no user namespaces (CONFIG_USER_NS)".into());
    }
    if read_number("/proc/sys/user/max_user_namespaces") == Some(0) {
        return Err("user namespaces are disabled (sysctl user.max_user_namespaces=0)".into());
    }
    if !nix::unistd::geteuid().is_root() {
        if read_number("/proc/sys/kernel/unprivileged_userns_clone") == Some(0) {
            return Err(
                "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone=0); \
                 run the runner as root or enable them"
                    .into(),
            );
        }
        if read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == Some(1) {
            return Err("AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns=1); run the runner as root"
                .into());
        }
    }
    Ok(())
}

fn mount_api() -> Result<(), String> {
    // open_tree without OPEN_TREE_CLONE only returns an O_PATH descriptor: harmless.
    let fd = super::sys::open_tree(libc::AT_FDCWD, c"/", libc::O_CLOEXEC as u32).map_err(|e| {
        format!("open_tree(2) is unavailable ({e}); the native backend needs Linux 5.12+")
    })?;
    // Changing nothing on a mount we do not own: ENOSYS means the call is missing.
    match super::sys::mount_setattr(std::os::fd::AsFd::as_fd(&fd), false, 0, 0, 0) {
        Err(nix::errno::Errno::ENOSYS) => {
            Err("mount_setattr(2) is unavailable; the native backend needs Linux 5.12+".into())
        }
        _ => Ok(()),
    }
}

fn landlock_abi() -> Option<i32> {
    super::sys::landlock_abi_version().ok()
}
