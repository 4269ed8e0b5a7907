//! The durable on-disk queue behind the HTTP sink: one file per event, named by a
//! sequence number, written write-ahead (temporary file, fsync, rename, fsync of the
//! directory) before any delivery attempt, so an event the runner reported as emitted
//! survives a crash or `kill -9`. Deliveries go head first, in order; an entry is removed
//! only after the receiver acknowledged it (at-least-once: a crash in between redelivers
//! the same event, with the same id). A full spool or a permanently refused event moves to
//! the dead-letter directory with a `.reason` file beside it: never dropped silently.
//!
//! Every operation runs under an exclusive `flock` on `<spool>/.lock`, so concurrent
//! runner processes neither reorder nor double-deliver. This module knows nothing of HTTP.

use crate::fsperm;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) mod backoff;
pub(crate) use backoff::now_ms;

const LOCK_FILE: &str = ".lock";
const STATE_FILE: &str = ".backoff";
use crate::durable::TMP_PREFIX;
const SUFFIX: &str = ".json";

/// A spool directory could not be prepared, locked or used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory could not be created or failed the trust checks.
    #[error("failed to prepare spool directory {path}")]
    Dir {
        /// The spool directory.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: fsperm::PermError,
    },
    /// A file operation in the spool failed.
    #[error("failed to {action} spool {path}")]
    Io {
        /// The operation, as a verb.
        action: &'static str,
        /// The file or directory operated on.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The spool's lock could not be taken.
    #[error("failed to lock spool {path}")]
    Lock {
        /// The lock file (`<spool>/.lock`).
        path: PathBuf,
        /// The error from `flock`.
        #[source]
        source: nix::Error,
    },
    /// The spool holds events for another URL than its sink now delivers to.
    #[error(
        "spool {path} holds {pending} event(s) for {held}, but its sink now delivers to \
         {wanted}; deliver them first with `edge-runner events --events {held} flush`, or \
         give the sink another name"
    )]
    OtherDestination {
        /// The spool directory.
        path: PathBuf,
        /// The URL the queued events are for.
        held: String,
        /// The URL the sink now delivers to.
        wanted: String,
        /// How many events are queued.
        pending: usize,
    },
}

/// The file in a spool directory naming the receiver its events are for.
const DESTINATION_FILE: &str = ".destination";

/// The receiver the events in spool `dir` are for, as recorded when it was opened.
pub(crate) fn destination(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(DESTINATION_FILE))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Binds spool `dir` to `url`: a spool holds events for one receiver only, so events
/// spooled for one URL are never delivered to another (issue 18).
pub(crate) fn bind_destination(dir: &Path, url: &str) -> Result<(), SpoolError> {
    if let Some(held) = destination(dir)
        && held != url
    {
        let pending = count_events(dir);
        if pending > 0 {
            return Err(SpoolError::OtherDestination {
                path: dir.to_owned(),
                held,
                wanted: url.to_owned(),
                pending,
            });
        }
    } else if destination(dir).is_some() {
        return Ok(());
    }
    let path = dir.join(DESTINATION_FILE);
    crate::durable::replace(&path, format!("{url}\n").as_bytes(), 0o600)
        .map_err(io("record the destination of", dir))
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Bounds on the spool and the retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpoolLimits {
    pub(crate) max_events: u64,
    pub(crate) max_bytes: u64,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
}

/// A spool directory and its dead-letter directory.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    dead: PathBuf,
    limits: SpoolLimits,
}

/// One queued event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub seq: u64,
    pub path: PathBuf,
    pub size: u64,
}

/// The outcome of queueing one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enqueued {
    Queued {
        seq: u64,
        depth: u64,
    },
    /// The spool was full; the event went to this dead-letter file instead.
    Full {
        dead_letter: PathBuf,
    },
}

/// The spool, locked for the lifetime of this value.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    spool: &'a Spool,
    _lock: Flock<File>,
}

impl Spool {
    pub(crate) fn open(dir: &Path, dead: &Path, limits: SpoolLimits) -> Result<Self, SpoolError> {
        for d in [dir, dead] {
            fsperm::ensure_private_dir(d, "event spool directory").map_err(|source| {
                SpoolError::Dir {
                    path: d.to_owned(),
                    source,
                }
            })?;
        }
        Ok(Self {
            dir: dir.to_owned(),
            dead: dead.to_owned(),
            limits,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn dead_dir(&self) -> &Path {
        &self.dead
    }

    /// Takes the exclusive lock, waiting for another process to release it.
    pub(crate) fn lock(&self) -> Result<Locked<'_>, SpoolError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io("open the lock of", &path))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, source)| SpoolError::Lock { path, source })?;
        let locked = Locked {
            spool: self,
            _lock: lock,
        };
        locked.remove_stale_temporaries();
        Ok(locked)
    }
}

/// The name of the queue entry with sequence number `seq`.
pub(crate) fn entry_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

/// The sequence number of a queue entry's file name: exactly what [`entry_name`] writes
/// (20 decimal digits, `.json`), so one number has one name. `u64::from_str` alone also
/// takes `+7.json`, `7.json` and `007.json`: two files with one sequence number, whose
/// delivery order would depend on the directory listing.
pub(crate) fn entry_seq(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// How many events a spool or dead-letter directory holds (`<name>.json`; the lock,
/// backoff state and temporaries start with a dot), read without the lock: for reporting
/// spools no configured sink owns.
pub(crate) fn count_events(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| !n.starts_with('.') && n.ends_with(SUFFIX))
                })
                .count()
        })
        .unwrap_or(0)
}

impl Locked<'_> {
    /// Queued events, oldest first.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>, SpoolError> {
        let dir = &self.spool.dir;
        let mut out = Vec::new();
        for item in std::fs::read_dir(dir).map_err(io("list", dir))? {
            let item = item.map_err(io("list", dir))?;
            let name = item.file_name();
            let Some(seq) = name.to_str().and_then(entry_seq) else {
                continue;
            };
            let size = item.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Entry {
                seq,
                path: item.path(),
                size,
            });
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// Writes `json` durably at the tail of the queue, or to the dead-letter directory
    /// when the queue is full.
    pub(crate) fn enqueue(&self, json: &[u8]) -> Result<Enqueued, SpoolError> {
        let entries = self.entries()?;
        let bytes: u64 = entries.iter().map(|e| e.size).sum();
        let limits = &self.spool.limits;
        if entries.len() as u64 >= limits.max_events || bytes + json.len() as u64 > limits.max_bytes
        {
            let reason = format!(
                "spool_full: the spool {} holds {} events ({} bytes); limits are {} events, {} bytes",
                self.spool.dir.display(),
                entries.len(),
                bytes,
                limits.max_events,
                limits.max_bytes
            );
            let dead_letter = self.write_dead_letter(json, &reason)?;
            return Ok(Enqueued::Full { dead_letter });
        }
        let seq = entries.last().map_or(1, |e| e.seq + 1);
        let path = self.spool.dir.join(entry_name(seq));
        write_durably(&path, json)?;
        Ok(Enqueued::Queued {
            seq,
            depth: entries.len() as u64 + 1,
        })
    }

    /// Removes an entry the receiver acknowledged.
    pub(crate) fn remove(&self, entry: &Entry) -> Result<(), SpoolError> {
        std::fs::remove_file(&entry.path).map_err(io("remove an entry from", &entry.path))
    }

    /// Moves an entry the receiver refused for good to the dead-letter directory.
    pub(crate) fn dead_letter(&self, entry: &Entry, reason: &str) -> Result<PathBuf, SpoolError> {
        let json = std::fs::read(&entry.path).map_err(io("read an entry of", &entry.path))?;
        let path = self.write_dead_letter(&json, reason)?;
        self.remove(entry)?;
        Ok(path)
    }

    fn write_dead_letter(&self, json: &[u8], reason: &str) -> Result<PathBuf, SpoolError> {
        let dead = &self.spool.dead;
        let stamp = now_ms();
        let mut n = 0u32;
        let path = loop {
            let p = dead.join(format!("{stamp:015}-{n:04}{SUFFIX}"));
            if !p.exists() {
                break p;
            }
            n += 1;
        };
        let reason_path = path.with_extension("reason");
        write_durably(&reason_path, format!("{reason}\n").as_bytes())?;
        write_durably(&path, json)?;
        Ok(path)
    }

    /// Dead-lettered events, oldest first.
    pub(crate) fn dead_letters(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let dead = &self.spool.dead;
        let mut out: Vec<PathBuf> = std::fs::read_dir(dead)
            .map_err(io("list", dead))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Moves dead-lettered events back to the tail of the queue, oldest first, while the
    /// queue has room; returns how many moved.
    pub(crate) fn requeue_dead_letters(&self) -> Result<u64, SpoolError> {
        let mut n = 0;
        for path in self.dead_letters()? {
            let json = std::fs::read(&path).map_err(io("read a dead letter of", &path))?;
            let entries = self.entries()?;
            let bytes: u64 = entries.iter().map(|e| e.size).sum();
            let limits = &self.spool.limits;
            if entries.len() as u64 >= limits.max_events
                || bytes + json.len() as u64 > limits.max_bytes
            {
                break;
            }
            let seq = entries.last().map_or(1, |e| e.seq + 1);
            let target = self.spool.dir.join(entry_name(seq));
            write_durably(&target, &json)?;
            std::fs::remove_file(&path).map_err(io("remove a dead letter of", &path))?;
            let _ = std::fs::remove_file(path.with_extension("reason"));
            n += 1;
        }
        Ok(n)
    }

    /// A crashed writer can leave a temporary file; holding the lock proves it is dead.
    fn remove_stale_temporaries(&self) {
        for d in [&self.spool.dir, &self.spool.dead] {
            let Ok(items) = std::fs::read_dir(d) else {
                continue;
            };
            for item in items.filter_map(Result::ok) {
                if item
                    .file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(TMP_PREFIX))
                {
                    let _ = std::fs::remove_file(item.path());
                }
            }
        }
    }
}

/// The spool's one durable write: the shared atomic replace (0600).
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    crate::durable::replace(path, bytes, 0o600).map_err(io("write", path))
}

#[cfg(test)]
mod props;

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn limits(max_events: u64) -> SpoolLimits {
        SpoolLimits {
            max_events,
            max_bytes: 1 << 20,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
        }
    }

    #[test]
    fn queue_keeps_order_and_full_spool_dead_letters() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(&d.path().join("q"), &d.path().join("dead"), limits(2)).unwrap();
        let l = s.lock().unwrap();
        assert!(matches!(
            l.enqueue(b"{\"n\":1}").unwrap(),
            Enqueued::Queued { seq: 1, depth: 1 }
        ));
        assert!(matches!(
            l.enqueue(b"{\"n\":2}").unwrap(),
            Enqueued::Queued { seq: 2, depth: 2 }
        ));
        let Enqueued::Full { dead_letter } = l.enqueue(b"{\"n\":3}").unwrap() else {
            panic!("third event must not fit")
        };
        assert_eq!(std::fs::read(&dead_letter).unwrap(), b"{\"n\":3}");
        let why = std::fs::read_to_string(dead_letter.with_extension("reason")).unwrap();
        assert!(why.starts_with("spool_full"), "{why}");
        let e = l.entries().unwrap();
        assert_eq!(e.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        l.remove(&e[0]).unwrap();
        assert!(matches!(
            l.enqueue(b"{\"n\":4}").unwrap(),
            Enqueued::Queued { seq: 3, .. }
        ));
        assert_eq!(
            l.requeue_dead_letters().unwrap(),
            0,
            "the queue is full: nothing moves"
        );
        l.remove(&l.entries().unwrap()[0]).unwrap();
        assert_eq!(l.requeue_dead_letters().unwrap(), 1);
        let order: Vec<u64> = l.entries().unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(order, [3, 4], "requeued at the tail");
        assert!(l.dead_letters().unwrap().is_empty());
    }

    #[test]
    fn stale_temporaries_are_removed_under_the_lock() {
        let d = tempfile::tempdir().unwrap();
        let s = Spool::open(&d.path().join("q"), &d.path().join("dead"), limits(10)).unwrap();
        std::fs::write(
            s.dir().join(".tmp-123-00000000000000000001.json"),
            b"partial",
        )
        .unwrap();
        let l = s.lock().unwrap();
        assert!(l.entries().unwrap().is_empty());
        assert_eq!(
            std::fs::read_dir(s.dir()).unwrap().count(),
            1,
            "only the lock file remains"
        );
    }
}
