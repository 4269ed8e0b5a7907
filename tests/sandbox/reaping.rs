//! Issue 12 item 6: nothing a run starts outlives it, alive or as a zombie in the run's
//! cgroup (a tool's double-forked daemon, runsc's helpers, also on the kill path). The
//! native backend's init reaps inside its pid namespace; runsc's tree is reaped by the
//! run's reaper (`host/src/sandbox/runsc/reaper.rs`), a per-run child subreaper.

use super::*;

/// Any process anywhere, alive or a zombie (a zombie keeps its cgroup until reaped),
/// whose cgroup is one of `world`'s runs.
fn leftovers(world: &World) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            let mut f = rest.split_whitespace();
            let (state, ppid) = (f.next()?, f.next()?);
            let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
            cgroup
                .contains(&format!("/{}/", world.cgroup_parent))
                .then(|| format!("{pid} {state} ppid={ppid}"))
        })
        .collect()
}

#[test]
fn double_forked_sleepers_and_runsc_helpers_are_reaped_before_the_run_returns() {
    require_root();
    let world = World::new();
    for backend in BACKENDS {
        for _ in 0..3 {
            let o = world.run(
                backend,
                &["daemonize", &world.marker],
                RunLimits {
                    timeout_ms: 10_000,
                    ..RunLimits::default()
                },
            );
            assert!(stdout(&o).contains("daemonized"), "{backend:?}");
            let left = leftovers(&world);
            assert!(left.is_empty(), "{backend:?}: left behind: {left:?}");
            assert!(
                host_processes_with(&world.marker).is_empty(),
                "{backend:?}: the daemon survived"
            );
        }
        // The kill path: at the timeout everything in the run's cgroup gets SIGKILL at once,
        // `runsc run` with its sandbox and gofer, which lose their parent. Without the
        // run's reaper they would go to the host's init (which, on this kind of host,
        // reaps nothing) and stay zombies.
        let o = world.run(
            backend,
            &["spin"],
            RunLimits {
                timeout_ms: 1_500,
                kill_grace_ms: 100,
                ..RunLimits::default()
            },
        );
        assert!(o.timed_out, "{backend:?}");
        let left = leftovers(&world);
        assert!(
            left.is_empty(),
            "{backend:?}: left behind after a kill: {left:?}"
        );
    }
}
