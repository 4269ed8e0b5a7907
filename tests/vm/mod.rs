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

use serde_json::{Value, json};
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

/// The runner id the guest's configuration names and the tasks are addressed to.
const RUNNER_ID: &str = "edge-vm";
/// What the unmasked file beside the configuration holds.
const CANARY: &str = "edge-vm-canary-7f3a";
/// The guest gets this long to boot, run every scenario and power off (TCG on a loaded
/// two-core machine; an idle one needs well under a minute).
const GUEST_DEADLINE: Duration = Duration::from_secs(300);

fn bootstrap_hint(what: &str) -> String {
    format!(
        "the AppArmor VM test needs {what}; run scripts/bootstrap (as root) to install \
         qemu-system-x86, busybox-static, apparmor and runsc and to extract the guest kernel"
    )
}

/// `name` on PATH or in the sbin directories, or a failure naming the fix.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{}", bootstrap_hint(&format!("{name} on PATH"))))
}

/// The shared libraries `ldd` lists for `binary` (absolute paths, the loader included);
/// empty for a static binary.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("not a dynamic executable") {
        return Vec::new();
    }
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, right)) => right.trim().split(' ').next()?,
                None => l.split(' ').next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

fn is_static(binary: &Path) -> bool {
    shared_libraries(binary).is_empty()
}

/// The inputs of the cached base image.
struct BaseInputs {
    busybox: PathBuf,
    runner: PathBuf,
    parser: PathBuf,
    runsc: PathBuf,
    init: PathBuf,
}

impl BaseInputs {
    fn find() -> BaseInputs {
        let busybox = PathBuf::from("/bin/busybox");
        assert!(
            busybox.is_file() && is_static(&busybox),
            "{}",
            bootstrap_hint("a static /bin/busybox (busybox-static)")
        );
        let runsc = tool("runsc");
        assert!(
            is_static(&runsc),
            "runsc at {} is not static",
            runsc.display()
        );
        BaseInputs {
            busybox,
            runner: PathBuf::from(crate::support::bin()),
            parser: tool("apparmor_parser"),
            runsc,
            init: crate::support::fixtures().join("vm/init"),
        }
    }

    /// A cache key: the image layout version, each input's path, size and mtime, and the
    /// libraries they load.
    fn key(&self) -> String {
        let mut text = String::from("edge-vm-base-v2\n");
        let mut files = vec![
            self.busybox.clone(),
            self.runner.clone(),
            self.parser.clone(),
            self.runsc.clone(),
            self.init.clone(),
        ];
        files.extend(shared_libraries(&self.runner));
        files.extend(shared_libraries(&self.parser));
        for f in files {
            let m = std::fs::metadata(&f).unwrap();
            let mtime = m.modified().unwrap().duration_since(std::time::UNIX_EPOCH);
            text.push_str(&format!(
                "{} {} {:?}\n",
                f.display(),
                m.len(),
                mtime.unwrap()
            ));
        }
        edge_runner::digest::sha256_id(text.as_bytes())
            .trim_start_matches("sha256:")
            .chars()
            .take(16)
            .collect()
    }

    /// The base archive: everything but the world. Built once per key.
    fn archive(&self, cache: &Path) -> PathBuf {
        let path = cache.join(format!("base-{}.cpio", self.key()));
        if path.is_file() {
            return path;
        }
        std::fs::create_dir_all(cache).unwrap();
        // Debug info is most of a debug build's size and the guest never reads it.
        let stripped = cache.join("edge-runner.stripped");
        let o = Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&stripped)
            .arg(&self.runner)
            .output()
            .expect("strip (binutils) runs");
        assert!(o.status.success(), "strip failed: {o:?}");

        let mut t = cpio::Tree::default();
        for d in ["/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/vm"] {
            t.dir(d);
        }
        t.file(Path::new("/init"), &self.init);
        t.file(Path::new("/bin/busybox"), &self.busybox);
        t.file(Path::new("/usr/bin/edge-runner"), &stripped);
        t.file(Path::new("/usr/sbin/apparmor_parser"), &self.parser);
        t.file(Path::new("/usr/bin/runsc"), &self.runsc);
        for lib in shared_libraries(&self.runner)
            .into_iter()
            .chain(shared_libraries(&self.parser))
        {
            t.file(&lib, &lib);
        }
        // What the shipped profiles include (abi/, tunables/, abstractions/).
        for d in ["abi", "tunables", "abstractions"] {
            let dir = Path::new("/etc/apparmor.d").join(d);
            assert!(
                dir.is_dir(),
                "{}",
                bootstrap_hint(&format!("{} (apparmor)", dir.display()))
            );
            t.dir(dir.to_str().unwrap());
            t.copy_tree(&dir);
        }
        // `sandbox check` runs a private copy of /bin/true. busybox picks its applet from
        // argv[0], which for the copy is "tool": a script stands in for true(1).
        t.bytes("/bin/true", b"#!/bin/sh\nexit 0\n".to_vec(), 0o755);
        t.bytes(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                .to_vec(),
            0o644,
        );
        t.bytes(
            "/etc/group",
            b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
            0o644,
        );
        let tmp = cache.join(format!(".base-{}.tmp", std::process::id()));
        std::fs::write(&tmp, t.archive()).unwrap();
        // Older images are stale: keep only this one.
        for e in std::fs::read_dir(cache).unwrap().flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("base-") && name.ends_with(".cpio") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        std::fs::rename(&tmp, &path).unwrap();
        let _ = std::fs::remove_file(&stripped);
        path
    }
}

/// The runner's world, made on the host with the binary under test.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("edge-vm-")
            .tempdir()
            .unwrap();
        let w = World { dir };
        std::fs::write(
            w.path("config.toml"),
            format!(
                "state_dir = {:?}\n[runner]\nid = {RUNNER_ID:?}\n",
                w.path("state").to_str().unwrap()
            ),
        )
        .unwrap();
        w.er(&["keys", "generate", "--alg", "ES256", "--kid", "vm-1"]);
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn er(&self, args: &[&str]) -> Vec<u8> {
        let o = Command::new(crate::support::bin())
            .args(args)
            .current_dir(self.dir.path())
            .env("EDGE_RUNNER_CONFIG", self.path("config.toml"))
            .env_remove("EDGE_RUNNER_LOG")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "edge-runner {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    }

    /// Adds and authorizes `script`; returns its digest.
    fn tool(&self, name: &str, script: &str) -> String {
        std::fs::write(self.path(name), script).unwrap();
        let out = self.er(&["armory", "add", name, "--name", name]);
        let digest = String::from_utf8(out).unwrap().trim().to_owned();
        self.er(&["armory", "authorize", &digest]);
        digest
    }

    /// A task for `digest`, signed now; returns the compact JWS.
    fn task(&self, task_id: &str, digest: &str) -> Vec<u8> {
        let template = self.path(&format!("{task_id}.json"));
        let manifest = json!({
            "manifest_version": "1",
            "aud": RUNNER_ID,
            "task_context": {"task_id": task_id, "tenant_id": "acme"},
            "tool_sha256": digest,
        });
        std::fs::write(&template, manifest.to_string()).unwrap();
        self.er(&[
            "manifest",
            "sign",
            "--fill",
            "--ttl",
            "600",
            "--key",
            "signing-key.jwk",
            template.to_str().unwrap(),
        ])
    }

    /// The world as the guest sees it: configuration, key set, armory and tasks.
    fn archive(&self) -> Vec<u8> {
        let read_tool = "#!/bin/sh\n\
            echo \"VM-TOOL label=[$(cat /proc/self/attr/current)]\"\n\
            if out=$(cat /etc/edge-runner/README 2>&1); then echo \"VM-TOOL read=ok [$out]\"; \
            else echo \"VM-TOOL read=denied [$out]\"; fi\n";
        let runsc_tool = "#!/bin/sh\nsleep 1\necho VM-TOOL runsc-ok\n";
        let read = self.tool("read-config-dir", read_tool);
        let runsc = self.tool("runsc-sleep", runsc_tool);
        let mut t = cpio::Tree::default();
        t.bytes(
            "/etc/edge-runner/config.toml",
            format!("state_dir = \"/var/lib/edge-runner\"\n[runner]\nid = {RUNNER_ID:?}\n")
                .into_bytes(),
            0o600,
        );
        // World-readable, beside the configuration, and not masked by the sandbox: only
        // the tool profile keeps a tool from reading it.
        t.bytes(
            "/etc/edge-runner/README",
            format!("{CANARY}\n").into_bytes(),
            0o644,
        );
        t.file(
            Path::new("/etc/edge-runner/keys.json"),
            &self.path("keys.json"),
        );
        for (name, digest) in [
            ("task-unloaded", &read),
            ("task-read", &read),
            ("task-read-again", &read),
            ("task-runsc", &runsc),
        ] {
            t.bytes(&format!("/vm/{name}.jws"), self.task(name, digest), 0o644);
        }
        let armory = self.path("state/armory");
        // The armory lives at the guest's default place, /var/lib/edge-runner/armory.
        relocate(&mut t, &armory, Path::new("/var/lib/edge-runner/armory"));
        t.archive()
    }
}

/// Copies the host directory `from` into `t` at `to`, keeping modes.
fn relocate(t: &mut cpio::Tree, from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(from).unwrap().permissions().mode() & 0o7777;
    t.dir_mode(to.to_str().unwrap(), mode);
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let dest = to.join(entry.file_name());
        if meta.is_dir() {
            relocate(t, &entry.path(), &dest);
        } else if meta.is_file() {
            let data = std::fs::read(entry.path()).unwrap();
            t.bytes(
                dest.to_str().unwrap(),
                data,
                meta.permissions().mode() & 0o7777,
            );
        }
    }
}

/// One `EDGE-VM <scenario> k=v ... [json=...|text=...]` line.
#[derive(Debug)]
struct Report {
    fields: BTreeMap<String, String>,
}

impl Report {
    fn get(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in {:?}", self.fields))
    }

    fn json(&self) -> Value {
        let text = self.get("json");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("json= is not JSON ({e}): {text}"))
    }
}

fn parse(line: &str) -> Option<(String, Report)> {
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
fn boot(initrd: &Path) -> String {
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

    let console = boot(&image);
    let mut reports: BTreeMap<String, Report> = BTreeMap::new();
    for line in console.lines() {
        if let Some((scenario, report)) = parse(line) {
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

    report("done");
    eprintln!("vm: whole test {:?}", started.elapsed());
}

#[test]
fn report_lines_parse_with_a_trailing_free_text_field() {
    let (s, r) = parse("EDGE-VM check exit=0 json={\"a\": \"b c\"}\r").unwrap();
    assert_eq!(s, "check");
    assert_eq!(r.get("exit"), "0");
    assert_eq!(r.json()["a"], "b c");
    assert!(parse("[    1.0] EDGE-VM x").is_none());
}
