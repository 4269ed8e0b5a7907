//! The VM test's initramfs: the cached base archive (busybox, the runner binary, the
//! parser, runsc and the libraries they load) and the per-run world (configuration, key
//! set, armory, signed tasks) made on the host with the binary under test. Nothing here
//! boots or asserts on the guest; `guest` boots, `mod.rs` decides.

use super::cpio;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The runner id the guest's configuration names and the tasks are addressed to.
pub(super) const RUNNER_ID: &str = "edge-vm";
/// Where the guest keeps runsc (`[sandbox] runsc_path`).
pub(super) const GUEST_RUNSC: &str = "/opt/gvisor/runsc";
/// What the unmasked file beside the configuration holds.
pub(super) const CANARY: &str = "edge-vm-canary-7f3a";

pub(super) fn bootstrap_hint(what: &str) -> String {
    format!(
        "the AppArmor VM test needs {what}; run scripts/bootstrap (as root) to install \
         qemu-system-x86, busybox-static, apparmor, attr and runsc and to extract the guest kernel"
    )
}

/// `name` on PATH or in the sbin directories, or a failure naming the fix.
pub(super) fn tool(name: &str) -> PathBuf {
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
pub(super) struct BaseInputs {
    busybox: PathBuf,
    runner: PathBuf,
    parser: PathBuf,
    runsc: PathBuf,
    setfattr: PathBuf,
    init: PathBuf,
}

impl BaseInputs {
    pub(super) fn find() -> BaseInputs {
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
            setfattr: tool("setfattr"),
            init: crate::support::fixtures().join("vm/init"),
        }
    }

    /// A cache key: the image layout version, each input's path, size and mtime, and the
    /// libraries they load.
    fn key(&self) -> String {
        let mut text = String::from("edge-vm-base-v4\n");
        let mut files = vec![
            self.busybox.clone(),
            self.runner.clone(),
            self.parser.clone(),
            self.runsc.clone(),
            self.setfattr.clone(),
            self.init.clone(),
        ];
        for binary in [&self.runner, &self.parser, &self.setfattr] {
            files.extend(shared_libraries(binary));
        }
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
    pub(super) fn archive(&self, cache: &Path) -> PathBuf {
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
        // Not at /usr/bin: the runsc profile also attaches to runsc by that path, and the
        // test must show the runner's own exec transition confining it.
        t.file(Path::new(GUEST_RUNSC), &self.runsc);
        t.file(Path::new("/usr/bin/setfattr"), &self.setfattr);
        for binary in [&self.runner, &self.parser, &self.setfattr] {
            for lib in shared_libraries(binary) {
                t.file(&lib, &lib);
            }
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
pub(super) struct World {
    dir: tempfile::TempDir,
}

impl World {
    pub(super) fn new() -> World {
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

    pub(super) fn path(&self, name: &str) -> PathBuf {
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
    pub(super) fn archive(&self) -> Vec<u8> {
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
            format!(
                "state_dir = \"/var/lib/edge-runner\"\n[runner]\nid = {RUNNER_ID:?}\n\
                 [sandbox]\nrunsc_path = {GUEST_RUNSC:?}\n"
            )
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
