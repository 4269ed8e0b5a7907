//! Issue 12 item 2: the native seccomp filter is an allow list. A call outside it gets
//! ENOSYS (so libc falls back), the deny table's calls EPERM, and the list runs the tools
//! people run: a dynamic Debian ELF (the probe, coreutils), a POSIX shell script, Python 3
//! and busybox, measured here against each.

use super::*;
use edge_runner::sandbox::Termination;

fn native(world: &World) -> SandboxPolicy {
    let mut p = world.policy(BackendChoice::Native);
    p.limits.timeout_ms = 20_000;
    p
}

fn ok(o: &Outcome, what: &str) -> String {
    let out = stdout(o);
    assert_eq!(
        o.termination,
        Termination::Exited(0),
        "{what}: stdout {out}\nstderr {}",
        String::from_utf8_lossy(&o.stderr.bytes)
    );
    out
}

#[test]
fn a_call_outside_the_allow_list_gets_enosys_and_the_operator_can_widen_it() {
    require_root();
    let world = World::new();
    let policy = native(&world);
    let o = world.run_tool(
        &policy,
        world.executable(),
        &["syscalls"],
        RunLimits::default(),
    );
    let out = ok(&o, "filtered");
    assert_eq!(o.posture.seccomp, "filter");
    assert!(o.posture.seccomp_extra.is_empty());
    // Outside the list: "no such call", not a refusal the caller could tell apart.
    assert_eq!(field(&out, "modify_ldt"), "ENOSYS", "{out}");
    assert_eq!(field(&out, "sethostname"), "ENOSYS", "{out}");
    assert_eq!(field(&out, "getpid"), "ok", "{out}");

    // Without the filter the same calls reach the kernel: the ENOSYS above is the filter's.
    let mut off = native(&world);
    off.seccomp = Requirement::Off;
    let o = world.run_tool(
        &off,
        world.executable(),
        &["syscalls"],
        RunLimits::default(),
    );
    let out = ok(&o, "unfiltered");
    assert_eq!(o.posture.seccomp, "off");
    assert_eq!(field(&out, "modify_ldt"), "ok", "{out}");
    assert_eq!(field(&out, "sethostname"), "EPERM", "{out}");

    // [sandbox.seccomp_allow] "*" widens the list for every tool, and the event says so.
    let mut wide = native(&world);
    wide.seccomp_allow
        .insert("*".into(), vec!["modify_ldt".into()]);
    let o = world.run_tool(
        &wide,
        world.executable(),
        &["syscalls"],
        RunLimits::default(),
    );
    let out = ok(&o, "widened");
    assert_eq!(field(&out, "modify_ldt"), "ok", "{out}");
    assert_eq!(field(&out, "sethostname"), "ENOSYS", "{out}");
    assert_eq!(o.posture.seccomp_extra, vec!["modify_ldt".to_owned()]);
}

#[test]
fn a_per_tool_extension_applies_to_that_digest_only() {
    require_root();
    let world = World::new();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut policy = native(&world);
    policy
        .seccomp_allow
        .insert(digest.clone(), vec!["modify_ldt".into()]);
    let mine = world.executable().with_digest(digest.clone());
    let o = world.run_tool(&policy, mine, &["syscalls"], RunLimits::default());
    assert_eq!(field(&ok(&o, "own digest"), "modify_ldt"), "ok");
    assert_eq!(o.posture.seccomp_extra, vec!["modify_ldt".to_owned()]);
    let other = world
        .executable()
        .with_digest(format!("sha256:{}", "cd".repeat(32)));
    let o = world.run_tool(&policy, other, &["syscalls"], RunLimits::default());
    assert_eq!(field(&ok(&o, "other digest"), "modify_ldt"), "ENOSYS");
    assert!(o.posture.seccomp_extra.is_empty());
}

#[test]
fn an_unknown_name_in_the_extension_is_refused_with_its_code() {
    require_root();
    let world = World::new();
    let mut policy = native(&world);
    policy
        .seccomp_allow
        .insert("*".into(), vec!["open_treee".into()]);
    let err =
        sandbox::run(&policy, world.launch(&["exit", "0"], RunLimits::default())).unwrap_err();
    let refusal = err.refusal().expect("a refusal, not a runner failure");
    assert_eq!(refusal.reason.code(), "seccomp_allow_unknown");
    assert!(
        refusal.message.contains("\"open_treee\""),
        "{}",
        refusal.message
    );
}

#[test]
fn the_explicit_denials_still_say_eperm_under_the_allow_list() {
    require_root();
    let world = World::new();
    let o = world.run(
        BackendChoice::Native,
        &["posture", "1", &world.marker],
        RunLimits::default(),
    );
    let out = stdout(&o);
    assert_eq!(field(&out, "unshare_user"), "EPERM", "{out}");
    assert_eq!(field(&out, "vsock"), "EPERM", "{out}");
    assert_eq!(field(&out, "tiocsti_stdin"), "EPERM", "{out}");
}

const SHELL: &str = r#"#!/bin/sh
set -eu
cd /tmp
echo "b a c" | tr ' ' '\n' | sort > sorted
[ "$(cat sorted | paste -sd, -)" = "a,b,c" ]
mkdir -p d/e && touch d/e/f && find d -type f | grep -q f
ls -la /usr/bin >/dev/null
printf 'x%.0s' $(seq 1 100) | gzip | gunzip | wc -c | grep -q 100
tar -cf t.tar d && tar -tf t.tar | grep -q d/e/f
sha256sum sorted >/dev/null
date -u +%Y >/dev/null
( sleep 0.1 & wait )
awk 'BEGIN { print 6 * 7 }' | grep -q 42
sed -e 's/a/A/' sorted | head -n 1 | grep -q A
uname -s >/dev/null && id -u >/dev/null
echo shell-ok
"#;

const PYTHON: &str = r#"#!/usr/bin/python3
import hashlib, json, os, select, signal, socket, sqlite3, subprocess, sys, tempfile
import threading, time, zlib, datetime, random
results = []
t = threading.Thread(target=lambda: results.append(sum(range(1000))))
t.start(); t.join()
assert results == [499500]
with tempfile.NamedTemporaryFile(dir="/tmp") as f:
    f.write(zlib.compress(b"x" * 1000)); f.flush()
    assert len(zlib.decompress(open(f.name, "rb").read())) == 1000
out = subprocess.run(["/bin/echo", "child"], capture_output=True, check=True).stdout
assert out == b"child\n"
a, b = socket.socketpair(); a.send(b"p"); assert b.recv(1) == b"p"
r, w = os.pipe(); os.write(w, b"q"); assert select.select([r], [], [], 1)[0] == [r]
db = sqlite3.connect(":memory:"); db.execute("create table t (x)"); db.execute("insert into t values (1)")
assert db.execute("select count(*) from t").fetchone() == (1,)
assert len(os.urandom(16)) == 16 and 0 <= random.random() < 1
hashlib.sha256(b"x").hexdigest(); json.dumps({"a": [1, 2]})
signal.signal(signal.SIGALRM, lambda *_: None); signal.alarm(0)
time.sleep(0.01); datetime.datetime.now().isoformat(); os.listdir("/usr/lib")
print("python-ok")
"#;

const BUSYBOX: &str = r#"#!/bin/busybox sh
set -eu
cd /tmp
busybox echo "3 1 2" | busybox tr ' ' '\n' | busybox sort -n | busybox head -n 1 | busybox grep -q 1
busybox mkdir -p x/y && busybox touch x/y/z && busybox find x -name z | busybox grep -q z
busybox sha256sum /proc/self/status >/dev/null
busybox ls -la /usr >/dev/null
( busybox sleep 0.1 & wait )
busybox echo busybox-ok
"#;

#[test]
fn the_allow_list_runs_real_tools_shell_python_busybox_and_dynamic_elf() {
    require_root();
    let world = World::new();
    let policy = native(&world);
    for (name, script, want) in [
        ("shell", SHELL, "shell-ok"),
        ("python3", PYTHON, "python-ok"),
        ("busybox", BUSYBOX, "busybox-ok"),
    ] {
        let o = world.run_tool(&policy, world.script(script), &[], RunLimits::default());
        assert_eq!(o.posture.seccomp, "filter", "{name}");
        assert!(ok(&o, name).contains(want), "{name}");
    }
    // Dynamic ELF binaries straight from Debian, executed as the tool itself.
    for (bin, args, want) in [
        ("/usr/bin/sort", &["--version"][..], "sort"),
        (
            "/usr/bin/python3",
            &["-c", "print('elf-python')"][..],
            "elf-python",
        ),
    ] {
        let o = world.run_tool(
            &policy,
            world.tool(Path::new(bin)),
            args,
            RunLimits::default(),
        );
        assert!(ok(&o, bin).contains(want), "{bin}");
    }
}
