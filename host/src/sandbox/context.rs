//! What one run of either backend works with: the policy, the plan decided for this host,
//! the run's directory and id, the cgroup layout (when the plan uses cgroups) and the
//! runner's state directory; plus the two things both backends derive from them the same
//! way: the run's cgroup and the posture record. It holds no state of its own.

use super::cgroup::{CgroupLimits, Layout, RunCgroup};
use super::error::{SandboxError, io_err};
use super::outcome::Posture;
use super::plan::Plan;
use super::policy::{Requirement, SandboxPolicy};
use super::state::Run;
use std::path::Path;

/// One run's fixed inputs, shared by the backends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunContext<'a> {
    pub policy: &'a SandboxPolicy,
    pub plan: &'a Plan,
    pub run: &'a Run,
    /// The cgroup layout, when the plan puts runs in cgroups.
    pub cgroups: Option<&'a Layout>,
    pub state_dir: &'a Path,
}

impl RunContext<'_> {
    /// The run's own cgroup with `limits`, when the plan uses cgroups.
    pub fn cgroup(&self, limits: CgroupLimits) -> Result<Option<RunCgroup>, SandboxError> {
        self.cgroups
            .map(|layout| {
                RunCgroup::create(layout, &self.policy.cgroup_parent, &self.run.id, limits)
                    .map_err(io_err("create the run's cgroup"))
            })
            .transpose()
    }

    /// What was in force: the plan's protections, the policy's identity, and what only
    /// the backend knows (its name, the namespaces confirmed, the network).
    pub fn posture(&self, backend: &str, namespaces: Vec<String>, network: &str) -> Posture {
        Posture {
            backend: backend.into(),
            namespaces,
            capabilities: Vec::new(),
            seccomp: self.plan.seccomp_posture().into(),
            seccomp_extra: Vec::new(),
            landlock: self.plan.landlock_posture(),
            cgroup: match self.cgroups {
                Some(layout) => layout.posture(),
                None if self.policy.cgroups == Requirement::Off => "off".into(),
                None => "unavailable".into(),
            },
            apparmor: self.plan.apparmor_posture(),
            network: network.into(),
            uid: self.policy.uid,
            gid: self.policy.gid,
            no_new_privs: true,
            read_only_root: true,
        }
    }
}
