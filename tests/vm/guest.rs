//! Booting the VM test's guest under qemu (TCG) and reading its report lines from the
//! serial console. Nothing here knows what the scenarios mean; `mod.rs` decides.

use super::image::{bootstrap_hint, tool};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Where `scripts/bootstrap` puts the kernel (`EDGE_RUNNER_VM_CACHE` moves it).
fn kernel() -> PathBuf {
    let cache = std::env::var_os("EDGE_RUNNER_VM_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/edge-runner-vm"), PathBuf::from);
    cache.join("vmlinuz")
}

/// The guest gets this long to boot, run every scenario and power off (TCG on a loaded
/// two-core machine; an idle one needs well under a minute).
const GUEST_DEADLINE: Duration = Duration::from_secs(300);
/// One `EDGE-VM <scenario> k=v ... [json=...|text=...]` line.
#[derive(Debug)]
pub(super) struct Report {
    fields: BTreeMap<String, String>,
}

impl Report {
    pub(super) fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in {:?}", self.fields))
    }

    pub(super) fn json(&self) -> Value {
        let text = self.get("json");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("json= is not JSON ({e}): {text}"))
    }
}

pub(super) fn parse(line: &str) -> Option<(String, Report)> {
    let rest = line.trim_end_matches('\r').strip_prefix("EDGE-VM ")?;
    let (scenario, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut fields = BTreeMap::new();
    while !rest.is_empty() {
        let (item, tail) = if rest.starts_with("json=") || rest.starts_with("text=") {
            (rest, "")
        } else {
            rest.split_once(' ').unwrap_or((rest, ""))
        };
        if let Some((k, v)) = item.split_once('=') {
            fields.insert(k.to_owned(), v.to_owned());
        }
        rest = tail;
    }
    Some((scenario.to_owned(), Report { fields }))
}

/// Boots the guest; returns the whole console output once it powered off.
pub(super) fn boot(initrd: &Path) -> String {
    let qemu = tool("qemu-system-x86_64");
    let kernel = kernel();
    assert!(
        kernel.is_file(),
        "{}",
        bootstrap_hint(&format!("the guest kernel at {}", kernel.display()))
    );
    let mut child = Command::new(qemu)
        .args(["-accel", "tcg", "-m", "1024", "-smp", "1"])
        .args(["-nodefaults", "-no-reboot", "-display", "none"])
        .args(["-serial", "stdio"])
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(initrd)
        // AppArmor is the kernel's default LSM; the parameters make it explicit. `quiet`
        // keeps the kernel's messages (the audit lines) from splitting the report lines;
        // the guest reads them from dmesg instead.
        .args([
            "-append",
            "console=ttyS0 panic=-1 quiet apparmor=1 security=apparmor",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            let line = String::from_utf8_lossy(&line).into_owned();
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > GUEST_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let console = reader.join().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    match status {
        None => panic!(
            "the guest did not power off within {GUEST_DEADLINE:?}; console so far:\n{console}"
        ),
        Some(s) => assert!(
            s.success(),
            "qemu failed ({s}): {stderr}\nconsole:\n{console}"
        ),
    }
    eprintln!(
        "vm: guest booted, ran and powered off in {:?}",
        started.elapsed()
    );
    console
}

#[test]
fn report_lines_parse_with_a_trailing_free_text_field() {
    let (s, r) = parse("EDGE-VM check exit=0 json={\"a\": \"b c\"}\r").unwrap();
    assert_eq!(s, "check");
    assert_eq!(r.get("exit"), "0");
    assert_eq!(r.json()["a"], "b c");
    assert!(parse("[    1.0] EDGE-VM x").is_none());
}
