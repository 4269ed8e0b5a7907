//! Issue 12 item 1: AppArmor enforced for real. This host's kernel has no AppArmor, so the
//! test boots Debian's kernel (which has it built in and enabled by default) under
//! `qemu-system-x86_64 -accel tcg` with an initramfs built here: busybox-static, the
//! edge-runner binary this test run built (with the shared libraries `ldd` names), the
//! host's `apparmor_parser`, runsc, the AppArmor abstractions, a key set, an armory and
//! tasks signed on the host with the same binary. The guest (`tests/fixtures/vm/init`)
//! installs the shipped profiles with `edge-runner apparmor install` and prints one
//! `EDGE-VM <scenario> ...` line per result on the serial console; this module decides.
//!
//! What it proves, inside a real kernel with AppArmor enforcing:
//! - `sandbox check` reports AppArmor enabled with both profiles loaded and the policy
//!   enforced;
//! - a native task whose tool reads `/etc/edge-runner/README` (world-readable, not masked
//!   by the mounts, denied by `edge-runner-tool`) gets EACCES, the tool sees its own label
//!   `edge-runner-tool (enforce)`, the kernel logs the denial for that profile, and the
//!   event says `enforced:edge-runner-tool`; the same task with `--apparmor off` reads the
//!   file and runs unconfined;
//! - with `apparmor = "required"` and the profiles not loaded, the task is refused before
//!   launch (`apparmor_unavailable`);
//! - a runsc task runs with every runsc process under `edge-runner-runsc (enforce)`.
//!
//! The test needs qemu, busybox-static, apparmor_parser, runsc and the extracted kernel
//! (`scripts/bootstrap` installs them); without them it fails and says so, never skips.
//! The base initramfs (binaries and libraries) is cached under the target directory,
//! keyed by its inputs; the world (keys, armory, tasks) is fresh each run and appended as
//! a second archive, which the kernel unpacks over the first.

mod cpio;
mod guest;
mod image;

use guest::Report;
use image::{BaseInputs, CANARY, World};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

#[test]
fn apparmor_is_enforced_in_a_real_kernel() {
    let started = Instant::now();
    let inputs = BaseInputs::find();
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("edge-vm");
    let base = inputs.archive(&cache);
    let world = World::new();
    let mut initrd = std::fs::read(&base).unwrap();
    // A second archive after the first: the kernel unpacks both into the same rootfs.
    initrd.extend_from_slice(&world.archive());
    let image = world.path("initrd.cpio");
    std::fs::write(&image, &initrd).unwrap();
    eprintln!(
        "vm: initramfs {} MiB ready in {:?}",
        initrd.len() >> 20,
        started.elapsed()
    );

    let console = guest::boot(&image);
    let mut reports: BTreeMap<String, Report> = BTreeMap::new();
    for line in console.lines() {
        if let Some((scenario, report)) = guest::parse(line) {
            reports.insert(scenario, report);
        }
    }
    let report = |name: &str| {
        reports.get(name).unwrap_or_else(|| {
            panic!("the guest printed no EDGE-VM {name} line; console:\n{console}")
        })
    };
    let context = |what: &str, v: &Value| format!("{what}: {v:#}\nconsole:\n{console}");

    // The kernel: AppArmor is a running LSM and initialized at boot.
    let b = report("boot");
    assert!(b.get("lsm").split(',').any(|l| l == "apparmor"), "{b:?}");
    assert_eq!(b.get("enabled"), "Y", "{b:?}");
    assert_ne!(b.get("initialized"), "0", "{b:?}");

    // (c) Required, not loaded: refused before launch, with the stable code.
    let c = report("unloaded-required");
    assert_eq!(c.get("exit"), "3", "{c:?}\n{console}");
    assert_eq!(c.get("reason"), "error[apparmor_unavailable]", "{c:?}");
    assert_eq!(c.get("launched"), "0", "{c:?}");
    let e = report("unloaded-required-event").json();
    assert_eq!(
        e["data"]["reason"],
        "apparmor_unavailable",
        "{}",
        context("event", &e)
    );
    assert_eq!(e["data"]["status"], "denied", "{}", context("event", &e));
    assert!(
        e["data"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not loaded")),
        "{}",
        context("event", &e)
    );

    // The operator's install path loads both profiles in enforce mode.
    let i = report("install");
    assert_eq!(i.get("exit"), "0", "{i:?}");
    assert_eq!(i.get("profiles"), "2", "{i:?}");
    let rp = report("runsc-profile");
    assert_eq!(rp.get("exit"), "0", "{rp:?}");
    let profiles = report("profiles").get("text").to_owned();
    for p in ["edge-runner-tool (enforce)", "edge-runner-runsc (enforce)"] {
        assert!(profiles.contains(p), "{profiles}");
    }

    // (a) sandbox check sees AppArmor and both profiles, and the policy enforced.
    let a = report("check");
    let check = a.json();
    assert_eq!(a.get("exit"), "0", "{}", context("check", &check));
    let apparmor = check["apparmor"].as_str().unwrap_or_default();
    assert!(
        apparmor.starts_with("enabled;")
            && apparmor.contains("edge-runner-tool loaded")
            && apparmor.contains("edge-runner-runsc loaded"),
        "{}",
        context("check", &check)
    );
    let verdict = check["verdict"].as_str().unwrap_or_default();
    assert!(
        verdict.starts_with("OK:") && verdict.contains("apparmor=enforced:edge-runner-"),
        "{}",
        context("check", &check)
    );
    assert!(
        check["native"]
            .as_str()
            .is_some_and(|n| n.contains("apparmor=enforced:edge-runner-tool")),
        "{}",
        context("check", &check)
    );

    // (b) Enforced: the tool runs under its profile and reading the runner's directory
    // is refused with EACCES, which the kernel logs for that profile.
    let r = report("read-enforced");
    let e = r.json();
    assert_eq!(r.get("exit"), "0", "{}", context("event", &e));
    let d = &e["data"];
    assert_eq!(
        d["sandbox"]["apparmor"],
        "enforced:edge-runner-tool",
        "{}",
        context("event", &e)
    );
    assert_eq!(
        d["sandbox"]["backend"],
        "native",
        "{}",
        context("event", &e)
    );
    let out = d["stdout"].as_str().unwrap_or_default();
    assert!(
        out.contains("VM-TOOL label=[edge-runner-tool (enforce)]"),
        "{}",
        context("event", &e)
    );
    assert!(
        out.contains("VM-TOOL read=denied [")
            && out.contains("Permission denied")
            && !out.contains(CANARY),
        "{}",
        context("event", &e)
    );
    let audit = report("read-enforced-audit");
    assert_ne!(
        audit.get("count"),
        "0",
        "the kernel logged no AppArmor denial of /etc/edge-runner/README for edge-runner-tool"
    );

    // (b) Off: the same tool, unconfined, reads the file.
    let r = report("read-off");
    let e = r.json();
    assert_eq!(r.get("exit"), "0", "{}", context("event", &e));
    let d = &e["data"];
    assert_eq!(d["sandbox"]["apparmor"], "off", "{}", context("event", &e));
    let out = d["stdout"].as_str().unwrap_or_default();
    assert!(
        out.contains("VM-TOOL label=[unconfined]")
            && out.contains(&format!("VM-TOOL read=ok [{CANARY}]")),
        "{}",
        context("event", &e)
    );

    // (d) runsc: every runsc process seen during the run carries the runsc profile.
    let r = report("runsc");
    let e = r.json();
    assert_eq!(r.get("exit"), "0", "{}", context("event", &e));
    assert_eq!(
        r.get("labels"),
        "edge-runner-runsc_(enforce)",
        "runsc processes ran under other labels: {r:?}"
    );
    let d = &e["data"];
    assert_eq!(d["sandbox"]["backend"], "runsc", "{}", context("event", &e));
    assert_eq!(
        d["sandbox"]["apparmor"],
        "enforced:edge-runner-runsc",
        "{}",
        context("event", &e)
    );
    assert!(
        d["stdout"]
            .as_str()
            .is_some_and(|s| s.contains("VM-TOOL runsc-ok")),
        "{}",
        context("event", &e)
    );

    eprintln!(
        "vm: guest clock: stage 2 at {} s, done at {} s",
        b.get("uptime"),
        report("done").get("uptime")
    );
    eprintln!("vm: whole test {:?}", started.elapsed());
}
