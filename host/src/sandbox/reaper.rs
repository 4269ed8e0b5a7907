//! The runner as a child subreaper while runs are in flight (`PR_SET_CHILD_SUBREAPER`), so
//! a sandbox's helper processes that outlive their parent (runsc's sandbox and gofer, a
//! tool's double-forked daemon) are reparented to the runner, not to the host's init, and
//! are reaped here before the run returns. Only processes of the run are reaped: a zombie
//! child whose cgroup is the run's own (a zombie keeps its cgroup until reaped). Other
//! children of a multi-threaded runner (another run's runsc, a sink's helper) are never
//! waited for here, so their owners' waits still work.

use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use std::sync::Mutex;

static ACTIVE: Mutex<usize> = Mutex::new(0);

/// Holds the subreaper attribute while at least one run is in flight.
#[derive(Debug)]
pub(crate) struct Subreaper(());

impl Subreaper {
    /// Marks the runner a subreaper (the first concurrent run sets it).
    pub fn begin() -> Subreaper {
        if let Ok(mut n) = ACTIVE.lock() {
            if *n == 0
                && let Err(e) = super::sys::set_child_subreaper(true)
            {
                tracing::warn!(error = %e, "failed to become a child subreaper");
            }
            *n += 1;
        }
        Subreaper(())
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        if let Ok(mut n) = ACTIVE.lock() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                let _ = super::sys::set_child_subreaper(false);
            }
        }
    }
}

/// State and parent pid from `/proc/<pid>/stat` (the command name may hold spaces and
/// parentheses: the fields start after the last `)`).
fn state_and_parent(stat: &str) -> Option<(char, i32)> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Reaps this process's zombie children whose cgroup path ends with `cgroup_suffix`
/// (`/<parent>/<run id>`); returns how many.
pub(crate) fn reap_run_orphans(cgroup_suffix: &str) -> usize {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if state_and_parent(&stat) != Some(('Z', me)) {
            continue;
        }
        let ours = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .is_ok_and(|c| c.lines().any(|l| l.trim_end().ends_with(cgroup_suffix)));
        if ours && waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)).is_ok() {
            reaped += 1;
        }
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        assert_eq!(
            state_and_parent("42 (a) b (c)) Z 7 42 42 0"),
            Some(('Z', 7))
        );
        assert_eq!(state_and_parent("garbage"), None);
    }
}
