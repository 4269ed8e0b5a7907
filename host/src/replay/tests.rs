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
fn entries_are_forgotten_once_no_manifest_can_carry_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    for i in 0..10 {
        store
            .record("acme", &format!("old{i}"), at(EXP), at(T0))
            .unwrap();
    }
    // Still remembered at expiry + the largest skew.
    let edge = at(EXP) + chrono::TimeDelta::seconds(MAX_CLOCK_SKEW_SECS as i64);
    store
        .record("acme", "new1", at("2026-11-26T21:20:00Z"), edge)
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 11);
    assert!(store.check_only("acme", "old3").is_err());
    // One second later they go.
    let later = edge + chrono::TimeDelta::seconds(1);
    store
        .record("acme", "new2", at("2026-11-26T21:20:00Z"), later)
        .unwrap();
    assert_eq!(store.stats().unwrap().entries, 2);
    store.check_only("acme", "old3").unwrap();
    assert!(store.check_only("acme", "new1").is_err());
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

#[test]
fn a_corrupt_store_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    std::fs::write(store.path(), vec![0x5a; 64 * 1024]).unwrap();
    for e in [
        store.record("acme", "n2", at(EXP), at(T0)).unwrap_err(),
        store.check_only("acme", "n1").unwrap_err(),
    ] {
        assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{e}");
        let r = e.to_refusal();
        assert!(
            r.message.contains(DB_FILE) && r.message.contains("move it aside"),
            "{}",
            r.message
        );
    }
}

#[test]
fn an_unusable_store_path_fails_closed() {
    // Root ignores mode bits, so "unwritable" is made with a directory and a symlink.
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    std::fs::create_dir(store.path()).unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{e}");

    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    let elsewhere = dir.path().join("elsewhere.redb");
    std::os::unix::fs::symlink(&elsewhere, store.path()).unwrap();
    let e = store.record("acme", "n1", at(EXP), at(T0)).unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayStoreUnavailable, "{e}");
    assert!(!elsewhere.exists(), "followed the symlink");
}

#[test]
fn a_loose_store_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::new(dir.path());
    store.record("acme", "n1", at(EXP), at(T0)).unwrap();
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o666)).unwrap();
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
    // unavailable": the lock serializes them instead of letting redb refuse them.
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
