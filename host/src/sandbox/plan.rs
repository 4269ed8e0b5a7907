//! Turns a policy and what the host supports into a plan: the backend and the protections
//! that will be in force, or a refusal naming the required protection that is missing and
//! how to install or relax it. Never falls back silently: a relaxed protection is applied
//! when available and otherwise recorded as missing in the posture.

use super::policy::{BackendChoice, Requirement, SandboxPolicy};
use super::support::{AppArmor, HostSupport};
use crate::reason::{Reason, Refusal};
use std::path::PathBuf;

/// The backend a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// The runner's own namespaces sandbox.
    Native,
    /// gVisor's `runsc`.
    Runsc {
        /// The `runsc` binary.
        binary: PathBuf,
    },
}

impl Backend {
    /// `native` or `runsc`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Runsc { .. } => "runsc",
        }
    }
}

/// What a run will enforce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The backend that runs the tool.
    pub backend: Backend,
    /// The AppArmor profile to exec into, when AppArmor is in force.
    pub apparmor_profile: Option<String>,
    /// Posture string when AppArmor is not in force: `off` or `unavailable`.
    pub apparmor_absent: &'static str,
    /// Native: install the seccomp filter. runsc: load the same rules inside gVisor.
    pub seccomp: bool,
    /// Native: the kernel's Landlock ABI, when a ruleset will be applied.
    pub landlock: Option<i32>,
    /// Posture string when no ruleset is applied: `off`, `unavailable` or `gvisor`.
    pub landlock_absent: &'static str,
    /// Put the run in its own cgroups (process and memory caps, peak memory).
    pub cgroups: bool,
}

impl Plan {
    /// The posture's `apparmor` field.
    pub fn apparmor_posture(&self) -> String {
        match &self.apparmor_profile {
            Some(p) => format!("enforced:{p}"),
            None => self.apparmor_absent.to_owned(),
        }
    }

    /// The posture's `landlock` field.
    pub fn landlock_posture(&self) -> String {
        match self.landlock {
            Some(abi) => format!("abi:{abi}"),
            None => self.landlock_absent.to_owned(),
        }
    }

    /// The posture's `seccomp` field.
    pub fn seccomp_posture(&self) -> &'static str {
        match (&self.backend, self.seccomp) {
            (Backend::Runsc { .. }, _) => "gvisor",
            (Backend::Native, true) => "filter",
            (Backend::Native, false) => "off",
        }
    }
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal::new(reason, message)
}

/// Decides the plan, or refuses.
pub fn resolve(policy: &SandboxPolicy, host: &HostSupport) -> Result<Plan, Refusal> {
    seccomp_allow(policy)?;
    let backend = backend(policy, host)?;
    let (apparmor_profile, apparmor_absent) = apparmor(policy, host, &backend)?;
    let seccomp = seccomp(policy, host, &backend)?;
    let (landlock, landlock_absent) = landlock(policy, host, &backend)?;
    let cgroups = cgroups(policy, host)?;
    Ok(Plan {
        backend,
        apparmor_profile,
        apparmor_absent,
        seccomp,
        landlock,
        landlock_absent,
        cgroups,
    })
}

/// The operator's allow-list extension, checked: a bad name is refused with its own code.
pub(crate) fn seccomp_allow(policy: &SandboxPolicy) -> Result<(), Refusal> {
    policy.check_seccomp_allow().map_err(|message| {
        let message = message
            .strip_prefix(Reason::SeccompAllowUnknown.code())
            .and_then(|m| m.strip_prefix(": "))
            .map_or(message.clone(), str::to_owned);
        refuse(Reason::SeccompAllowUnknown, message)
    })
}

fn backend(policy: &SandboxPolicy, host: &HostSupport) -> Result<Backend, Refusal> {
    Ok(match policy.backend {
        BackendChoice::Runsc => match &host.runsc {
            Some(binary) => Backend::Runsc {
                binary: binary.clone(),
            },
            None => {
                let looked = policy
                    .runsc_path
                    .as_ref()
                    .map_or_else(|| "on PATH".to_owned(), |p| format!("at {}", p.display()));
                return Err(refuse(
                    Reason::SandboxUnavailable,
                    format!(
                        "the runsc backend is required but runsc was not found {looked}; install \
                         gVisor (apt-get install runsc) or set [sandbox] backend = \"native\""
                    ),
                ));
            }
        },
        BackendChoice::Auto if host.runsc.is_some() => Backend::Runsc {
            binary: host.runsc.clone().unwrap_or_default(),
        },
        BackendChoice::Native | BackendChoice::Auto => {
            let missing = host
                .user_namespaces
                .as_ref()
                .err()
                .or(host.mount_api.as_ref().err());
            if let Some(why) = missing {
                return Err(refuse(
                    Reason::SandboxUnavailable,
                    format!(
                        "the native sandbox cannot run on this host: {why}; install gVisor \
                         (apt-get install runsc) and set [sandbox] backend = \"runsc\""
                    ),
                ));
            }
            Backend::Native
        }
    })
}

/// The AppArmor profile to enforce, or the posture word for its absence.
fn apparmor(
    policy: &SandboxPolicy,
    host: &HostSupport,
    backend: &Backend,
) -> Result<(Option<String>, &'static str), Refusal> {
    let profile = match backend {
        Backend::Native => &policy.apparmor_profile,
        Backend::Runsc { .. } => &policy.apparmor_runsc_profile,
    };
    Ok(match (policy.apparmor, &host.apparmor) {
        (Requirement::Off, _) => (None, "off"),
        (_, AppArmor::Enabled { .. }) if host.apparmor_profile_loaded(profile) => {
            (Some(profile.clone()), "off")
        }
        (Requirement::IfAvailable, _) => (None, "unavailable"),
        (Requirement::Required, AppArmor::Enabled { .. }) => {
            return Err(refuse(
                Reason::ApparmorUnavailable,
                format!(
                    "AppArmor is required but the profile {profile} is not loaded; load it with \
                     `edge-runner apparmor install`, or relax with [sandbox] apparmor = \"if-available\""
                ),
            ));
        }
        (Requirement::Required, AppArmor::Unavailable(why)) => {
            return Err(refuse(
                Reason::ApparmorUnavailable,
                format!(
                    "AppArmor is required but unavailable: {why}. Enable AppArmor and run \
                     `edge-runner apparmor install`, or relax this one protection with [sandbox] \
                     apparmor = \"if-available\" (or \"off\"); the outcome records what was in force"
                ),
            ));
        }
    })
}

fn seccomp(policy: &SandboxPolicy, host: &HostSupport, backend: &Backend) -> Result<bool, Refusal> {
    Ok(match (backend, policy.seccomp) {
        (_, Requirement::Off) => false,
        // gVisor filters every call itself; the in-sandbox rules need nothing from the host.
        (Backend::Runsc { .. }, _) => true,
        (Backend::Native, req) => {
            let available = host.seccomp.clone().and_then(|()| {
                super::seccomp::programs(&[])
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
            match (available, req) {
                (Ok(()), _) => true,
                (Err(_), Requirement::IfAvailable) => false,
                (Err(why), _) => {
                    return Err(refuse(
                        Reason::SeccompUnavailable,
                        format!(
                            "seccomp is required but cannot be applied: {why}; use a kernel with \
                             CONFIG_SECCOMP_FILTER, or relax with [sandbox] seccomp = \"if-available\""
                        ),
                    ));
                }
            }
        }
    })
}

/// The Landlock ABI a native run applies a ruleset under, or the posture word for none.
fn landlock(
    policy: &SandboxPolicy,
    host: &HostSupport,
    backend: &Backend,
) -> Result<(Option<i32>, &'static str), Refusal> {
    Ok(match (backend, policy.landlock, host.landlock_abi) {
        (_, Requirement::Off, _) => (None, "off"),
        (Backend::Runsc { .. }, _, _) => (None, "gvisor"),
        (Backend::Native, _, Some(abi)) if abi >= 1 => (Some(abi), "off"),
        (Backend::Native, Requirement::IfAvailable, _) => {
            tracing::warn!(
                "Landlock is unavailable on this kernel: tools run with the mount view as their \
                 only filesystem layer ([sandbox] landlock = \"if-available\")"
            );
            (None, "unavailable")
        }
        (Backend::Native, Requirement::Required, _) => {
            return Err(refuse(
                Reason::LandlockUnavailable,
                "Landlock is required but this kernel does not offer it (Linux 5.13+ with \
                 landlock in the lsm= boot list); boot a kernel with Landlock, or relax this one \
                 protection with [sandbox] landlock = \"if-available\" (the event then records \
                 landlock=unavailable)"
                    .to_owned(),
            ));
        }
    })
}

fn cgroups(policy: &SandboxPolicy, host: &HostSupport) -> Result<bool, Refusal> {
    use super::cgroup::Problem;
    Ok(match (policy.cgroups, &host.cgroups) {
        (Requirement::Off, _) => false,
        (Requirement::Required, Some(layout)) if !layout.has_limits() => {
            return Err(refuse(
                Reason::SandboxUnavailable,
                format!(
                    "per-run cgroups are required (sandbox-wide process and memory caps) but \
                     the {} does not offer both the pids and memory controllers; delegate them to the \
                     runner's unit (systemd: Delegate=pids memory), or relax with [sandbox] \
                     cgroups = \"if-available\" (runs then get their own cgroup without those \
                     limits, and the event records which applied)",
                    layout.describe()
                ),
            ));
        }
        (_, Some(_)) => true,
        (Requirement::Required, None) => {
            if let Some(Problem::NotDelegated(why)) = &host.cgroups_problem {
                return Err(refuse(Reason::CgroupNotDelegated, why.clone()));
            }
            return Err(refuse(
                Reason::SandboxUnavailable,
                "per-run cgroups are required (sandbox-wide process and memory caps) but the \
                 pids and memory controllers are not both mounted and writable (cgroup v1 or v2); \
                 mount them, or relax with [sandbox] cgroups = \"if-available\""
                    .to_owned(),
            ));
        }
        (Requirement::IfAvailable, None) => {
            tracing::warn!(
                "cgroups (pids, memory) are unavailable: this run has per-process rlimits only \
                 ([sandbox] cgroups = \"if-available\")"
            );
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_cgroups_refuse_unless_relaxed() {
        let mut h = host(AppArmor::Unavailable("none".into()), false);
        h.cgroups = None;
        let mut policy = SandboxPolicy {
            backend: BackendChoice::Native,
            apparmor: Requirement::IfAvailable,
            ..SandboxPolicy::default()
        };
        let r = resolve(&policy, &h).unwrap_err();
        assert_eq!(r.reason, Reason::SandboxUnavailable);
        assert!(
            r.message.contains("cgroups = \"if-available\""),
            "{}",
            r.message
        );
        policy.cgroups = Requirement::IfAvailable;
        assert!(!resolve(&policy, &h).unwrap().cgroups);
        policy.cgroups = Requirement::Off;
        assert!(!resolve(&policy, &h).unwrap().cgroups);
    }

    #[test]
    fn an_undelegated_v2_cgroup_is_refused_by_name_and_a_limitless_one_unless_relaxed() {
        use super::super::cgroup::{Layout, Problem};
        let mut h = host(AppArmor::Unavailable("none".into()), false);
        h.cgroups = None;
        h.cgroups_problem = Some(Problem::NotDelegated("not delegated".into()));
        let mut policy = SandboxPolicy {
            backend: BackendChoice::Native,
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        assert_eq!(
            resolve(&policy, &h).unwrap_err().reason,
            Reason::CgroupNotDelegated
        );
        h.cgroups_problem = None;
        h.cgroups = Some(Layout::V2 {
            root: PathBuf::from("/sys/fs/cgroup"),
            base: PathBuf::from("/sys/fs/cgroup/u.service"),
            controllers: vec!["pids".into()],
        });
        let r = resolve(&policy, &h).unwrap_err();
        assert_eq!(r.reason, Reason::SandboxUnavailable);
        assert!(r.message.contains("Delegate=pids memory"), "{}", r.message);
        policy.cgroups = Requirement::IfAvailable;
        assert!(resolve(&policy, &h).unwrap().cgroups);
    }

    fn host(apparmor: AppArmor, runsc: bool) -> HostSupport {
        HostSupport {
            runsc: runsc.then(|| PathBuf::from("/usr/bin/runsc")),
            apparmor,
            seccomp: Ok(()),
            user_namespaces: Ok(()),
            mount_api: Ok(()),
            cgroups: Some(super::super::cgroup::Layout::V2 {
                root: PathBuf::from("/sys/fs/cgroup"),
                base: PathBuf::from("/sys/fs/cgroup/system.slice/edge-runner.service"),
                controllers: vec!["pids".into(), "memory".into()],
            }),
            cgroups_problem: None,
            landlock_abi: Some(7),
            root: true,
        }
    }

    #[test]
    fn required_apparmor_on_a_kernel_without_it_is_refused_with_a_fix() {
        let h = host(
            AppArmor::Unavailable("this kernel has no AppArmor".into()),
            true,
        );
        let r = resolve(&SandboxPolicy::default(), &h).unwrap_err();
        assert_eq!(r.reason, Reason::ApparmorUnavailable);
        assert!(r.message.contains("if-available"), "{}", r.message);
        assert!(r.message.contains("apparmor install"), "{}", r.message);
    }

    #[test]
    fn relaxed_apparmor_is_recorded_as_unavailable() {
        let h = host(AppArmor::Unavailable("none".into()), false);
        let p = SandboxPolicy {
            apparmor: Requirement::IfAvailable,
            ..SandboxPolicy::default()
        };
        let plan = resolve(&p, &h).unwrap();
        assert_eq!(plan.backend, Backend::Native);
        assert_eq!(plan.apparmor_posture(), "unavailable");
        assert_eq!(plan.seccomp_posture(), "filter");
    }

    #[test]
    fn loaded_profile_is_enforced_per_backend() {
        let h = host(
            AppArmor::Enabled {
                profiles: vec!["edge-runner-tool".into(), "edge-runner-runsc".into()],
            },
            true,
        );
        let plan = resolve(&SandboxPolicy::default(), &h).unwrap();
        assert_eq!(plan.apparmor_posture(), "enforced:edge-runner-runsc");
        assert_eq!(plan.seccomp_posture(), "gvisor");
        let native = SandboxPolicy {
            backend: BackendChoice::Native,
            ..SandboxPolicy::default()
        };
        assert_eq!(
            resolve(&native, &h).unwrap().apparmor_posture(),
            "enforced:edge-runner-tool"
        );
        let h = host(AppArmor::Enabled { profiles: vec![] }, true);
        let r = resolve(&SandboxPolicy::default(), &h).unwrap_err();
        assert!(r.message.contains("not loaded"), "{}", r.message);
    }

    #[test]
    fn missing_runsc_is_refused_when_required_and_auto_falls_to_native() {
        let h = host(AppArmor::Unavailable("none".into()), false);
        let p = SandboxPolicy {
            backend: BackendChoice::Runsc,
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        let r = resolve(&p, &h).unwrap_err();
        assert_eq!(r.reason, Reason::SandboxUnavailable);
        assert!(r.message.contains("apt-get install runsc"), "{}", r.message);
        let auto = SandboxPolicy {
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        assert_eq!(resolve(&auto, &h).unwrap().backend, Backend::Native);
    }

    #[test]
    fn landlock_is_applied_where_the_kernel_has_it_and_refused_or_relaxed_otherwise() {
        let mut h = host(AppArmor::Unavailable("none".into()), false);
        let mut p = SandboxPolicy {
            backend: BackendChoice::Native,
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        h.landlock_abi = Some(7);
        assert_eq!(resolve(&p, &h).unwrap().landlock_posture(), "abi:7");
        // A host without Landlock, through the probe's seam.
        h.landlock_abi = None;
        let r = resolve(&p, &h).unwrap_err();
        assert_eq!(r.reason, Reason::LandlockUnavailable);
        assert!(
            r.message.contains("landlock = \"if-available\""),
            "{}",
            r.message
        );
        p.landlock = Requirement::IfAvailable;
        let plan = resolve(&p, &h).unwrap();
        assert_eq!(
            (plan.landlock, plan.landlock_posture().as_str()),
            (None, "unavailable")
        );
        p.landlock = Requirement::Off;
        h.landlock_abi = Some(7);
        assert_eq!(resolve(&p, &h).unwrap().landlock_posture(), "off");
        // runsc: gVisor mediates files; a required Landlock is not refused there.
        let h = host(AppArmor::Unavailable("none".into()), true);
        let runsc = SandboxPolicy {
            backend: BackendChoice::Runsc,
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        assert_eq!(resolve(&runsc, &h).unwrap().landlock_posture(), "gvisor");
    }

    #[test]
    fn an_unknown_seccomp_extension_is_refused_with_its_code() {
        let h = host(AppArmor::Unavailable("none".into()), false);
        let mut p = SandboxPolicy {
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        p.seccomp_allow
            .insert("*".into(), vec!["modify_ldt".into(), "open_treee".into()]);
        let r = resolve(&p, &h).unwrap_err();
        assert_eq!(r.reason, Reason::SeccompAllowUnknown);
        assert!(r.message.contains("\"open_treee\""), "{}", r.message);
        assert!(
            !r.message.starts_with("seccomp_allow_unknown"),
            "{}",
            r.message
        );
        p.seccomp_allow
            .insert("*".into(), vec!["modify_ldt".into()]);
        assert!(resolve(&p, &h).is_ok());
        p.seccomp_allow.insert("not-a-digest".into(), vec![]);
        assert_eq!(
            resolve(&p, &h).unwrap_err().reason,
            Reason::SeccompAllowUnknown
        );
    }

    #[test]
    fn required_seccomp_without_kernel_support_is_refused() {
        let mut h = host(AppArmor::Unavailable("none".into()), false);
        h.seccomp = Err("no seccomp".into());
        let p = SandboxPolicy {
            apparmor: Requirement::Off,
            ..SandboxPolicy::default()
        };
        assert_eq!(
            resolve(&p, &h).unwrap_err().reason,
            Reason::SeccompUnavailable
        );
        let relaxed = SandboxPolicy {
            seccomp: Requirement::IfAvailable,
            ..p
        };
        assert_eq!(resolve(&relaxed, &h).unwrap().seccomp_posture(), "off");
    }
}
