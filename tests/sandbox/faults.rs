//! Tools that misbehave: fork bombs, output floods, infinite loops, SIGTERM ignorers,
//! daemons, crashes, and a runner killed mid-run. Each case runs under both backends and
//! checks that nothing of the run survives. No assertion is about time.

use super::*;
use sandbox::Termination;

fn quick(timeout_ms: u64) -> RunLimits {
    RunLimits {
        timeout_ms,
        kill_grace_ms: 300,
        ..RunLimits::default()
    }
}

#[test]
fn fork_bomb_is_contained() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        let limits = RunLimits {
            max_processes: 32,
            ..quick(3000)
        };
        let o = world.run(backend, &["forkbomb", &world.marker], limits);
        let out = stdout(&o);
        let forks: u64 = field(&out, "fork_failed_after")
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            forks < 32,
            "{backend:?}: {forks} forks succeeded with a limit of 32"
        );
        assert!(
            o.timed_out,
            "{backend:?}: the bomb's parent waits to be killed"
        );
        assert!(
            host_processes_with(&world.marker).is_empty(),
            "{backend:?}: bomb processes survived"
        );
    }
}

#[test]
fn infinite_loop_is_killed_at_the_timeout() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        let o = world.run(backend, &["spin", &world.marker], quick(1000));
        assert!(o.timed_out, "{backend:?}");
        // SIGTERM first (the probe does not handle it, so it dies of it), SIGKILL after
        // the grace period otherwise.
        assert!(
            matches!(o.termination, Termination::Signaled(s) if s == libc::SIGTERM || s == libc::SIGKILL),
            "{backend:?}: {:?}",
            o.termination
        );
        assert!(!o.success());
        assert!(host_processes_with(&world.marker).is_empty(), "{backend:?}");
    }
}

#[test]
fn tool_ignoring_sigterm_is_killed() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        let o = world.run(backend, &["ignore-term", &world.marker], quick(1000));
        assert!(
            stdout(&o).contains("ignoring"),
            "{backend:?}: {}",
            stdout(&o)
        );
        assert!(o.timed_out, "{backend:?}");
        assert_eq!(
            o.termination,
            Termination::Signaled(libc::SIGKILL),
            "{backend:?}"
        );
        assert!(host_processes_with(&world.marker).is_empty(), "{backend:?}");
    }
}

#[test]
fn daemonized_child_does_not_outlive_the_tool() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        let o = world.run(backend, &["daemonize", &world.marker], quick(10_000));
        assert_eq!(o.termination, Termination::Exited(0), "{backend:?}");
        assert!(!o.timed_out, "{backend:?}");
        assert!(stdout(&o).contains("daemonized"));
        assert!(
            host_processes_with(&world.marker).is_empty(),
            "{backend:?}: the daemon survived"
        );
    }
}

#[test]
fn non_zero_exit_and_death_by_signal_are_reported() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        let o = world.run(backend, &["exit", "7"], quick(10_000));
        assert_eq!(o.termination, Termination::Exited(7), "{backend:?}");
        assert!(!o.timed_out && !o.success());
        let o = world.run(backend, &["segv"], quick(10_000));
        assert_eq!(
            o.termination,
            Termination::Signaled(libc::SIGSEGV),
            "{backend:?}"
        );
        assert!(!o.timed_out);
    }
}

/// Spawns `edge-runner sandbox exec` with `world`'s configuration.
fn cli(world: &World, args: &[&str]) -> std::process::Command {
    let config = world.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "keys = \"{}\"\nstate_dir = \"{}\"\n[sandbox]\napparmor = \"if-available\"\ncgroup_parent = \"{}\"\n",
            world.keys.display(),
            world.state.display(),
            world.cgroup_parent
        ),
    )
    .unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_edge-runner"));
    c.arg("--config")
        .arg(&config)
        .args(["sandbox", "exec"])
        .args(args);
    c
}

/// Samples the runner's own peak resident memory (`VmHWM` of its current address space)
/// every 20 ms until it exits. `ru_maxrss` from wait4 cannot be used here: the kernel folds
/// the pre-exec high-water mark of the forked copy of this (large, multi-threaded) test
/// process into it, so it measures the test binary, not the runner.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0u64;
        let path = format!("/proc/{pid}/status");
        while let Ok(status) = std::fs::read_to_string(&path) {
            if status.contains("State:\tZ") {
                break;
            }
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb * 1024);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        peak
    })
}

#[test]
fn a_gigabyte_of_output_is_cut_at_the_cap_with_true_counts_and_flat_runner_memory() {
    require_root();
    let world = World::new();
    const GIB: u64 = 1 << 30;
    for backend in ["native", "runsc"] {
        let mut child = cli(
            &world,
            &[
                "--backend",
                backend,
                "--json",
                "--timeout-ms",
                "120000",
                "--output-bytes",
                "1048576",
                "--",
            ],
        )
        .arg(probe())
        .args(["flood", &GIB.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        let watcher = watch_peak_rss(child.id());
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut child.stdout.take().unwrap(), &mut out).unwrap();
        let code = child.wait().unwrap().code();
        let max_rss = watcher.join().unwrap();
        assert!(
            max_rss > 0,
            "{backend}: the runner's memory was never sampled"
        );
        assert_eq!(
            code,
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&out)
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stdout"]["total_bytes"], GIB, "{backend}");
        assert_eq!(v["stdout"]["truncated"], true, "{backend}");
        assert_eq!(
            v["stdout"]["bytes"].as_str().unwrap().len(),
            1 << 20,
            "{backend}"
        );
        assert_eq!(v["stderr"]["bytes"], "done\n", "{backend}");
        assert_eq!(v["stderr"]["truncated"], false, "{backend}");
        // A runner that buffered the stream would be past 1 GiB; the cap is 1 MiB per
        // stream, the rest is the runner itself.
        assert!(
            max_rss < 96 << 20,
            "{backend}: runner peak RSS {max_rss} bytes"
        );
    }
    world.assert_clean(BackendChoice::Native);
}

#[test]
fn leftovers_of_a_killed_runner_are_swept_at_the_next_start() {
    require_root();
    for backend in ["native", "runsc"] {
        let world = World::new();
        let mut child = cli(
            &world,
            &["--backend", backend, "--timeout-ms", "120000", "--"],
        )
        .arg(probe())
        .args(["ignore-term", &world.marker])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        let runs = world.state.join("sandbox/runs");
        // Wait until the tool runs (its cgroup holds processes).
        let run_id = loop {
            let id = std::fs::read_dir(&runs)
                .ok()
                .and_then(|mut d| d.next())
                .and_then(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned());
            if let Some(id) = id {
                let procs = Path::new("/sys/fs/cgroup/pids")
                    .join(&world.cgroup_parent)
                    .join(&id)
                    .join("cgroup.procs");
                let busy = std::fs::read_to_string(&procs)
                    .map(|s| s.lines().count() >= 2)
                    .unwrap_or(false);
                let started = match backend {
                    "native" => !host_processes_with(&world.marker).is_empty() && busy,
                    _ => {
                        busy && std::fs::read_dir(world.state.join("sandbox/runsc"))
                            .map(|d| d.count() > 0)
                            .unwrap_or(false)
                    }
                };
                if started {
                    break id;
                }
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "{backend}: the runner ended early"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
        assert!(
            runs.join(&run_id).exists(),
            "{backend}: the crashed run left nothing to sweep?"
        );
        // The next start sweeps.
        let next = cli(&world, &["--backend", backend, "--"])
            .arg(probe())
            .args(["exit", "0"])
            .output()
            .unwrap();
        assert_eq!(
            next.status.code(),
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&next.stderr)
        );
        world.assert_clean(BackendChoice::Native);
        assert!(
            host_processes_with(&world.marker).is_empty(),
            "{backend}: the tool survived"
        );
        assert!(
            host_processes_with(&run_id).is_empty(),
            "{backend}: runsc processes of {run_id} survived"
        );
    }
}

/// Regression (docs review): the runner's umask leaked into the sandbox view, so under a
/// hardened `UMask=0077` the tool could not reach its own path.
#[test]
fn a_restrictive_runner_umask_does_not_hide_the_tool_from_itself() {
    use std::os::unix::process::CommandExt as _;
    require_root();
    let world = World::new();
    for backend in ["native", "runsc"] {
        let mut cmd = cli(&world, &["--backend", backend, "--"]);
        cmd.arg("/bin/echo").arg("reachable");
        #[allow(unsafe_code)]
        // SAFETY: umask is async-signal-safe and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0o077);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "reachable");
    }
    world.assert_clean(BackendChoice::Native);
}
