//! cgroup v2 by systemd's delegation rules: run cgroups live under the cgroup delegated to
//! the runner (its unit's, with `Delegate=yes`: systemd marks it with the
//! `trusted.delegate` or `user.delegate` extended attribute), never at the root, and the
//! root's `cgroup.subtree_control` is never written. The delegated cgroup is the nearest
//! one, from the runner's own cgroup up (systemd's `DelegateSubgroup=` puts the main
//! process one level down), that carries the mark. To give children controllers, a
//! cgroup may hold no process ("no internal processes"): when the runner itself sits in
//! the delegated cgroup it moves into `supervisor` below it first, as systemd asks of
//! delegated services. This module decides and prepares the delegated cgroup; the run's
//! own cgroup is `super`'s.

use super::mounts;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the runner moves itself when its delegated cgroup must give controllers away.
pub(crate) const SUPERVISOR: &str = "supervisor";

/// The controllers whose limits a run cgroup applies.
pub(crate) const WANTED: &[&str] = &["pids", "memory"];

/// Why the runner has no usable cgroup v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// There is a v2 hierarchy, but no cgroup delegated to the runner.
    NotDelegated(String),
    /// No usable hierarchy at all.
    Missing(String),
}

fn delegate_mark(dir: &Path) -> bool {
    ["trusted.delegate", "user.delegate"]
        .iter()
        .any(|name| super::super::sys::xattr_is(dir, name, b"1"))
}

/// The delegated cgroup's directory for a runner in cgroup `own` of the hierarchy mounted
/// at `root`.
pub(crate) fn delegated(root: &Path, own: &Path) -> Result<PathBuf, Problem> {
    let rel = own.strip_prefix("/").unwrap_or(own);
    if rel.as_os_str().is_empty() {
        return Err(Problem::NotDelegated(format!(
            "the runner runs in the root of the cgroup v2 hierarchy at {}, where run cgroups \
             are never created; start it from a systemd unit with Delegate=yes (or move it \
             into a cgroup delegated to it and marked with the trusted.delegate=1 attribute)",
            root.display()
        )));
    }
    let mut candidate = rel;
    loop {
        let dir = root.join(candidate);
        if delegate_mark(&dir) {
            return Ok(dir);
        }
        match candidate.parent() {
            Some(p) if !p.as_os_str().is_empty() => candidate = p,
            _ => break,
        }
    }
    Err(Problem::NotDelegated(format!(
        "the runner's cgroup {} (cgroup v2 at {}) is not delegated to it: neither it nor an \
         ancestor below the root carries systemd's delegate mark; run the runner from a unit \
         with Delegate=yes, or relax with [sandbox] cgroups = \"if-available\"",
        own.display(),
        root.display()
    )))
}

/// Finds the v2 hierarchy and the runner's delegated cgroup, and which of [`WANTED`] it
/// offers (`cgroup.controllers`).
pub(crate) fn detect(
    mounts_text: &str,
    cgroup_text: &str,
) -> Result<(PathBuf, PathBuf, Vec<String>), Problem> {
    let root = mounts::parse(mounts_text)
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.dir)
        .ok_or_else(|| Problem::Missing("no cgroup2 hierarchy is mounted".into()))?;
    let own = mounts::own_v2_cgroup(cgroup_text)
        .ok_or_else(|| Problem::Missing("/proc/self/cgroup has no cgroup v2 line".into()))?;
    let base = delegated(&root, &own)?;
    let offered = fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let controllers = WANTED
        .iter()
        .filter(|c| offered.split_whitespace().any(|o| o == **c))
        .map(|c| (*c).to_owned())
        .collect();
    Ok((root, base, controllers))
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("failed to write {value:?} to {}: {e}", path.display()),
        )
    })
}

fn enabled(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Enables `controllers` for the children of `dir` (a cgroup below the delegated one, or
/// the delegated one itself), moving the runner into [`SUPERVISOR`] first if it sits in
/// `dir`. Never called on the hierarchy's root.
pub(crate) fn give_controllers(dir: &Path, controllers: &[String]) -> io::Result<()> {
    let have = enabled(dir);
    let missing: Vec<&String> = controllers.iter().filter(|c| !have.contains(c)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let me = std::process::id().to_string();
    if procs.lines().any(|p| p.trim() == me) {
        let leaf = dir.join(SUPERVISOR);
        match fs::create_dir(&leaf) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        write(&leaf.join("cgroup.procs"), &me)?;
    }
    let change: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    write(&dir.join("cgroup.subtree_control"), &change.join(" "))
}
