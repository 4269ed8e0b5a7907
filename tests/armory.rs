//! The armory as an attacker with write access to the store would try it: tampered,
//! truncated, swapped and symlinked blobs, hostile digest strings, loose permissions; and
//! as operators would stress it: concurrent writers and a `kill -9` in the middle of `add`.
//! Plus `edge-runner verify --armory` end to end.

use crate::task_kit::{self, BIN, Kit};
use chrono::Utc;
use edge_runner::armory::{Armory, ArmoryError};
use edge_runner::digest::Digest;
use edge_runner::reason::Reason;
use edge_runner::reason::Refuse as _;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    scratch: PathBuf,
    armory: Armory,
}

fn fixture() -> Fixture {
    let dir = task_kit::tempdir();
    let root = dir.path().join("armory");
    let scratch = dir.path().join("state/tools");
    let armory = Armory::create(&root).unwrap();
    Fixture {
        _dir: dir,
        root,
        scratch,
        armory,
    }
}

fn script(n: u32) -> Vec<u8> {
    format!("#!/bin/sh\necho tool-{n:04}\n").into_bytes()
}

impl Fixture {
    /// Adds and authorizes `bytes`.
    fn authorized(&self, bytes: &[u8]) -> Digest {
        let a = self
            .armory
            .add(&mut &bytes[..], "t", "alice", Utc::now())
            .unwrap();
        self.armory.authorize(&a.digest, "bob", Utc::now()).unwrap();
        a.digest
    }
    fn blob(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }
    fn resolve_err(&self, d: &Digest) -> ArmoryError {
        match self.armory.resolve(d, &self.scratch) {
            Ok(t) => panic!("resolved {} despite the attack", t.digest()),
            Err(e) => e,
        }
    }
    /// Rewrites a blob in place (blobs are 0444; the attacker owns the store).
    fn tamper(&self, d: &Digest, f: impl FnOnce(&mut Vec<u8>)) {
        let p = self.blob(d);
        let mut bytes = std::fs::read(&p).unwrap();
        f(&mut bytes);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&p, &bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    fn no_private_copies_left(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.scratch)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "private copies left behind: {left:?}");
    }
}

#[test]
fn a_blob_with_one_flipped_bit_is_a_mismatch() {
    let f = fixture();
    let d = f.authorized(&script(1));
    f.tamper(&d, |b| *b.last_mut().unwrap() ^= 0x01);
    let e = f.resolve_err(&d);
    assert_eq!(e.refusal_reason(), Some(Reason::DigestMismatch), "{e}");
    f.no_private_copies_left();
    let report = f.armory.verify().unwrap();
    assert!(report.corrupt());
}

#[test]
fn a_truncated_blob_is_a_mismatch() {
    let f = fixture();
    let d = f.authorized(&script(2));
    f.tamper(&d, |b| b.truncate(b.len() - 3));
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::DigestMismatch)
    );
    // Same size, different bytes (the size check alone would not catch it).
    let d2 = f.authorized(&script(3));
    f.tamper(&d2, |b| b[11] = b'E');
    assert_eq!(
        f.resolve_err(&d2).refusal_reason(),
        Some(Reason::DigestMismatch)
    );
    f.no_private_copies_left();
}

#[test]
fn a_blob_replaced_by_a_symlink_is_refused_without_following_it() {
    let f = fixture();
    let good = f.authorized(&script(4));
    let other = f.authorized(&script(5));
    // Point good's name at other's (authorized!) bytes, and at a file outside the store.
    let p = f.blob(&good);
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink(f.blob(&other), &p).unwrap();
    let e = f.resolve_err(&good);
    assert_eq!(e.refusal_reason(), Some(Reason::ArmoryUntrusted), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    std::fs::remove_file(&p).unwrap();
    std::os::unix::fs::symlink("/bin/sh", &p).unwrap();
    assert_eq!(
        f.resolve_err(&good).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
    assert!(f.armory.verify().unwrap().corrupt());
    f.no_private_copies_left();
}

#[test]
fn two_authorized_blobs_swapped_are_both_mismatches() {
    let f = fixture();
    let a = f.authorized(&script(6));
    let b = f.authorized(&script(7));
    let tmp = f.root.join("swap");
    std::fs::rename(f.blob(&a), &tmp).unwrap();
    std::fs::rename(f.blob(&b), f.blob(&a)).unwrap();
    std::fs::rename(&tmp, f.blob(&b)).unwrap();
    for d in [&a, &b] {
        assert_eq!(
            f.resolve_err(d).refusal_reason(),
            Some(Reason::DigestMismatch)
        );
    }
    assert_eq!(f.armory.verify().unwrap().problems.len(), 2);
}

#[test]
fn special_files_in_place_of_blobs_are_refused_without_hanging() {
    let f = fixture();
    let d = f.authorized(&script(8));
    let p = f.blob(&d);
    std::fs::remove_file(&p).unwrap();
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
}

#[test]
fn a_forged_index_entry_for_non_executable_bytes_is_refused() {
    let f = fixture();
    // The attacker writes a blob and an index entry by hand, bypassing `add`.
    let data = b"MZ not a tool".to_vec();
    let d = Digest::of(&data);
    std::fs::write(f.blob(&d), &data).unwrap();
    std::fs::set_permissions(f.blob(&d), std::fs::Permissions::from_mode(0o444)).unwrap();
    let index = serde_json::json!({"version": 1, "tools": {d.as_str(): {
        "name": "x", "size": data.len(), "added": {"by": "m", "at": "2026-01-01T00:00:00Z"},
        "authorized": {"by": "m", "at": "2026-01-01T00:00:00Z"}, "revoked": null}}});
    std::fs::write(
        f.root.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(
        f.root.join("index.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ToolNotExecutable)
    );
    f.no_private_copies_left();
}

#[test]
fn a_corrupt_or_duplicated_index_is_untrusted() {
    let f = fixture();
    let d = f.authorized(&script(9));
    let index = f.root.join("index.json");
    let text = std::fs::read_to_string(&index).unwrap();
    // A duplicate member that would flip the state for a last-wins parser.
    let dup = text.replacen(
        "\"revoked\": null",
        "\"revoked\": null, \"revoked\": null",
        1,
    );
    assert_ne!(dup, text);
    std::fs::write(&index, dup).unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
    std::fs::write(&index, &text[..text.len() / 2]).unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
    // An index that is a symlink to a forged one elsewhere.
    let forged = f.root.join("forged.json");
    std::fs::write(&forged, &text).unwrap();
    std::fs::remove_file(&index).unwrap();
    std::os::unix::fs::symlink(&forged, &index).unwrap();
    assert_eq!(
        f.resolve_err(&d).refusal_reason(),
        Some(Reason::ArmoryUntrusted)
    );
}

#[test]
fn loose_permissions_are_refused_with_the_fix() {
    let f = fixture();
    let d = f.authorized(&script(10));
    let mode =
        |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    for (path, loose, tight) in [
        (f.root.clone(), 0o777, 0o700),
        (f.root.join("blobs/sha256"), 0o770, 0o700),
        (f.root.join("index.json"), 0o622, 0o600),
        (f.blob(&d), 0o666, 0o444),
    ] {
        mode(&path, loose);
        let e = Armory::open(&f.root)
            .and_then(|a| a.resolve(&d, &f.scratch))
            .unwrap_err();
        assert_eq!(
            e.refusal_reason(),
            Some(Reason::ArmoryUntrusted),
            "{}",
            path.display()
        );
        let message = e.to_refusal().message;
        assert!(message.contains("chmod go-w"), "{message}");
        // An armory opened before the permissions were loosened notices too.
        let e = f.armory.resolve(&d, &f.scratch).unwrap_err();
        assert_eq!(
            e.refusal_reason(),
            Some(Reason::ArmoryUntrusted),
            "{}",
            path.display()
        );
        mode(&path, tight);
    }
    f.armory.resolve(&d, &f.scratch).unwrap();
}

#[test]
fn files_owned_by_another_user_are_refused() {
    if !task_kit::is_root() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root; this test needs it"
        );
        eprintln!("SKIPPED files_owned_by_another_user_are_refused: needs root to chown");
        return;
    }
    let f = fixture();
    let d = f.authorized(&script(11));
    let other = Some(nix::unistd::Uid::from_raw(4242));
    for path in [f.root.join("index.json"), f.blob(&d), f.root.clone()] {
        nix::unistd::chown(&path, other, None).unwrap();
        let e = Armory::open(&f.root)
            .and_then(|a| a.resolve(&d, &f.scratch))
            .unwrap_err();
        assert_eq!(
            e.refusal_reason(),
            Some(Reason::ArmoryUntrusted),
            "{}",
            path.display()
        );
        assert!(e.to_refusal().message.contains("chown"));
        nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    }
}

#[test]
fn hostile_digest_strings_never_reach_a_path() {
    let f = fixture();
    let d = f.authorized(&script(12));
    let hex = d.hex().to_owned();
    let kit = Kit::new();
    for s in [
        format!("sha256:../../../{}", &hex[9..]),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}00"),
        format!("sha512:{hex}"),
        format!("md5:{}", &hex[..32]),
        hex.clone(),
        format!("sha256:{hex}/"),
        format!("sha256:{}%2e", &hex[..61]),
    ] {
        assert!(Digest::parse(&s).is_err(), "{s}");
        // Through a signed manifest: digest_invalid before the armory is touched.
        let e = edge_runner::manifest::decode(
            &kit.verified(&task_kit::manifest(&s, &task_kit::nonce())),
            &task_kit::policy(),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), Reason::DigestInvalid, "{s}");
        // Through the CLI.
        let out = Command::new(BIN)
            .args([
                "--config",
                "/dev/null",
                "armory",
                "authorize",
                &s,
                "--armory",
            ])
            .arg(&f.root)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{s}");
    }
}

#[test]
fn the_private_copy_is_what_was_hashed_whatever_happens_to_the_store_later() {
    let f = fixture();
    let bytes = script(13);
    let d = f.authorized(&bytes);
    let tool = f.armory.resolve(&d, &f.scratch).unwrap();
    // The attacker rewrites the blob after resolution: the copy is unaffected.
    f.tamper(&d, |b| b[12] = b'X');
    let mut seen = Vec::new();
    let mut file = tool.file();
    file.read_to_end(&mut seen).unwrap();
    assert_eq!(seen, bytes);
    assert_eq!(std::fs::read(tool.path()).unwrap(), bytes);
    assert_eq!(Digest::of(&seen).as_str(), tool.digest());
    // A read-only descriptor on a sealed (0555) copy.
    let mode = std::fs::metadata(tool.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o555);
    let mut fd = tool.file();
    assert!(fd.write_all(b"x").is_err());
}

#[test]
fn concurrent_adds_and_authorizations_lose_nothing() {
    let f = fixture();
    let n = 8;
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = f.root.parent().unwrap().join(format!("tool{i}"));
            std::fs::write(&p, script(100 + i)).unwrap();
            p
        })
        .collect();
    let run = |args: Vec<std::ffi::OsString>| {
        Command::new(BIN)
            .args(["--config", "/dev/null", "armory", "--armory"])
            .arg(&f.root)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let adds: Vec<_> = files
        .iter()
        .map(|p| run(vec!["add".into(), p.into()]))
        .collect();
    let digests: Vec<String> = adds
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        })
        .collect();
    let auths: Vec<_> = digests
        .iter()
        .map(|d| {
            run(vec![
                "authorize".into(),
                d.into(),
                "--by".into(),
                "ops".into(),
            ])
        })
        .collect();
    for c in auths {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = f.armory.list().unwrap();
    assert_eq!(list.len(), n as usize);
    assert!(list.iter().all(|(_, e)| e.runnable()), "{list:?}");
    assert!(!f.armory.verify().unwrap().corrupt());
}

#[test]
fn kill_9_in_the_middle_of_add_leaves_the_store_consistent() {
    let f = fixture();
    let before = f.authorized(&script(200));
    let tmp = f.root.join("tmp");
    // Deterministic: the add reads from a pipe, so it is mid-copy for as long as we like.
    let mut child = Command::new(BIN)
        .args([
            "--config",
            "/dev/null",
            "armory",
            "add",
            "-",
            "--name",
            "big",
            "--armory",
        ])
        .arg(&f.root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"#!/bin/sh\n").unwrap();
    stdin.write_all(&vec![b'#'; 1 << 20]).unwrap();
    let staged = wait_until(|| {
        std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
    });
    assert!(staged, "the add never started staging");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    drop(stdin);
    assert_consistent(&f, std::slice::from_ref(&before));

    // Kills at arbitrary moments of a complete add (copy, rename, index write).
    let big = f.root.parent().unwrap().join("big");
    let mut content = b"#!/bin/sh\n".to_vec();
    content.resize(8 << 20, b'#');
    std::fs::write(&big, &content).unwrap();
    for delay_ms in [0u64, 2, 5, 10, 20, 40] {
        let mut c = Command::new(BIN)
            .args(["--config", "/dev/null", "armory", "add", "--armory"])
            .arg(&f.root)
            .arg(&big)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        c.wait().unwrap();
        assert_consistent(&f, std::slice::from_ref(&before));
    }
    // And the next add completes, cleaning the staging area.
    let a = f
        .armory
        .add(&mut &content[..], "big", "alice", Utc::now())
        .unwrap();
    assert_eq!(a.digest, Digest::of(&content));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    assert!(!f.armory.verify().unwrap().corrupt());
}

fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

/// The index parses, every indexed blob is sound, `must_resolve` still resolve, and any
/// blob the index does not name is at worst an orphan.
fn assert_consistent(f: &Fixture, must_resolve: &[Digest]) {
    let report = f.armory.verify().unwrap();
    assert!(!report.corrupt(), "{report:?}");
    for d in must_resolve {
        f.armory.resolve(d, &f.scratch).unwrap();
    }
    let out = Command::new(BIN)
        .args(["--config", "/dev/null", "armory", "verify", "--armory"])
        .arg(&f.root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `edge-runner verify --armory`: the whole decision, without consuming the nonce.
#[test]
fn verify_with_an_armory_decides_without_consuming_the_nonce() {
    let f = fixture();
    let dir = f.root.parent().unwrap().to_owned();
    let kit = Kit::new();
    let keys = dir.join("keys.json");
    std::fs::write(
        &keys,
        serde_json::to_vec(&serde_json::json!({"keys": [kit.key.public_jwk()]})).unwrap(),
    )
    .unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        // The decision includes the sandbox plan, as for `run --dry-run`: this kernel may
        // have no AppArmor.
        format!(
            "state_dir = \"{}\"\n[sandbox]\napparmor = \"if-available\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let pending = f
        .armory
        .add(&mut &script(300)[..], "p", "alice", Utc::now())
        .unwrap()
        .digest;
    let good = f.authorized(&script(301));
    let revoked = f.authorized(&script(302));
    f.armory.revoke(&revoked, "carol", Utc::now()).unwrap();
    let verify = |digest: &str, nonce: &str| {
        let task = dir.join("task.jws");
        let compact = kit
            .key
            .sign_compact(&serde_json::to_vec(&task_kit::manifest(digest, nonce)).unwrap());
        std::fs::write(&task, compact).unwrap();
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .args(["verify", "--keys"])
            .arg(&keys)
            .arg("--armory")
            .arg(&f.root)
            .arg(&task)
            .output()
            .unwrap()
    };
    let nonce = task_kit::nonce();
    for _ in 0..2 {
        let out = verify(good.as_str(), &nonce);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decision["decision"], "accept");
        assert_eq!(decision["tool"]["digest"], good.as_str());
    }
    // Nothing was recorded, and no private copy outlived the command.
    let state = dir.join("state");
    assert!(!state.join(edge_runner::replay::STORE_DIR).exists());
    assert_eq!(std::fs::read_dir(state.join("tools")).unwrap().count(), 0);
    for (digest, code) in [
        (pending.as_str().to_owned(), "digest_unauthorized"),
        (revoked.as_str().to_owned(), "digest_unauthorized"),
        (Digest::of(b"absent").as_str().to_owned(), "digest_unknown"),
        (format!("sha256:{}", "A".repeat(64)), "digest_invalid"),
    ] {
        let out = verify(&digest, &task_kit::nonce());
        assert_eq!(out.status.code(), Some(3));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("error[{code}]")), "{err}");
    }
    // A nonce the runner already recorded is reported as a replay.
    let checked = kit.checked(&task_kit::manifest(good.as_str(), &nonce));
    edge_runner::replay::ReplayStore::new(&state)
        .check_and_record(&checked, Utc::now())
        .unwrap();
    let out = verify(good.as_str(), &nonce);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[replayed_nonce]"));
}
