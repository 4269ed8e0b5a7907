//! Issue 12 item 4: cgroup v2 done the delegated way, on a real v2 hierarchy. This host
//! keeps pids and memory on cgroup v1, so each case runs the runner in a private mount
//! namespace whose `/sys/fs/cgroup` is a fresh cgroup2 mount (the host's one unified
//! hierarchy, as on a v2 host), in a cgroup the test marks delegated the way systemd does
//! (`trusted.delegate=1`, `Delegate=yes`). No mock: the kernel's own files are read.
//! The kernel's pids and memory controllers stay bound to v1 here, so the delegated cgroup
//! offers none: `required` cgroups refuse, `if-available` runs in a limitless run cgroup.

use super::*;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The host's view of the unified hierarchy.
fn unified() -> PathBuf {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 hierarchy is mounted (CI: /sys/fs/cgroup/unified)")
}

struct V2 {
    world: World,
    /// `<unified>/<top>`: the test's stand-in for systemd's slice.
    top: PathBuf,
    config: PathBuf,
}

impl V2 {
    fn new(cgroups: &str) -> V2 {
        let world = World::new();
        let top = unified().join(format!("er-v2-{}", world.cgroup_parent));
        std::fs::create_dir_all(top.join("unit")).unwrap();
        let config = world.dir.path().join("v2.toml");
        std::fs::write(
            &config,
            format!(
                "keys = \"{}\"\nstate_dir = \"{}\"\n[sandbox]\napparmor = \"if-available\"\n\
                 cgroup_parent = \"{}\"\ncgroups = \"{cgroups}\"\n",
                world.keys.display(),
                world.state.display(),
                world.cgroup_parent
            ),
        )
        .unwrap();
        V2 { world, top, config }
    }

    fn delegate(&self) {
        let status = Command::new("python3")
            .args([
                "-c",
                "import os, sys; os.setxattr(sys.argv[1], 'trusted.delegate', b'1')",
            ])
            .arg(self.top.join("unit"))
            .status()
            .unwrap();
        assert!(status.success(), "set trusted.delegate");
    }

    /// `edge-runner sandbox exec` in a private mount namespace with only cgroup v2,
    /// started in `<top>/unit` (or in the hierarchy's root with `in_unit = false`).
    fn exec(&self, in_unit: bool, tool: &[&str]) -> std::process::Child {
        let rel = self.top.strip_prefix(unified()).unwrap();
        let join = if in_unit {
            format!(
                "echo $$ > /sys/fs/cgroup/{}/unit/cgroup.procs",
                rel.display()
            )
        } else {
            String::new()
        };
        let script = format!(
            "set -e; umount -R /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup; {join}\n\
             cfg=\"$1\"; shift\n\
             exec \"$0\" --config \"$cfg\" sandbox exec --backend native -- \"$@\""
        );
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                &script,
            ])
            .arg(env!("CARGO_BIN_EXE_edge-runner"))
            .arg(&self.config)
            .args(tool)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, in_unit: bool, tool: &[&str]) -> Output {
        self.exec(in_unit, tool).wait_with_output().unwrap()
    }
}

impl Drop for V2 {
    fn drop(&mut self) {
        for d in [
            self.top.join("unit").join(&self.world.cgroup_parent),
            self.top.join("unit"),
            self.top.clone(),
        ] {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout {}\nstderr {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_run_on_cgroup_v2_is_born_in_its_own_cgroup_under_the_delegated_one() {
    require_root();
    let v2 = V2::new("if-available");
    v2.delegate();
    let root_control = std::fs::read_to_string(unified().join("cgroup.subtree_control")).unwrap();
    let tool = v2.world.dir.path().join("sleeper.sh");
    std::fs::write(&tool, "#!/bin/sh\nsleep 2\necho slept\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let child = v2.exec(true, &[tool.to_str().unwrap()]);
    // While it sleeps: a run cgroup below <unit>/<cgroup_parent> holds its processes.
    let parent = v2.top.join("unit").join(&v2.world.cgroup_parent);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.is_empty() && Instant::now() < deadline {
        for run in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let procs =
                std::fs::read_to_string(run.path().join("cgroup.procs")).unwrap_or_default();
            seen.extend(procs.lines().map(str::to_owned));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!seen.is_empty(), "no run cgroup under {}", parent.display());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cgroup=v2:"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("slept"));
    // Nothing at the hierarchy's root, its subtree_control untouched, the run cgroup gone.
    assert!(!unified().join(&v2.world.cgroup_parent).exists());
    assert_eq!(
        std::fs::read_to_string(unified().join("cgroup.subtree_control")).unwrap(),
        root_control
    );
    let left: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "run cgroups left: {left:?}");
}

#[test]
fn an_undelegated_cgroup_and_the_root_are_refused_by_name() {
    require_root();
    let v2 = V2::new("required");
    let probe = probe().to_str().unwrap();
    // In a cgroup that carries no delegate mark.
    let o = v2.run(true, &[probe, "exit", "0"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cgroup_not_delegated"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Delegate=yes"),
        "{}",
        text(&o)
    );
    // In the hierarchy's root.
    let o = v2.run(false, &[probe, "exit", "0"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("cgroup_not_delegated") && e.contains("root"),
        "{}",
        text(&o)
    );
    // Delegated, but without the pids and memory controllers: required refuses.
    v2.delegate();
    let o = v2.run(true, &[probe, "exit", "0"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Delegate=pids memory"),
        "{}",
        text(&o)
    );
}
