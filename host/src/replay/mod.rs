//! The persistent seen-nonce store: a signed task runs at most once per (tenant, nonce),
//! across restarts and across runner processes on the same host.
//!
//! Storage is a redb database `<state_dir>/replay.redb`. Every operation takes an
//! exclusive `flock` on `<state_dir>/replay.lock`, opens the database, runs one
//! transaction and closes it again. Why not keep it open: redb's default mode locks the
//! whole file for one process, so a long-lived runner would lock every other runner (and
//! `edge-runner verify`) out; its multi-writer mode is new in redb 4.5 and still collecting
//! fixes. The flock makes "is it there? then record it" one atomic step for every process
//! and thread on the host; the write transaction commits durably before the task may run.
//!
//! Entries are forgotten once no manifest carrying them can be valid any more
//! (`expires_at` plus the largest configurable clock skew), pruned a batch at a time by the
//! writes themselves, so the store stays bounded by the task rate times the maximum
//! manifest age. Any failure to read, lock or write the store fails closed: the task is
//! refused as `replay_store_unavailable`. This module must not decide anything but
//! "seen before or not".

use crate::config::MAX_CLOCK_SKEW_SECS;
use crate::fsperm::{self, PermError};
use crate::manifest::CheckedManifest;
use crate::reason::{Reason, Refusal};
use chrono::{DateTime, Utc};
use redb::{ReadableDatabase as _, ReadableTable as _, TableDefinition};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// (tenant, nonce) -> (expires_at, first seen), both Unix seconds.
const NONCES: TableDefinition<(&str, &str), (u64, u64)> = TableDefinition::new("nonces_v1");
/// (forget_after, tenant, nonce): the pruning order.
const EXPIRY: TableDefinition<(u64, &str, &str), ()> = TableDefinition::new("expiry_v1");

/// File names under the state directory.
pub const DB_FILE: &str = "replay.redb";
pub const LOCK_FILE: &str = "replay.lock";
/// How long an operation waits for another process's transaction before failing closed.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(10);
/// Most expired entries removed by one write, so a backlog never stalls one task.
const PRUNE_BATCH: usize = 256;
/// redb's page cache; the store is small and reopened per operation.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// What to do when the store is unusable: shown with every `Unavailable` error.
const FIX: &str = "every task is refused until this is fixed. If the file is damaged, move \
     it aside; that forgets the recorded nonces, so first keep the runner stopped for \
     claims.max_manifest_age_secs + 600 seconds, after which no recorded task is valid";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "nonce \"{nonce}\" of tenant \"{tenant}\" was already used (recorded at {first_seen}); \
         a signed task runs at most once: request a new task"
    )]
    Replayed {
        tenant: String,
        nonce: String,
        first_seen: String,
    },
    #[error("failed to trust the replay store at {path}; {FIX}")]
    Untrusted {
        path: PathBuf,
        #[source]
        source: PermError,
    },
    #[error("failed to open the replay store file {path}; {FIX}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "failed to lock the replay store {path}: another process held it for {waited_ms} ms; \
         {FIX}"
    )]
    LockTimeout { path: PathBuf, waited_ms: u128 },
    #[error("failed to use the replay store {path} (unreadable, unwritable or corrupt); {FIX}")]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
}

impl ReplayError {
    pub fn reason(&self) -> Reason {
        match self {
            ReplayError::Replayed { .. } => Reason::ReplayedNonce,
            _ => Reason::ReplayStoreUnavailable,
        }
    }

    /// The refusal carried by events and the CLI, with the whole cause chain.
    pub fn to_refusal(&self) -> Refusal {
        let mut message = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            message.push_str(": ");
            message.push_str(&c.to_string());
            cause = c.source();
        }
        Refusal::new(self.reason(), message)
    }
}

impl From<ReplayError> for Refusal {
    fn from(e: ReplayError) -> Self {
        e.to_refusal()
    }
}

/// The seen-nonce store of one state directory. Cheap to create; holds nothing open
/// between operations.
#[derive(Debug, Clone)]
pub struct ReplayStore {
    dir: PathBuf,
    db_path: PathBuf,
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
            db_path: state_dir.join(DB_FILE),
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

    pub fn path(&self) -> &Path {
        &self.db_path
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

    /// "Would this be a replay?", without recording anything (for `edge-runner verify`).
    /// A store that does not exist yet has seen nothing.
    pub fn check(&self, manifest: &CheckedManifest) -> Result<(), ReplayError> {
        self.check_only(&manifest.task().tenant_id, manifest.nonce())
    }

    /// How many pairs the store remembers.
    pub fn stats(&self) -> Result<ReplayStats, ReplayError> {
        if !self.exists()? {
            return Ok(ReplayStats { entries: 0 });
        }
        let _lock = self.lock()?;
        let db = self.open_db()?;
        let txn = db.begin_read().map_err(|e| self.db_err(e))?;
        let entries = match txn.open_table(NONCES) {
            Ok(t) => redb::ReadableTableMetadata::len(&t).map_err(|e| self.db_err(e))?,
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(self.db_err(e)),
        };
        drop(txn);
        db.close().map_err(|e| self.db_err(e))?;
        Ok(ReplayStats { entries })
    }

    pub(crate) fn record(
        &self,
        tenant: &str,
        nonce: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), ReplayError> {
        fsperm::ensure_private_dir(&self.dir, "state directory").map_err(|source| {
            ReplayError::Untrusted {
                path: self.dir.clone(),
                source,
            }
        })?;
        let _lock = self.lock()?;
        let db = self.open_db()?;
        let txn = db.begin_write().map_err(|e| self.db_err(e))?;
        let now_secs = unix_secs(now);
        // Round up, then add the largest skew any configuration may allow: by then no
        // manifest carrying this nonce can pass the claim checks.
        let expires = unix_secs_ceil(expires_at);
        let forget_after = expires.saturating_add(MAX_CLOCK_SKEW_SECS);
        {
            let mut nonces = txn.open_table(NONCES).map_err(|e| self.db_err(e))?;
            let seen = nonces
                .get((tenant, nonce))
                .map_err(|e| self.db_err(e))?
                .map(|g| g.value().1);
            if let Some(first) = seen {
                return Err(ReplayError::Replayed {
                    tenant: tenant.to_owned(),
                    nonce: nonce.to_owned(),
                    first_seen: rfc3339(first),
                });
                // The transaction is dropped uncommitted: nothing changes.
            }
            nonces
                .insert((tenant, nonce), (expires, now_secs))
                .map_err(|e| self.db_err(e))?;
            let mut expiry = txn.open_table(EXPIRY).map_err(|e| self.db_err(e))?;
            expiry
                .insert((forget_after, tenant, nonce), ())
                .map_err(|e| self.db_err(e))?;
            prune(&mut nonces, &mut expiry, now_secs, self.prune_batch)
                .map_err(|e| self.db_err(e))?;
        }
        txn.commit().map_err(|e| self.db_err(e))?;
        db.close().map_err(|e| self.db_err(e))
    }

    pub(crate) fn check_only(&self, tenant: &str, nonce: &str) -> Result<(), ReplayError> {
        if !self.exists()? {
            return Ok(());
        }
        let _lock = self.lock()?;
        let db = self.open_db()?;
        let txn = db.begin_read().map_err(|e| self.db_err(e))?;
        let seen = match txn.open_table(NONCES) {
            Ok(t) => t
                .get((tenant, nonce))
                .map_err(|e| self.db_err(e))?
                .map(|g| g.value().1),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.db_err(e)),
        };
        drop(txn);
        db.close().map_err(|e| self.db_err(e))?;
        match seen {
            Some(first) => Err(ReplayError::Replayed {
                tenant: tenant.to_owned(),
                nonce: nonce.to_owned(),
                first_seen: rfc3339(first),
            }),
            None => Ok(()),
        }
    }

    /// Whether the database file exists, refusing an untrusted state directory.
    fn exists(&self) -> Result<bool, ReplayError> {
        match std::fs::symlink_metadata(&self.dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            _ => {}
        }
        fsperm::check_trusted(&self.dir, "state directory").map_err(|source| {
            ReplayError::Untrusted {
                path: self.dir.clone(),
                source,
            }
        })?;
        match std::fs::symlink_metadata(&self.db_path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(ReplayError::Open {
                path: self.db_path.clone(),
                source,
            }),
        }
    }

    /// Opens `path` read-write (creating it 0600), refusing symlinks, and checks the open
    /// file's owner and mode, so what is checked is what is used.
    fn open_private(&self, path: &Path, what: &'static str) -> Result<File, ReplayError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| ReplayError::Open {
                path: path.to_owned(),
                source,
            })?;
        let meta = file.metadata().map_err(|source| ReplayError::Open {
            path: path.to_owned(),
            source,
        })?;
        fsperm::check_metadata(&meta, path, what).map_err(|source| ReplayError::Untrusted {
            path: path.to_owned(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ReplayError::Open {
                path: path.to_owned(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        Ok(file)
    }

    /// Takes the exclusive lock, polling so that a stuck holder cannot hang the runner.
    fn lock(&self) -> Result<File, ReplayError> {
        let file = self.open_private(&self.lock_path, "replay lock file")?;
        let start = Instant::now();
        let mut pause = Duration::from_micros(500);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(source)) => {
                    return Err(ReplayError::Open {
                        path: self.lock_path.clone(),
                        source,
                    });
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

    /// Opens (or creates) the database. Call with the lock held.
    fn open_db(&self) -> Result<redb::Database, ReplayError> {
        let file = self.open_private(&self.db_path, "replay store")?;
        let backend = redb::backends::FileBackend::new(file).map_err(|e| self.db_err(e))?;
        redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(backend)
            .map_err(|e| self.db_err(e))
    }

    fn db_err(&self, e: impl Into<redb::Error>) -> ReplayError {
        ReplayError::Database {
            path: self.db_path.clone(),
            source: Box::new(e.into()),
        }
    }
}

/// Removes up to `batch` entries whose `forget_after` has passed.
fn prune(
    nonces: &mut redb::Table<(&str, &str), (u64, u64)>,
    expiry: &mut redb::Table<(u64, &str, &str), ()>,
    now: u64,
    batch: usize,
) -> Result<(), redb::StorageError> {
    let mut doomed: Vec<(u64, String, String)> = Vec::new();
    for item in expiry.range::<(u64, &str, &str)>(..(now, "", ""))? {
        let (key, _) = item?;
        let (t, tenant, nonce) = key.value();
        doomed.push((t, tenant.to_owned(), nonce.to_owned()));
        if doomed.len() >= batch {
            break;
        }
    }
    for (t, tenant, nonce) in &doomed {
        expiry.remove((*t, tenant.as_str(), nonce.as_str()))?;
        nonces.remove((tenant.as_str(), nonce.as_str()))?;
    }
    Ok(())
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
