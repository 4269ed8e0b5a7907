//! One cgroup per run, on cgroup v1 (separate `pids`, `memory`, `cpuacct` hierarchies) or
//! v2 (unified): it caps processes and memory for everything the tool starts, measures CPU
//! time and peak memory, and is the handle used to kill every last process of a run and to
//! find leftovers of a crashed runner. This module only manages cgroup directories; it does
//! not decide limits (the backends pass them) and never touches cgroups it did not name.

mod mounts;
pub(crate) mod v2;

pub use v2::Problem;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the controllers this module needs are mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1: one hierarchy per controller (`cpuacct` is optional).
    V1 {
        /// The `pids` controller's hierarchy.
        pids: PathBuf,
        /// The `memory` controller's hierarchy.
        memory: PathBuf,
        /// The `cpuacct` controller's hierarchy, when mounted.
        cpuacct: Option<PathBuf>,
    },
    /// cgroup v2 mounted at `root`; run cgroups go under `base`, the cgroup delegated to
    /// the runner (see `v2`), with the `controllers` of [`v2::WANTED`] it offers.
    V2 {
        /// Where cgroup v2 is mounted.
        root: PathBuf,
        /// The cgroup delegated to the runner; run cgroups go under it.
        base: PathBuf,
        /// The wanted controllers it offers.
        controllers: Vec<String>,
    },
}

impl Layout {
    /// Finds the controllers from `/proc/self/mounts` (v1 `pids` and `memory` first, as a
    /// hybrid host keeps them there) or the delegated cgroup v2, writable by the runner.
    pub fn detect() -> Result<Layout, Problem> {
        let mounts = fs::read_to_string("/proc/self/mounts")
            .map_err(|e| Problem::Missing(format!("cannot read /proc/self/mounts: {e}")))?;
        let layout = match Self::v1_from_mounts(&mounts) {
            Some(v1) => v1,
            None => {
                let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
                let (root, base, controllers) = v2::detect(&mounts, &own)?;
                Layout::V2 {
                    root,
                    base,
                    controllers,
                }
            }
        };
        match layout
            .hierarchies()
            .iter()
            .find(|h| nix::unistd::access(h.as_path(), nix::unistd::AccessFlags::W_OK).is_err())
        {
            Some(h) => Err(Problem::Missing(format!(
                "the runner cannot write to the cgroup {}",
                h.display()
            ))),
            None => Ok(layout),
        }
    }

    fn v1_from_mounts(mounts: &str) -> Option<Layout> {
        let (mut pids, mut memory) = (None, None);
        for m in mounts::parse(mounts) {
            if m.fstype != "cgroup" {
                continue;
            }
            for o in m.options.split(',') {
                match o {
                    "pids" => pids = Some(m.dir.clone()),
                    "memory" => memory = Some(m.dir.clone()),
                    // Joining a v1 hierarchy costs an RCU grace period (7-11 ms measured
                    // here) per run; CPU time comes from the reaped init's rusage instead,
                    // so cpuacct is not joined.
                    _ => {}
                }
            }
        }
        Some(Layout::V1 {
            pids: pids?,
            memory: memory?,
            cpuacct: None,
        })
    }

    fn hierarchies(&self) -> Vec<PathBuf> {
        match self {
            Layout::V1 {
                pids,
                memory,
                cpuacct,
            } => {
                let mut v = vec![pids.clone(), memory.clone()];
                v.extend(cpuacct.clone());
                v
            }
            Layout::V2 { base, .. } => vec![base.clone()],
        }
    }

    /// True when both `pids` and `memory` limits apply.
    pub fn has_limits(&self) -> bool {
        match self {
            Layout::V1 { .. } => true,
            Layout::V2 { controllers, .. } => controllers.len() == v2::WANTED.len(),
        }
    }

    /// The posture's `cgroup` field: the version and the controllers whose limits apply.
    pub fn posture(&self) -> String {
        match self {
            Layout::V1 { .. } => "v1:pids,memory".to_owned(),
            Layout::V2 { controllers, .. } => format!("v2:{}", controllers.join(",")),
        }
    }

    /// A short description for `sandbox check`.
    pub fn describe(&self) -> String {
        match self {
            Layout::V1 { cpuacct, .. } => format!(
                "cgroup v1 (pids, memory{})",
                if cpuacct.is_some() { ", cpuacct" } else { "" }
            ),
            Layout::V2 {
                base, controllers, ..
            } => format!(
                "cgroup v2, delegated cgroup {} (controllers: {})",
                base.display(),
                if controllers.is_empty() {
                    "none".to_owned()
                } else {
                    controllers.join(", ")
                }
            ),
        }
    }
}

/// The cgroup v1 file a process writes "0" to in order to join: `tasks`, not
/// `cgroup.procs`. Writing to `cgroup.procs` (or any pid other than 0) write-locks the
/// kernel's `cgroup_threadgroup_rwsem`, whose percpu fast path costs an RCU grace period
/// each time it was idle: 8-20 ms per run measured on this kind of host (a tight loop of
/// writes hides it, as the lock stays in slow mode for a grace period after each use).
/// Moving only the calling thread ("0" to `tasks`) skips that lock
/// (`cgroup_procs_write_start`); for a process with one thread it moves the whole process.
/// Permission is checked against the credentials that opened the file (the runner's).
pub(crate) const JOIN_FILE_V1: &str = "tasks";

/// Limits applied to one run's cgroup. A task's memory limit becomes the cgroup's here,
/// for both backends, and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CgroupLimits {
    pub memory_bytes: u64,
    pub pids: u64,
}

/// Host tasks gVisor needs: the sentry's and gofer's threads plus, on the ptrace platform,
/// stub processes and threads for every process of the tool (measured: a 32-process fork
/// bomb peaks near 1,500 host tasks). The tool's own process count is enforced inside
/// gVisor (RLIMIT_NPROC); this host cap only bounds gVisor itself.
const RUNSC_PIDS_BASE: u64 = 1024;
const RUNSC_PIDS_PER_PROCESS: u64 = 64;

impl CgroupLimits {
    /// The native sandbox: the tool's memory, its processes plus init.
    pub(crate) fn native(limits: &super::policy::RunLimits) -> Self {
        Self {
            memory_bytes: limits.memory_bytes,
            pids: limits.max_processes.saturating_add(1),
        }
    }

    /// runsc: the tool's memory plus gVisor's own (`overhead_bytes`), and gVisor's tasks.
    pub(crate) fn runsc(limits: &super::policy::RunLimits, overhead_bytes: u64) -> Self {
        Self {
            memory_bytes: limits.memory_bytes.saturating_add(overhead_bytes),
            pids: limits
                .max_processes
                .saturating_mul(RUNSC_PIDS_PER_PROCESS)
                .saturating_add(RUNSC_PIDS_BASE),
        }
    }
}

/// The cgroup of one run. Dropping it does not remove it: call [`RunCgroup::remove`].
#[derive(Debug)]
pub(crate) struct RunCgroup {
    layout: Layout,
    /// One directory per hierarchy (v1) or the one directory (v2).
    dirs: Vec<PathBuf>,
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

fn ensure_dir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        r => r,
    }
}

impl RunCgroup {
    /// Creates `<parent>/<id>` in every hierarchy and applies `limits`.
    pub fn create(
        layout: &Layout,
        parent: &str,
        id: &str,
        limits: CgroupLimits,
    ) -> io::Result<Self> {
        let mut cg = RunCgroup {
            layout: layout.clone(),
            dirs: Vec::new(),
        };
        let result = cg.setup(parent, id, limits);
        if result.is_err() {
            let _ = cg.remove_dirs();
        }
        result.map(|()| cg)
    }

    fn setup(&mut self, parent: &str, id: &str, limits: CgroupLimits) -> io::Result<()> {
        match self.layout.clone() {
            Layout::V1 {
                pids,
                memory,
                cpuacct,
            } => {
                for h in std::iter::once(&pids)
                    .chain(std::iter::once(&memory))
                    .chain(cpuacct.iter())
                {
                    ensure_dir(&h.join(parent))?;
                    let dir = h.join(parent).join(id);
                    fs::create_dir(&dir)?;
                    self.dirs.push(dir);
                }
                let pid_dir = pids.join(parent).join(id);
                write_file(&pid_dir.join("pids.max"), &limits.pids.to_string())?;
                let mem_dir = memory.join(parent).join(id);
                write_file(
                    &mem_dir.join("memory.limit_in_bytes"),
                    &limits.memory_bytes.to_string(),
                )?;
                // No swapping past the limit, where swap accounting exists.
                let memsw = mem_dir.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write_file(&memsw, &limits.memory_bytes.to_string())?;
                }
            }
            Layout::V2 {
                base, controllers, ..
            } => {
                // Controllers go down one level at a time, from the delegated cgroup (never
                // the root) to our parent; the run cgroup is a leaf.
                let parent_dir = base.join(parent);
                if !controllers.is_empty() {
                    v2::give_controllers(&base, &controllers)?;
                }
                ensure_dir(&parent_dir)?;
                if !controllers.is_empty() {
                    v2::give_controllers(&parent_dir, &controllers)?;
                }
                let dir = parent_dir.join(id);
                fs::create_dir(&dir)?;
                self.dirs.push(dir.clone());
                if controllers.iter().any(|c| c == "pids") {
                    write_file(&dir.join("pids.max"), &limits.pids.to_string())?;
                }
                if controllers.iter().any(|c| c == "memory") {
                    write_file(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        write_file(&swap, "0")?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The files through which a *single-threaded* process joins the run's cgroup by
    /// writing "0" to each (see [`JOIN_FILE_V1`]), opened for writing by the runner so that
    /// the child does it without allocating: the native sandbox's init right after
    /// `clone3`, runsc's process between fork and exec. Both have exactly one thread.
    pub fn join_files(&self) -> io::Result<Vec<fs::File>> {
        let name = match self.layout {
            Layout::V1 { .. } => JOIN_FILE_V1,
            // v2 has no per-thread file outside threaded subtrees; `cgroup.procs` it is.
            Layout::V2 { .. } => "cgroup.procs",
        };
        self.dirs
            .iter()
            .map(|d| fs::OpenOptions::new().write(true).open(d.join(name)))
            .collect()
    }

    fn dir_with(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
    }

    /// The run cgroup's directory, open for `clone3(CLONE_INTO_CGROUP)` (cgroup v2 only:
    /// the child is born in the cgroup, with no migration and no lock of the v1 path).
    pub fn v2_dir(&self) -> Option<io::Result<fs::File>> {
        use std::os::unix::fs::OpenOptionsExt as _;
        match self.layout {
            Layout::V1 { .. } => None,
            Layout::V2 { .. } => self.dirs.first().map(|d| {
                fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(d)
            }),
        }
    }

    /// CPU time of everything that ran in the cgroup, nanoseconds.
    pub fn cpu_ns(&self) -> Option<u64> {
        match self.layout {
            Layout::V1 { .. } => fs::read_to_string(self.dir_with("cpuacct.usage")?)
                .ok()?
                .trim()
                .parse()
                .ok(),
            Layout::V2 { .. } => {
                let stat = fs::read_to_string(self.dir_with("cpu.stat")?).ok()?;
                let usec: u64 = stat
                    .lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))?
                    .trim()
                    .parse()
                    .ok()?;
                Some(usec.saturating_mul(1000))
            }
        }
    }

    /// Peak memory use of the cgroup, bytes.
    pub fn peak_memory(&self) -> Option<u64> {
        let file = match self.layout {
            Layout::V1 { .. } => "memory.max_usage_in_bytes",
            Layout::V2 { .. } => "memory.peak",
        };
        fs::read_to_string(self.dir_with(file)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn procs_dir(&self) -> Option<&PathBuf> {
        // v1: the pids hierarchy comes first and holds every process; v2: the only one.
        self.dirs.first()
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<Pid> {
        self.procs_dir().map(|d| read_pids(d)).unwrap_or_default()
    }

    /// Kills every process in the cgroup and waits until it is empty (bounded).
    pub fn kill_all(&self) {
        let Some(dir) = self.procs_dir() else { return };
        if matches!(self.layout, Layout::V2 { .. })
            && write_file(&dir.join("cgroup.kill"), "1").is_ok()
        {
            self.wait_empty(dir);
            return;
        }
        // v1 has no cgroup.kill: signal what is listed until nothing is. A fork bomb cannot
        // outrun this for long: pids.max bounds it and every process listed dies.
        for _ in 0..200 {
            let pids = read_pids(dir);
            if pids.is_empty() {
                return;
            }
            for p in pids {
                let _ = kill(p, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_empty(&self, dir: &Path) {
        for _ in 0..400 {
            if read_pids(dir).is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kills what is left and removes the directories.
    pub fn remove(mut self) -> io::Result<()> {
        self.kill_all();
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for d in self.dirs.drain(..).rev() {
            // A process that just died may still be listed for a moment.
            let mut result = fs::remove_dir(&d);
            for _ in 0..100 {
                match &result {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        std::thread::sleep(Duration::from_millis(5));
                        result = fs::remove_dir(&d);
                    }
                    _ => break,
                }
            }
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(io::Error::new(
                        e.kind(),
                        format!("failed to remove cgroup {}: {e}", d.display()),
                    ));
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Reopens the cgroup of run `id` (for sweeping after a crash).
    pub fn existing(layout: &Layout, parent: &str, id: &str) -> Option<Self> {
        let dirs: Vec<PathBuf> = layout
            .hierarchies()
            .iter()
            .map(|h| h.join(parent).join(id))
            .filter(|d| d.is_dir())
            .collect();
        (!dirs.is_empty()).then(|| RunCgroup {
            layout: layout.clone(),
            dirs,
        })
    }
}

fn read_pids(dir: &Path) -> Vec<Pid> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .map(Pid::from_raw)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_v1_controllers_from_mounts() {
        let m = "cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0\n\
                 cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
                 cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,cpu,cpuacct 0 0\n\
                 cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
        assert_eq!(
            Layout::v1_from_mounts(m),
            Some(Layout::V1 {
                pids: "/sys/fs/cgroup/pids".into(),
                memory: "/sys/fs/cgroup/memory".into(),
                cpuacct: None,
            })
        );
        assert_eq!(Layout::v1_from_mounts("proc /proc proc rw 0 0\n"), None);
    }

    #[test]
    fn v2_is_refused_at_the_root_and_without_a_delegate_mark() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n";
        match v2::detect(mounts, "0::/\n") {
            Err(Problem::NotDelegated(m)) => assert!(m.contains("Delegate=yes"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A path that does not exist carries no mark.
        match v2::detect(mounts, "0::/no-such.slice/x.service\n") {
            Err(Problem::NotDelegated(m)) => assert!(m.contains("not delegated"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            v2::detect("proc /proc proc rw 0 0\n", "0::/x\n"),
            Err(Problem::Missing(_))
        ));
    }
}
