//! The file sink: appends one event per line, fsyncs each event before reporting it
//! delivered, and rotates by size (`events.jsonl` -> `events.jsonl.1` -> ... ->
//! `events.jsonl.<keep>`, the oldest deleted). Writers in several processes serialize on
//! an `flock` of `<file>.lock`; a writer notices a rotation done by another process by
//! comparing inodes. New files are created 0600. This module only appends and rotates.

use super::Delivery;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct FileSink {
    path: PathBuf,
    lock_path: PathBuf,
    max_bytes: u64,
    keep: u32,
    open: Mutex<Option<File>>,
}

impl FileSink {
    pub(crate) fn new(path: &Path, max_bytes: u64, keep: u32) -> Self {
        let mut lock_name = path.as_os_str().to_owned();
        lock_name.push(".lock");
        Self {
            path: path.to_owned(),
            lock_path: PathBuf::from(lock_name),
            max_bytes,
            keep,
            open: Mutex::new(None),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn deliver(&self, json: &[u8]) -> Delivery {
        match self.append(json) {
            Ok(()) => Delivery::Delivered,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "failed to append an event");
                Delivery::Failed {
                    error: format!("failed to append to {}: {e}", self.path.display()),
                }
            }
        }
    }

    fn append(&self, json: &[u8]) -> std::io::Result<()> {
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json);
        line.push(b'\n');
        let mut guard = self
            .open
            .lock()
            .map_err(|_| std::io::Error::other("file sink lock poisoned"))?;
        let lock_file = open_file(&self.lock_path, false)?;
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| std::io::Error::from(e))?;
        // Another process may have rotated the file since we opened it.
        let current = match guard.take() {
            Some(f) if same_file(&f, &self.path) => f,
            _ => open_file(&self.path, true)?,
        };
        let size = current.metadata()?.len();
        let mut file = if size > 0 && size + line.len() as u64 > self.max_bytes {
            drop(current);
            self.rotate()?;
            open_file(&self.path, true)?
        } else {
            current
        };
        file.write_all(&line)?;
        file.sync_data()?;
        *guard = Some(file);
        Ok(())
    }

    /// Shifts `path.N` to `path.N+1` for N = keep-1 .. 1, then `path` to `path.1`,
    /// deleting what falls off the end. With `keep = 0` the file is simply removed.
    fn rotate(&self) -> std::io::Result<()> {
        let numbered = |n: u32| {
            let mut s = self.path.as_os_str().to_owned();
            s.push(format!(".{n}"));
            PathBuf::from(s)
        };
        if self.keep == 0 {
            return remove_if_exists(&self.path);
        }
        remove_if_exists(&numbered(self.keep))?;
        for n in (1..self.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn remove_if_exists(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn open_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(false);
    }
    o.open(path)
}

fn same_file(f: &File, path: &Path) -> bool {
    match (f.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_keeping_a_bounded_number_of_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("events.jsonl");
        let sink = FileSink::new(&path, 100, 2);
        for i in 0..10 {
            let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(30));
            assert_eq!(sink.deliver(line.as_bytes()), Delivery::Delivered);
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let current = read(&path);
        let one = read(&d.path().join("events.jsonl.1"));
        let two = read(&d.path().join("events.jsonl.2"));
        assert!(!d.path().join("events.jsonl.3").exists(), "keep = 2");
        for f in [&current, &one, &two] {
            assert!(f.len() <= 100 && !f.is_empty(), "{f:?}");
        }
        // The newest events, in order, across the kept files.
        let all: Vec<String> = [two, one, current]
            .concat()
            .lines()
            .map(str::to_owned)
            .collect();
        assert!(all.last().unwrap().starts_with("{\"n\":9,"));
        let ns: Vec<u32> = all
            .iter()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap() as u32
            })
            .collect();
        assert!(ns.windows(2).all(|w| w[1] == w[0] + 1), "{ns:?}");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn notices_rotation_by_another_writer() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("e.jsonl");
        let a = FileSink::new(&path, 1 << 20, 3);
        let b = FileSink::new(&path, 1 << 20, 3);
        a.deliver(b"{\"w\":\"a1\"}");
        std::fs::rename(&path, d.path().join("e.jsonl.1")).unwrap();
        b.deliver(b"{\"w\":\"b1\"}");
        a.deliver(b"{\"w\":\"a2\"}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"w\":\"b1\"}\n{\"w\":\"a2\"}\n"
        );
    }
}
