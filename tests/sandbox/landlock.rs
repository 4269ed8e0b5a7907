//! Issue 12 item 3: Landlock as a second filesystem layer of the native sandbox. The mount
//! view lets a tool write `/proc/self/comm` (procfs is not read-only) and execute any
//! program on the read-only root; Landlock lets it write only `/tmp` and execute only the
//! tool and the system's program directories. Each case runs with Landlock off first, to
//! show the view alone would allow it.

use super::*;
use edge_runner::sandbox::Termination;
use std::os::unix::fs::PermissionsExt as _;

fn with_landlock(world: &World, on: bool) -> SandboxPolicy {
    let mut p = world.policy(BackendChoice::Native);
    p.landlock = if on {
        Requirement::Required
    } else {
        Requirement::Off
    };
    p
}

fn probe_says(world: &World, policy: &SandboxPolicy, args: &[&str], key: &str) -> String {
    let o = world.run_tool(policy, world.executable(), args, RunLimits::default());
    assert_eq!(o.termination, Termination::Exited(0), "{}", stdout(&o));
    field(&stdout(&o), key).to_owned()
}

#[test]
fn a_write_outside_tmp_that_the_view_allows_is_denied_by_landlock() {
    require_root();
    let world = World::new();
    let off = with_landlock(&world, false);
    let on = with_landlock(&world, true);
    // The view alone: procfs is mounted read-write.
    assert_eq!(
        probe_says(&world, &off, &["write", "/proc/self/comm"], "write"),
        "ok"
    );
    assert_eq!(
        probe_says(&world, &on, &["write", "/proc/self/comm"], "write"),
        "EACCES"
    );
    // /tmp stays writable, and the devices a shell redirects to.
    assert_eq!(probe_says(&world, &on, &["write", "/tmp/x"], "write"), "ok");
    assert_eq!(
        probe_says(&world, &on, &["write", "/dev/null"], "write"),
        "ok"
    );
    let o = world.run_tool(
        &on,
        world.executable(),
        &["exit", "0"],
        RunLimits::default(),
    );
    assert_eq!(o.posture.landlock, format!("abi:{}", landlock_abi()));
    let o = world.run_tool(
        &off,
        world.executable(),
        &["exit", "0"],
        RunLimits::default(),
    );
    assert_eq!(o.posture.landlock, "off");
}

#[test]
fn only_the_tool_and_the_system_program_directories_execute() {
    require_root();
    let world = World::new();
    // A program on the read-only root, outside /usr, /bin, /sbin and /lib*.
    let outside = world.dir.path().join("outside.sh");
    std::fs::write(&outside, "#!/bin/sh\necho exec=ok\n").unwrap();
    std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
    let outside = outside.to_str().unwrap();
    let off = with_landlock(&world, false);
    let on = with_landlock(&world, true);
    assert_eq!(probe_says(&world, &off, &["exec", outside], "exec"), "ok");
    assert_eq!(
        probe_says(&world, &on, &["exec", outside], "exec"),
        "EACCES"
    );
    // The system's programs still run (a script's utilities, interpreters).
    assert_eq!(
        probe_says(&world, &on, &["exec", "/bin/echo", "exec=ok"], "exec"),
        "ok"
    );
}

fn landlock_abi() -> i32 {
    edge_runner::sandbox::support::HostSupport::probe(None)
        .landlock_abi
        .expect("this kernel has Landlock (CI's does: ABI 7)")
}
