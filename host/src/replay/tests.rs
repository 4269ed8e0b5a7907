//! Unit tests of the replay store: replays, restarts, expiry, pruning bounds, fail-closed
//! paths and threads racing.

use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const T0: &str = "2026-11-26T21:00:00Z";
const EXP: &str = "2026-11-26T21:05:00Z";

#[test]
fn same_nonce_twice_is_refused_other_pairs_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(&dir.path().join("state"));
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayedNonce);
    assert!(e.to_string().contains("2026-11-26T21:00:00Z"), "{e}");
    // Per tenant: another tenant's identical nonce is a different pair.
    store.record("globex", "n1", at(EXP), at(T0)).unwrap();
    store.record("acme", "n2", at(EXP), at(T0)).unwrap();
    assert_eq!(store.stats().unwrap().entries, 3);
    // The read-only check sees what was recorded and records nothing.
    assert_eq!(
        store.check_only("acme", "n1").unwrap_err().reason(),
        Reason::ReplayedNonce
    );
    store.check_only("acme", "n3").unwrap();
    store.check_only("acme", "n3").unwrap();
    assert_eq!(store.stats().unwrap().entries, 3);
}

#[test]
fn a_new_store_object_sees_old_records() {
    let dir = tempfile::tempdir().unwrap();
    ReplayStore::new(dir.path())
        .record("acme", "n1", at(EXP), at(T0))
        .unwrap();
    let again = ReplayStore::new(dir.path());
    assert!(again.record("acme", "n1", at(EXP), at(T0)).is_err());
}

#[test]
fn entries_are_forgotten_once_their_bucket_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    for i in 0..10 {
        store
            .record("acme", &format!("old{i}"), at(EXP), at(T0))
            .unwrap();
    }
    // forget_after = expiry + the largest skew = 21:15:00, in the bucket [21:10, 21:20).
    let edge = at(EXP) + chrono::TimeDelta::seconds(MAX_CLOCK_SKEW_SECS as i64);
    assert_eq!(edge, at("2026-11-26T21:15:00Z"));
    store
        .record("acme", "new1", at("2026-11-26T21:20:00Z"), edge)
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 11);
    assert!(store.check_only("acme", "old3").is_err());
    // Still there in the bucket's last second.
    store
        .record(
            "acme",
            "new2",
            at("2026-11-26T21:20:00Z"),
            at("2026-11-26T21:19:59Z"),
        )
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 12);
    // Gone once the bucket has passed; the newer ones stay.
    store
        .record(
            "acme",
            "new3",
            at("2026-11-26T21:20:00Z"),
            at("2026-11-26T21:20:00Z"),
        )
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 3);
    store.check_only("acme", "old3").unwrap();
    assert!(store.check_only("acme", "new1").is_err());
    assert!(store.check_only("acme", "new3").is_err());
}

#[test]
fn pruning_is_bounded_per_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ReplayStore::new(dir.path());
    store.prune_batch = 8;
    for i in 0..(8 + 3) {
        store
            .record("acme", &format!("o{i}"), at(EXP), at(T0))
            .unwrap();
    }
    let later = at("2026-11-27T00:00:00Z");
    store
        .record("acme", "x1", at("2026-11-27T00:05:00Z"), later)
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 3 + 1);
    store
        .record("acme", "x2", at("2026-11-27T00:05:00Z"), later)
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 2);
}

fn assert_unavailable(case: &str, e: ReplayError) {
    assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{case}: {e}");
    let r = e.to_refusal();
    assert!(
        r.message.contains(STORE_DIR) && r.message.contains("move it aside"),
        "{case}: {}",
        r.message
    );
}

/// A store with one entry, ("acme", "n1"), and that entry's path.
fn one_entry() -> (tempfile::TempDir, ReplayStore, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    let (_, bucket) = store.buckets().unwrap().pop().unwrap();
    let entry = bucket.join(entry_name("acme", "n1"));
    assert!(entry.is_file());
    (dir, store, entry)
}

#[test]
fn anything_the_store_did_not_write_fails_closed() {
    // In the store's directory: every operation lists it, so every operation refuses.
    type Damage = fn(&Path);
    let cases: [(&str, Damage); 3] = [
        ("a stray file", |root| {
            std::fs::write(root.join("stray"), b"x").unwrap()
        }),
        ("a bucket that is a file", |root| {
            std::fs::write(root.join(bucket_name(7)), b"x").unwrap()
        }),
        ("a bucket that is a symlink", |root| {
            std::os::unix::fs::symlink("/tmp", root.join(bucket_name(8))).unwrap()
        }),
    ];
    for (case, damage) in cases {
        let (_dir, store, _) = one_entry();
        damage(store.path());
        assert_unavailable(
            case,
            store.record("acme", "n2", at(EXP), at(T0)).unwrap_err(),
        );
        assert_unavailable(case, store.check_only("acme", "n1").unwrap_err());
        assert_unavailable(case, store.stats().unwrap_err());
    }

    // An entry that is not a file: its own lookups refuse, and so does any listing.
    let (_dir, store, entry) = one_entry();
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    let case = "an entry that is a directory";
    assert_unavailable(
        case,
        store.record("acme", "n1", at(EXP), at(T0)).unwrap_err(),
    );
    assert_unavailable(case, store.check_only("acme", "n1").unwrap_err());
    assert_unavailable(case, store.stats().unwrap_err());

    // A stray file in a bucket: refused by listings (stats, and pruning the bucket).
    let (_dir, store, entry) = one_entry();
    std::fs::write(entry.with_file_name("stray"), b"x").unwrap();
    let case = "a stray file in a bucket";
    assert_unavailable(case, store.stats().unwrap_err());
    let later = at("2026-11-27T00:00:00Z");
    assert_unavailable(case, store.record("acme", "n2", later, later).unwrap_err());
}

#[test]
fn an_entry_whose_content_was_lost_still_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    let (_, bucket) = store.buckets().unwrap().pop().unwrap();
    std::fs::write(bucket.join(entry_name("acme", "n1")), b"").unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayedNonce, "{e}");
    assert!(e.to_string().contains("unknown time"), "{e}");
}

#[test]
fn an_earlier_versions_store_stops_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    std::fs::write(dir.path().join(LEGACY_DB_FILE), b"redb").unwrap();
    for e in [
        store.record("acme", "n1", at(EXP), at(T0)).unwrap_err(),
        store.check_only("acme", "n1").unwrap_err(),
    ] {
        assert!(matches!(e, ReplayError::Legacy { .. }), "{e}");
        assert_eq!(e.reason(), Reason::ReplayStoreUnavailable);
    }
    assert!(!store.path().exists());
}

#[test]
fn entry_names_separate_tenant_from_nonce() {
    assert_ne!(entry_name("ab", "c"), entry_name("a", "bc"));
    assert!(is_entry_name(&entry_name("acme", "../../etc/passwd")));
}

#[test]
fn an_unusable_store_path_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    std::fs::write(store.path(), b"not a directory").unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{e}");

    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, store.path()).unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{e}");
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "followed the symlink"
    );
}

#[test]
fn a_loose_store_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = store.record("acme", "n2", at(EXP), at(T0)).unwrap_err();
    assert!(matches!(e, ReplayError::Untrusted { .. }), "{e}");
    assert!(e.to_refusal().message.contains("chmod go-w"));
}

#[test]
fn a_held_lock_times_out_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path()).with_lock_timeout(Duration::from_millis(50));
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    let holder = File::open(dir.path().join(LOCK_FILE)).unwrap();
    holder.lock().unwrap();
    let e = store.record("acme", "n2", at(EXP), at(T0)).unwrap_err();
    assert!(matches!(e, ReplayError::LockTimeout { .. }), "{e}");
    drop(holder);
    store.record("acme", "n2", at(EXP), at(T0)).unwrap();
}

#[test]
fn threads_racing_on_one_nonce_record_it_once() {
    // Exactly one wins, and every other thread is told "replayed", not "store
    // unavailable": the lock serializes them.
    let dir = tempfile::tempdir().unwrap();
    let results: Vec<Result<(), Reason>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    ReplayStore::new(dir.path())
                        .record("acme", "race", at(EXP), at(T0))
                        .map_err(|e| e.reason())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(Reason::ReplayedNonce))
            .count(),
        7,
        "{results:?}"
    );
}
