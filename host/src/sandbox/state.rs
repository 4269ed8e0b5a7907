//! The sandbox's private state under `<state_dir>/sandbox`: one directory per run, holding
//! a lock file the run keeps `flock`ed while it lives (and the runsc bundle). A run whose
//! lock can be taken belongs to a runner that died, so its leftovers (cgroup, runsc
//! container, bundle) can be swept safely even while other runners share the directory.
//! This module names and locks runs; it does not know what a backend leaves behind.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `<state_dir>/sandbox`.
pub(crate) fn sandbox_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("sandbox")
}

/// `<state_dir>/sandbox/runs`.
fn runs_dir(state_dir: &Path) -> PathBuf {
    sandbox_dir(state_dir).join("runs")
}

/// Creates `dir` (mode 0700) and its parents if missing, then checks it is private to the
/// runner.
pub(crate) fn private_dir(dir: &Path) -> io::Result<()> {
    if fs::symlink_metadata(dir).is_err() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    crate::fsperm::check_trusted(dir, "sandbox state directory")
        .map(drop)
        .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e.to_string()))
}

/// A live run: its id (also the runsc container id and the cgroup name) and directory.
#[derive(Debug)]
pub(crate) struct Run {
    pub id: String,
    pub dir: PathBuf,
    _lock: Flock<File>,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Run {
    /// Creates and locks a new run directory.
    pub fn begin(state_dir: &Path) -> io::Result<Run> {
        let runs = runs_dir(state_dir);
        private_dir(&runs)?;
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).map_err(|e| io::Error::other(e.to_string()))?;
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let id = format!(
            "er-{}-{}-{hex}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = runs.join(&id);
        fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let file = File::create(dir.join("lock"))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| io::Error::from(e))?;
        Ok(Run {
            id,
            dir,
            _lock: lock,
        })
    }

    /// Removes the run directory (the lock goes with it).
    pub fn finish(self) -> io::Result<()> {
        fs::remove_dir_all(&self.dir)
    }
}

/// A run left behind by a runner that is gone.
#[derive(Debug)]
pub(crate) struct StaleRun {
    pub id: String,
    pub dir: PathBuf,
    _lock: Flock<File>,
}

impl StaleRun {
    pub fn finish(self) -> io::Result<()> {
        fs::remove_dir_all(&self.dir)
    }
}

/// Runs whose lock nobody holds. Each is returned locked, so two sweepers never clean the
/// same run.
pub(crate) fn stale_runs(state_dir: &Path) -> Vec<StaleRun> {
    let Ok(entries) = fs::read_dir(runs_dir(state_dir)) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for e in entries.flatten() {
        let Ok(id) = e.file_name().into_string() else {
            continue;
        };
        if !id.starts_with("er-") {
            continue;
        }
        let dir = e.path();
        let Ok(file) = File::open(dir.join("lock")) else {
            // A run directory without a lock file was interrupted while being created.
            if let Ok(lock) = File::create(dir.join("lock"))
                .map_err(drop)
                .and_then(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(drop))
            {
                stale.push(StaleRun {
                    id,
                    dir,
                    _lock: lock,
                });
            }
            continue;
        };
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            stale.push(StaleRun {
                id,
                dir,
                _lock: lock,
            });
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_run_is_not_stale_and_a_finished_lock_is() {
        let state = tempfile::tempdir().unwrap();
        let run = Run::begin(state.path()).unwrap();
        assert!(run.id.starts_with("er-"));
        assert!(stale_runs(state.path()).is_empty());
        let dir = run.dir.clone();
        // Simulate a crash: the lock is released but the directory stays.
        drop(run);
        let stale = stale_runs(state.path());
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].dir, dir);
        for s in stale {
            s.finish().unwrap();
        }
        assert!(!dir.exists());
    }
}
