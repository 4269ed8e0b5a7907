//! Unit tests of the armory: format checks, labels, and the add/authorize/resolve cycle.
//! The attacker's-eye tests (tampered blobs, swapped files, processes racing, kill -9)
//! live in the integration suite, `tests/armory.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::digest::Digest;
use crate::reason::Reason;
use chrono::Utc;
use std::io::Read as _;

const SCRIPT: &[u8] = b"#!/bin/sh\necho hello\n";

fn fresh() -> (tempfile::TempDir, Armory, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let armory = Armory::create(&dir.path().join("armory")).unwrap();
    let scratch = dir.path().join("state").join("tools");
    (dir, armory, scratch)
}

#[test]
fn executables_are_elf_or_absolute_shebang() {
    assert!(check_executable(b"\x7fELF\x02\x01\x01", "t").is_ok());
    assert!(check_executable(SCRIPT, "t").is_ok());
    assert!(check_executable(b"#! /usr/bin/env python3\n", "t").is_ok());
    assert!(check_executable(b"#!/bin/true", "t").is_ok()); // the whole file
    for bad in [
        &b""[..],
        b"MZ\x90\x00",
        b"echo hi\n",
        b"#!sh\n",
        b"#!\n",
        b"#!  \n",
        b"\xef\xbb\xbf#!/bin/sh\n",
    ] {
        assert!(check_executable(bad, "t").is_err(), "{bad:?}");
    }
    let mut long = b"#!/bin/".to_vec();
    long.resize(MAX_SHEBANG_LEN, b'a');
    assert!(check_executable(&long, "t").is_err());
}

#[test]
fn labels_are_bounded_and_printable() {
    assert!(check_label("--name", "scanner v2").is_ok());
    assert!(check_label("--name", "").is_err());
    assert!(check_label("--name", &"a".repeat(129)).is_err());
    assert!(check_label("--by", "alice\nbob").is_err());
    assert!(check_label("--by", "alice\u{1b}[2J").is_err());
}

#[test]
fn add_authorize_resolve_round_trip() {
    let (_d, armory, scratch) = fresh();
    let added = armory
        .add(&mut &SCRIPT[..], "hello", "alice", Utc::now())
        .unwrap();
    assert!(added.new);
    assert_eq!(added.digest, Digest::of(SCRIPT));
    // Pending: refused as unauthorized.
    let e = armory.resolve(&added.digest, &scratch).unwrap_err();
    assert_eq!(e.refusal_reason(), Some(Reason::DigestUnauthorized));
    armory.authorize(&added.digest, "bob", Utc::now()).unwrap();
    let tool = armory.resolve(&added.digest, &scratch).unwrap();
    assert_eq!(tool.digest(), added.digest.as_str());
    assert_eq!(tool.size(), SCRIPT.len() as u64);
    assert_eq!(tool.name(), "hello");
    let mut bytes = Vec::new();
    tool.file().read_to_end(&mut bytes).unwrap();
    assert_eq!(bytes, SCRIPT);
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(tool.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555);
    let dir_mode = std::fs::metadata(tool.path().parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(dir_mode, 0o700);
    assert!(tool.path().starts_with(&scratch));
    // The copy is not the blob.
    assert_ne!(tool.path(), armory.layout.blob(&added.digest));
    let path = tool.path().to_owned();
    drop(tool);
    assert!(!path.exists() && !path.parent().unwrap().exists());
    // Revoked: refused, and authorization cannot come back.
    armory.revoke(&added.digest, "carol", Utc::now()).unwrap();
    let e = armory.resolve(&added.digest, &scratch).unwrap_err();
    assert_eq!(e.refusal_reason(), Some(Reason::DigestUnauthorized));
    assert!(e.to_string().contains("revoked"), "{e}");
    assert!(matches!(
        armory.authorize(&added.digest, "bob", Utc::now()),
        Err(ArmoryError::Revoked { .. })
    ));
}

#[test]
fn adding_twice_keeps_the_state() {
    let (_d, armory, _s) = fresh();
    let a = armory
        .add(&mut &SCRIPT[..], "one", "alice", Utc::now())
        .unwrap();
    armory.authorize(&a.digest, "bob", Utc::now()).unwrap();
    let b = armory
        .add(&mut &SCRIPT[..], "two", "mallory", Utc::now())
        .unwrap();
    assert!(!b.new);
    let list = armory.list().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1.name, "one");
    assert!(list[0].1.runnable());
}

#[test]
fn non_executables_are_not_added() {
    let (_d, armory, _s) = fresh();
    let e = armory
        .add(&mut &b"just data"[..], "data", "alice", Utc::now())
        .unwrap_err();
    assert!(matches!(e, ArmoryError::NotExecutable { .. }), "{e}");
    assert!(armory.list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(armory.layout.blobs()).unwrap().count(), 0);
}

#[test]
fn unknown_digests_are_unknown() {
    let (_d, armory, scratch) = fresh();
    let e = armory
        .resolve(&Digest::of(b"nothing"), &scratch)
        .unwrap_err();
    assert_eq!(e.refusal_reason(), Some(Reason::DigestUnknown));
}

#[test]
fn stale_private_copies_are_cleaned_live_ones_are_not() {
    let (_d, armory, scratch) = fresh();
    let a = armory
        .add(&mut &SCRIPT[..], "hello", "alice", Utc::now())
        .unwrap();
    armory.authorize(&a.digest, "bob", Utc::now()).unwrap();
    let live = armory.resolve(&a.digest, &scratch).unwrap();
    // A directory left by a runner that died: unlocked.
    let stale = scratch.join("00000000-dead");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("tool"), b"x").unwrap();
    let other = armory.resolve(&a.digest, &scratch).unwrap();
    assert!(!stale.exists());
    assert!(live.path().exists() && other.path().exists());
}

#[test]
fn the_interpreter_of_a_script_is_its_first_word() {
    use std::path::Path;
    assert_eq!(
        super::interpreter(b"#!/bin/sh\necho").as_deref(),
        Some(Path::new("/bin/sh"))
    );
    assert_eq!(
        super::interpreter(b"#! /usr/bin/env python3\n").as_deref(),
        Some(Path::new("/usr/bin/env"))
    );
    assert_eq!(super::interpreter(b"\x7fELF..."), None);
}
