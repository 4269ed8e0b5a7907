//! Confirms, from the kernel's own view, that a sandboxed process is in the posture the
//! runner asked for, before the tool runs: uid/gid, no supplementary groups, all five
//! capability sets empty, no_new_privs, seccomp mode, fresh namespaces and a read-only
//! root. Reads `/proc/<pid>/...` of the stopped child; any difference fails closed with
//! `posture_mismatch`. It inspects only; it changes nothing.

use crate::reason::{Reason, Refusal};
use nix::unistd::Pid;
use std::fs;

/// The fields of `/proc/<pid>/status` that make up the posture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcStatus {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
    pub groups: Vec<u32>,
    /// CapInh, CapPrm, CapEff, CapBnd, CapAmb.
    pub caps: [Option<u64>; 5],
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<u32>,
}

pub(crate) const CAP_SETS: [&str; 5] = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"];

impl ProcStatus {
    pub fn parse(text: &str) -> ProcStatus {
        let mut s = ProcStatus::default();
        let nums = |v: &str| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect::<Vec<u32>>()
        };
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Uid" => s.uids = nums(value),
                "Gid" => s.gids = nums(value),
                "Groups" => s.groups = nums(value),
                "NoNewPrivs" => s.no_new_privs = Some(value == "1"),
                "Seccomp" => s.seccomp = value.parse().ok(),
                k => {
                    if let Some(i) = CAP_SETS.iter().position(|c| *c == k) {
                        s.caps[i] = u64::from_str_radix(value, 16).ok();
                    }
                }
            }
        }
        s
    }

    pub fn read(pid: Pid) -> std::io::Result<ProcStatus> {
        fs::read_to_string(format!("/proc/{pid}/status")).map(|t| Self::parse(&t))
    }
}

/// Names of the capabilities in a mask (`CAP_SYS_ADMIN`, ...).
pub(crate) fn capability_names(mask: u64) -> Vec<String> {
    let mut names: Vec<(u8, String)> = caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| (c.index(), c.to_string()))
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

/// What the native backend expects to find.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    /// uid and gid as seen from the runner's namespace.
    pub uid: u32,
    pub gid: u32,
    /// Seccomp mode: 2 with the filter, 0 without.
    pub seccomp: u32,
    /// Namespaces that must differ from the runner's.
    pub namespaces: &'static [&'static str],
}

/// Checks a stopped child against `expected`. Returns the namespaces confirmed new.
pub(crate) fn confirm(pid: Pid, expected: &Expected) -> Result<Vec<String>, Refusal> {
    let mismatch = |what: String| {
        Refusal::new(
            Reason::PostureMismatch,
            format!("the sandbox came up with {what}; the task was not started"),
        )
    };
    let s = ProcStatus::read(pid)
        .map_err(|e| mismatch(format!("an unreadable /proc/{pid}/status ({e})")))?;
    if s.uids.len() != 4 || s.uids.iter().any(|u| *u != expected.uid) {
        return Err(mismatch(format!(
            "uids {:?} instead of {}",
            s.uids, expected.uid
        )));
    }
    if s.gids.len() != 4 || s.gids.iter().any(|g| *g != expected.gid) {
        return Err(mismatch(format!(
            "gids {:?} instead of {}",
            s.gids, expected.gid
        )));
    }
    if !s.groups.is_empty() {
        return Err(mismatch(format!(
            "supplementary groups {:?} (a runner that is not root cannot drop its own groups \
             in a user namespace: start it without supplementary groups)",
            s.groups
        )));
    }
    for (name, value) in CAP_SETS.iter().zip(s.caps) {
        match value {
            Some(0) => {}
            Some(mask) => {
                return Err(mismatch(format!("{name} = {:?}", capability_names(mask))));
            }
            None => return Err(mismatch(format!("no {name} line in /proc/{pid}/status"))),
        }
    }
    if s.no_new_privs != Some(true) {
        return Err(mismatch("no_new_privs unset".into()));
    }
    if s.seccomp != Some(expected.seccomp) {
        return Err(mismatch(format!(
            "seccomp mode {:?} instead of {}",
            s.seccomp, expected.seccomp
        )));
    }
    let mut confirmed = Vec::new();
    for ns in expected.namespaces {
        let ours = fs::read_link(format!("/proc/self/ns/{ns}"));
        let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}"));
        match (ours, theirs) {
            (Ok(a), Ok(b)) if a != b => confirmed.push(kernel_to_posture_name(ns).to_owned()),
            (Ok(_), Ok(_)) => return Err(mismatch(format!("the runner's own {ns} namespace"))),
            (Err(e), _) | (_, Err(e)) => {
                return Err(mismatch(format!(
                    "an unconfirmable {ns} namespace (reading its link failed: {e})"
                )));
            }
        }
    }
    let root = nix::sys::statvfs::statvfs(format!("/proc/{pid}/root").as_str())
        .map_err(|e| mismatch(format!("an unreadable root ({e})")))?;
    if !root.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
        return Err(mismatch("a writable root filesystem".into()));
    }
    Ok(confirmed)
}

fn kernel_to_posture_name(ns: &str) -> &str {
    match ns {
        "mnt" => "mount",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_names_capabilities() {
        let s = ProcStatus::parse(
            "Name:\tx\nUid:\t65534\t65534\t65534\t65534\nGid:\t1\t1\t1\t1\nGroups:\t\n\
             CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000200000\n\
             CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n",
        );
        assert_eq!(s.uids, vec![65534; 4]);
        assert!(s.groups.is_empty());
        assert_eq!(s.caps[2], Some(1 << 21));
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(2));
        assert_eq!(capability_names(1 << 21), vec!["CAP_SYS_ADMIN".to_owned()]);
    }
}
