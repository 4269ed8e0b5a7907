//! Replay protection across processes: the same nonce in one process, after a restart (a
//! new process over the same state directory), and from several runner processes started
//! together (exactly one wins). Child processes are this test binary re-run on the ignored
//! helper `replay::replay_child`, which records one task and prints the outcome.

use crate::task_kit::{self, Kit};
use edge_runner::reason::Reason;
use edge_runner::reason::Refuse as _;
use edge_runner::replay::ReplayStore;
use std::io::{BufRead as _, BufReader, Write as _};

use std::path::Path;
use std::process::{Child, Command, Stdio};

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The helper run in child processes. It prepares everything (plugins, verification,
/// decoding), prints READY, waits for one line on stdin (the start signal), then calls
/// `check_and_record` once and prints `RESULT <code>`.
#[test]
#[ignore = "helper run by the replay tests in child processes"]
fn replay_child() {
    let state = std::env::var("ER_TEST_STATE").unwrap();
    let nonce = std::env::var("ER_TEST_NONCE").unwrap();
    let kit = Kit::new();
    let checked = kit.checked(&task_kit::manifest(DIGEST, &nonce));
    let store = ReplayStore::new(Path::new(&state));
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let result = match store.check_and_record(&checked, chrono::Utc::now()) {
        Ok(()) => "ok".to_owned(),
        Err(e) => e.reason().code().to_owned(),
    };
    println!("RESULT {result}");
}

/// A child process and the lines it prints, read by a thread so that waits can time out.
struct Racer {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Drop for Racer {
    fn drop(&mut self) {
        // A child that is still running after a failed wait must not outlive the test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(state: &Path, nonce: &str) -> Racer {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "replay::replay_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ER_TEST_STATE", state)
        .env("ER_TEST_NONCE", nonce)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Racer { child, lines }
}

fn wait_for(r: &mut Racer, marker: &str) -> String {
    loop {
        let line = r
            .lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no {marker} from the child: {e}"));
        // libtest prints "test replay::replay_child ... " on the same line.
        if let Some(at) = line.find(marker) {
            return line[at + marker.len()..].trim().to_owned();
        }
    }
}

/// Starts `n` children on one nonce, releases them together, returns their results.
fn race(state: &Path, nonce: &str, n: usize) -> Vec<String> {
    let mut racers: Vec<Racer> = (0..n).map(|_| spawn(state, nonce)).collect();
    for r in &mut racers {
        wait_for(r, "READY");
    }
    // Release all of them as close together as a parent can.
    for r in &mut racers {
        r.child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    let mut results = Vec::new();
    for mut r in racers {
        results.push(wait_for(&mut r, "RESULT"));
        assert!(r.child.wait().unwrap().success());
    }
    results
}

#[test]
fn same_nonce_twice_in_one_process_is_replayed() {
    let dir = task_kit::tempdir();
    let kit = Kit::new();
    let m = task_kit::manifest(DIGEST, &task_kit::nonce());
    let store = ReplayStore::new(dir.path());
    store
        .check_and_record(&kit.checked(&m), chrono::Utc::now())
        .unwrap();
    // The same signed task decoded again, as a replayed delivery would be.
    let e = store
        .check_and_record(&kit.checked(&m), chrono::Utc::now())
        .unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayedNonce);
    assert_eq!(e.to_refusal().reason.code(), "replayed_nonce");
}

#[test]
fn a_nonce_recorded_before_a_restart_is_replayed_after_it() {
    let dir = task_kit::tempdir();
    let nonce = task_kit::nonce();
    // The "runner before the restart" is another process.
    assert_eq!(race(dir.path(), &nonce, 1), ["ok"]);
    let kit = Kit::new();
    let checked = kit.checked(&task_kit::manifest(DIGEST, &nonce));
    let store = ReplayStore::new(dir.path());
    // verify's read-only check sees it too.
    assert_eq!(
        store.check(&checked).unwrap_err().reason(),
        Reason::ReplayedNonce
    );
    let e = store
        .check_and_record(&checked, chrono::Utc::now())
        .unwrap_err();
    assert_eq!(e.reason(), Reason::ReplayedNonce);
}

#[test]
fn processes_racing_on_one_nonce_exactly_one_wins() {
    let dir = task_kit::tempdir();
    for round in 0..3 {
        let results = race(dir.path(), &task_kit::nonce(), 6);
        let wins = results.iter().filter(|r| *r == "ok").count();
        let replays = results.iter().filter(|r| *r == "replayed_nonce").count();
        assert_eq!((wins, replays), (1, 5), "round {round}: {results:?}");
    }
    assert_eq!(ReplayStore::new(dir.path()).stats().unwrap().entries, 3);
}
