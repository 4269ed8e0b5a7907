//! The persistent seen-nonce store: a signed task runs at most once per (tenant, nonce),
//! across restarts and across runner processes on the same host.
//!
//! Storage is a directory, `<state_dir>/replay/`, of expiry buckets: one entry file per
//! pair, `replay/<bucket>/<sha256(tenant, nonce)>`, in the bucket of the moment after which
//! no manifest carrying the pair can be valid (`expires_at` plus the largest configurable
//! clock skew, in [`BUCKET_SECS`] slices). Every operation takes an exclusive `flock` on
//! `<state_dir>/replay.lock`, so "is it there? then record it" is one atomic step for every
//! process and thread on the host; a record is created with `O_EXCL` and made durable by
//! one `fsync` of its bucket directory before the task may run.
//!
//! Why files and not an embedded database: the store must be opened per task (a
//! long-lived runner may not lock every other runner out), and a database's open, commit
//! and clean close cost several `fsync`s each (seven per task with redb, 2-3 ms of every
//! task on this kind of host). Here the only ordering that matters for safety is "the
//! entry's name is durable before the task runs": one `fsync`. An entry whose content was
//! lost in a crash still exists, and still refuses its pair.
//!
//! Entries are forgotten a whole bucket at a time once the bucket's last second has
//! passed, a batch of files at a time by the writes themselves, so the store stays
//! bounded by the task rate times (the maximum manifest age + skew + one bucket). Any
//! failure to read, lock or write the store, and anything in it the store did not put
//! there, fails closed: the task is refused as `replay_store_unavailable`. This module must
//! not decide anything but "seen before or not".

use crate::fsperm::{self, PermError};
use crate::manifest::CheckedManifest;
use crate::manifest::MAX_CLOCK_SKEW_SECS;
use crate::reason::{Reason, Refuse};
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Names under the state directory.
pub const STORE_DIR: &str = "replay";
/// The lock file serializing the store's transactions, inside [`STORE_DIR`].
pub(crate) const LOCK_FILE: &str = "replay.lock";
/// The store of an earlier development version (a redb database). Its records are not
/// carried over, so its presence stops the runner instead of silently forgetting them.
const LEGACY_DB_FILE: &str = "replay.redb";
/// Width of one expiry bucket: entries outlive their last valid second by at most this.
pub const BUCKET_SECS: u64 = 600;
/// How long an operation waits for another process's transaction before failing closed.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Most expired entries removed by one write, so a backlog never stalls one task.
const PRUNE_BATCH: usize = 256;
/// Longest entry content read back (the first-seen time).
const ENTRY_MAX_BYTES: u64 = 64;

/// What to do when the store is unusable: shown with every `Unavailable` error.
const FIX: &str = "every task is refused until this is fixed. If the store is damaged, move \
     it aside; that forgets the recorded nonces, so first keep the runner stopped for \
     claims.max_manifest_age_secs + 600 seconds, after which no recorded task is valid";

/// Why the replay check refused a task or could not decide.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The (tenant, nonce) pair was already recorded: the task is a replay.
    #[error(
        "nonce \"{nonce}\" of tenant \"{tenant}\" was already used (recorded at {first_seen}); \
         a signed task runs at most once: request a new task"
    )]
    Replayed {
        /// The task's tenant.
        tenant: String,
        /// The task's nonce.
        nonce: String,
        /// When the pair was first recorded.
        first_seen: String,
    },
    /// The store directory failed the ownership and permission checks.
    #[error("failed to trust the replay store at {path}; {FIX}")]
    Untrusted {
        /// The store directory.
        path: PathBuf,
        /// What the check found.
        #[source]
        source: PermError,
    },
    /// A file operation on the store failed.
    #[error("failed to use the replay store at {path} ({action}); {FIX}")]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// The operation, as a verb.
        action: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process held the store's lock past the timeout.
    #[error(
        "failed to lock the replay store {path}: another process held it for {waited_ms} ms; \
         {FIX}"
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this process waited, in milliseconds.
        waited_ms: u128,
    },
    /// A file in the store was not written by it.
    #[error("failed to use the replay store: {path} was not written by it ({what}); {FIX}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The fleet's shared replay guard could not be reached or answered wrongly.
    #[error(
        "failed to use the fleet's replay guard ({what}): {message}; every task is refused until it is reachable"
    )]
    Remote {
        /// The operation that failed.
        what: &'static str,
        /// The error it gave.
        message: String,
    },
    /// The store of an earlier development version is present.
    #[error(
        "failed to use the replay store: {path} is the store of an earlier version, whose \
         records are not carried over. Keep the runner stopped for \
         claims.max_manifest_age_secs + 600 seconds, then delete it"
    )]
    Legacy {
        /// Its path.
        path: PathBuf,
    },
}

impl ReplayError {
    /// The stable reason code: `replayed_nonce` for a replay, else `replay_store_unavailable`.
    pub fn reason(&self) -> Reason {
        match self {
            ReplayError::Replayed { .. } => Reason::ReplayedNonce,
            _ => Reason::ReplayStoreUnavailable,
        }
    }
}

impl Refuse for ReplayError {
    fn reason(&self) -> Reason {
        ReplayError::reason(self)
    }
}

/// Where a runner remembers the (tenant, nonce) pairs it ran: the file store of one host
/// ([`ReplayStore`], what `run` uses) or a store the whole fleet shares (the JetStream
/// key-value guard of `serve`). Both keep the same promise: once `check_and_record`
/// returned `Ok` for a pair, no runner using the same store ever gets `Ok` for it again
/// before it expires; anything that cannot be decided fails closed.
pub trait ReplayGuard: Send + Sync + std::fmt::Debug {
    /// "Would this be a replay?", recording nothing.
    fn check(&self, manifest: &CheckedManifest) -> Result<(), ReplayError>;
    /// Refuses a pair seen before, and otherwise records it, atomically and durably.
    fn check_and_record(
        &self,
        manifest: &CheckedManifest,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError>;
}

impl ReplayGuard for ReplayStore {
    fn check(&self, manifest: &CheckedManifest) -> Result<(), ReplayError> {
        ReplayStore::check(self, manifest)
    }

    fn check_and_record(
        &self,
        manifest: &CheckedManifest,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        ReplayStore::check_and_record(self, manifest, now)
    }
}

/// The store-independent name of a (tenant, nonce) pair: 64 hex digits, safe as a file
/// name and as a key-value key.
pub fn pair_key(tenant: &str, nonce: &str) -> String {
    entry_name(tenant, nonce)
}

/// The seen-nonce store of one state directory. Cheap to create; holds nothing open
/// between operations.
#[derive(Debug, Clone)]
pub struct ReplayStore {
    dir: PathBuf,
    root: PathBuf,
    lock_path: PathBuf,
    lock_timeout: Duration,
    prune_batch: usize,
}

/// What [`ReplayStore::stats`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Remembered (tenant, nonce) pairs.
    pub entries: u64,
}

impl ReplayStore {
    /// The store under `state_dir`. Nothing is touched until the first operation.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.to_owned(),
            root: state_dir.join(STORE_DIR),
            lock_path: state_dir.join(LOCK_FILE),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            prune_batch: PRUNE_BATCH,
        }
    }

    /// Changes how long an operation waits for the lock.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Refuses the task if its (tenant, nonce) was seen before, and otherwise records it,
    /// as one atomic, durable step: when this returns `Ok`, every later call, from this
    /// or any other process, refuses the same pair until it expires.
    pub fn check_and_record(
        &self,
        manifest: &CheckedManifest,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        self.record(
            &manifest.task().tenant_id,
            manifest.nonce(),
            manifest.expires_at(),
            now,
        )
    }

    /// "Would this be a replay?", without recording anything: `edge-runner verify`, and
    /// `run` refusing a replay before spending anything on it. A store that does not exist
    /// yet has seen nothing.
    pub fn check(&self, manifest: &CheckedManifest) -> Result<(), ReplayError> {
        self.check_only(&manifest.task().tenant_id, manifest.nonce())
    }

    /// How many pairs the store remembers (expired ones not yet pruned included).
    pub fn stats(&self) -> Result<ReplayStats, ReplayError> {
        if !self.exists()? {
            return Ok(ReplayStats { entries: 0 });
        }
        let _lock = self.lock()?;
        let mut entries = 0u64;
        for (_, bucket) in self.buckets()? {
            entries += self.entries(&bucket)?.len() as u64;
        }
        Ok(ReplayStats { entries })
    }

    pub(crate) fn record(
        &self,
        tenant: &str,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        self.ensure_dir(&self.dir, "state directory")?;
        let _lock = self.lock()?;
        self.refuse_legacy()?;
        if self.ensure_dir(&self.root, "replay store")? {
            crate::durable::sync_dir(&self.dir)
                .map_err(self.io(&self.dir, "make the store durable"))?;
        }
        let name = entry_name(tenant, nonce);
        let buckets = self.buckets()?;
        self.refuse_seen(&buckets, &name, tenant, nonce)?;

        let now_secs = unix_secs(now);
        // Round up, then add the largest skew any configuration may allow: by then no
        // manifest carrying this nonce can pass the claim checks.
        let forget_after = unix_secs_ceil(expires_at).saturating_add(MAX_CLOCK_SKEW_SECS);
        // Pruning first: a store it finds damaged refuses the task before its nonce is spent.
        self.prune(&buckets, now_secs)?;
        let bucket = self.root.join(bucket_name(forget_after / BUCKET_SECS));
        if self.ensure_dir(&bucket, "replay store bucket")? {
            crate::durable::sync_dir(&self.root)
                .map_err(self.io(&self.root, "make a bucket durable"))?;
        }
        let path = bucket.join(&name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(self.io(&path, "create an entry"))?;
        // The content only serves the "recorded at" of a later refusal: not synced. Should
        // a crash lose it, the entry still exists and still refuses its pair.
        file.write_all(format!("{now_secs}\n").as_bytes())
            .map_err(self.io(&path, "write an entry"))?;
        drop(file);
        // The one durability point: the entry's name, before the task may run.
        crate::durable::sync_dir(&bucket).map_err(self.io(&bucket, "make the entry durable"))
    }

    pub(crate) fn check_only(&self, tenant: &str, nonce: &str) -> Result<(), ReplayError> {
        if !self.exists()? {
            return Ok(());
        }
        let _lock = self.lock()?;
        let buckets = self.buckets()?;
        self.refuse_seen(&buckets, &entry_name(tenant, nonce), tenant, nonce)
    }

    /// Refuses the pair whose entry is `name` if any bucket holds it.
    fn refuse_seen(
        &self,
        buckets: &[(u64, PathBuf)],
        name: &str,
        tenant: &str,
        nonce: &str,
    ) -> Result<(), ReplayError> {
        for (_, bucket) in buckets {
            let path = bucket.join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    return Err(ReplayError::Replayed {
                        tenant: tenant.to_owned(),
                        nonce: nonce.to_owned(),
                        first_seen: first_seen(&path),
                    });
                }
                Ok(_) => {
                    return Err(ReplayError::Corrupt {
                        path,
                        what: "an entry that is not a regular file",
                    });
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(&path, "look up an entry")(e)),
            }
        }
        Ok(())
    }

    /// The buckets, oldest first. Anything else in the store's directory fails closed.
    fn buckets(&self) -> Result<Vec<(u64, PathBuf)>, ReplayError> {
        let read = match std::fs::read_dir(&self.root) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(&self.root, "list the store")(e)),
        };
        let mut buckets = Vec::new();
        for item in read {
            let item = item.map_err(self.io(&self.root, "list the store"))?;
            let path = item.path();
            let number = item
                .file_name()
                .to_str()
                .and_then(parse_bucket_name)
                .ok_or_else(|| ReplayError::Corrupt {
                    path: path.clone(),
                    what: "not a bucket name",
                })?;
            let kind = item
                .file_type()
                .map_err(self.io(&path, "inspect a bucket"))?;
            if !kind.is_dir() {
                return Err(ReplayError::Corrupt {
                    path,
                    what: "a bucket that is not a directory",
                });
            }
            buckets.push((number, path));
        }
        buckets.sort_unstable();
        Ok(buckets)
    }

    /// The entry files of one bucket.
    fn entries(&self, bucket: &Path) -> Result<Vec<PathBuf>, ReplayError> {
        let mut out = Vec::new();
        for item in std::fs::read_dir(bucket).map_err(self.io(bucket, "list a bucket"))? {
            let item = item.map_err(self.io(bucket, "list a bucket"))?;
            let path = item.path();
            let named = item.file_name().to_str().is_some_and(is_entry_name);
            let kind = item
                .file_type()
                .map_err(self.io(&path, "inspect an entry"))?;
            if !named || !kind.is_file() {
                return Err(ReplayError::Corrupt {
                    path,
                    what: "not an entry",
                });
            }
            out.push(path);
        }
        Ok(out)
    }

    /// Removes up to `prune_batch` entries of the buckets whose last second has passed,
    /// oldest first, and each bucket it empties. Not synced: an entry a crash brings back
    /// is pruned again.
    fn prune(&self, buckets: &[(u64, PathBuf)], now: u64) -> Result<(), ReplayError> {
        let mut budget = self.prune_batch;
        for (number, bucket) in buckets {
            // Every entry in bucket b has forget_after < (b + 1) * BUCKET_SECS.
            if number.saturating_add(1).saturating_mul(BUCKET_SECS) > now {
                break;
            }
            let entries = self.entries(bucket)?;
            for path in entries.iter().take(budget) {
                std::fs::remove_file(path).map_err(self.io(path, "prune an entry"))?;
            }
            if entries.len() > budget {
                return Ok(());
            }
            budget -= entries.len();
            std::fs::remove_dir(bucket).map_err(self.io(bucket, "prune a bucket"))?;
        }
        Ok(())
    }

    /// Whether the store exists, refusing an untrusted state directory or store.
    fn exists(&self) -> Result<bool, ReplayError> {
        for (path, what) in [(&self.dir, "state directory"), (&self.root, "replay store")] {
            match std::fs::symlink_metadata(path) {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    // Not there, and nothing to refuse, unless an old store is.
                    self.refuse_legacy()?;
                    return Ok(false);
                }
                _ => self.trust(path, what)?,
            }
        }
        self.refuse_legacy()?;
        Ok(true)
    }

    fn refuse_legacy(&self) -> Result<(), ReplayError> {
        let legacy = self.dir.join(LEGACY_DB_FILE);
        match std::fs::symlink_metadata(&legacy) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            _ => Err(ReplayError::Legacy { path: legacy }),
        }
    }

    fn trust(&self, path: &Path, what: &'static str) -> Result<(), ReplayError> {
        fsperm::check_trusted(path, what)
            .map(drop)
            .map_err(|source| ReplayError::Untrusted {
                path: path.to_owned(),
                source,
            })
    }

    /// Creates `dir` 0700 if missing (saying whether it did), then checks it is trusted.
    fn ensure_dir(&self, dir: &Path, what: &'static str) -> Result<bool, ReplayError> {
        fsperm::ensure_private_dir_created(dir, what).map_err(|source| ReplayError::Untrusted {
            path: dir.to_owned(),
            source,
        })
    }

    /// Takes the exclusive lock, polling so that a stuck holder cannot hang the runner.
    fn lock(&self) -> Result<File, ReplayError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&self.lock_path)
            .map_err(self.io(&self.lock_path, "open the lock file"))?;
        // Checked on the open descriptor: what is checked is what is locked.
        let meta = file
            .metadata()
            .map_err(self.io(&self.lock_path, "inspect the lock file"))?;
        fsperm::check_metadata(&meta, &self.lock_path, "replay lock file").map_err(|source| {
            ReplayError::Untrusted {
                path: self.lock_path.clone(),
                source,
            }
        })?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(500);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(self.io(&self.lock_path, "lock the store")(e));
                }
            }
            if start.elapsed() >= self.lock_timeout {
                return Err(ReplayError::LockTimeout {
                    path: self.lock_path.clone(),
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn io(&self, path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> ReplayError {
        let path = path.to_owned();
        move |source| ReplayError::Io {
            path,
            action,
            source,
        }
    }
}

/// The entry file name of a pair: SHA-256 of the length-prefixed tenant, then the nonce,
/// so no two pairs share a name and any nonce is a safe file name.
fn entry_name(tenant: &str, nonce: &str) -> String {
    let mut h = Sha256::new();
    h.update((tenant.len() as u64).to_be_bytes());
    h.update(tenant.as_bytes());
    h.update(nonce.as_bytes());
    crate::text::hex(&h.finalize())
}

fn is_entry_name(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Bucket names sort as their numbers: 20 decimal digits.
fn bucket_name(number: u64) -> String {
    format!("{number:020}")
}

fn parse_bucket_name(s: &str) -> Option<u64> {
    (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// When the pair of the entry at `path` was recorded, as RFC 3339, or why it is unknown.
fn first_seen(path: &Path) -> String {
    let mut text = String::new();
    let read = File::open(path).and_then(|f| f.take(ENTRY_MAX_BYTES).read_to_string(&mut text));
    match read.ok().and_then(|_| text.trim().parse::<u64>().ok()) {
        Some(secs) => rfc3339(secs),
        None => "an unknown time: the entry's content was lost".to_owned(),
    }
}

fn unix_secs(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp()).unwrap_or(0)
}

fn unix_secs_ceil(t: DateTime<Utc>) -> u64 {
    let s = unix_secs(t);
    if t.timestamp_subsec_nanos() > 0 {
        s.saturating_add(1)
    } else {
        s
    }
}

fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests;
