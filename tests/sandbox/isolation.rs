//! What a tool sees from inside each backend: identity, capabilities, no_new_privs,
//! seccomp, network, filesystem, processes, secrets, terminals. Plus the refusal of a
//! required protection this host lacks (AppArmor), and the posture record.

use super::*;
use edge_runner::reason::Reason;
use edge_runner::sandbox::support::{AppArmor, HostSupport};

fn posture_probe(backend: BackendChoice) {
    require_root();
    let world = World::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let keys = world.keys.to_str().unwrap();
    let config = world.config.to_str().unwrap();
    let armory_blob = world.armory.join("blob");
    std::fs::write(&armory_blob, &world.marker).unwrap();
    std::fs::set_permissions(&armory_blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let replay = world.state.join("replay.db");
    let public = world.dir.path().join("etc/public.txt");
    let args = [
        "posture",
        &port,
        &world.marker,
        keys,
        config,
        armory_blob.to_str().unwrap(),
        replay.to_str().unwrap(),
        public.to_str().unwrap(),
    ];
    let o = world.run(backend, &args, world.policy(backend).limits.clone());
    let out = stdout(&o);
    assert_eq!(
        o.termination,
        sandbox::Termination::Exited(0),
        "{backend:?}\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr.bytes)
    );
    // Identity.
    for k in ["uid", "gid", "euid", "egid"] {
        assert_eq!(field(&out, k), "65534", "{backend:?} {k}");
    }
    assert_eq!(
        field(&out, "groups"),
        "0",
        "{backend:?}: supplementary groups"
    );
    // All five capability sets, through the syscalls and through /proc where the
    // backend's /proc has them (gVisor's lacks CapAmb).
    for k in ["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"] {
        assert_eq!(
            u64::from_str_radix(field(&out, k), 16).unwrap(),
            0,
            "{backend:?} {k}"
        );
    }
    for k in [
        "status_CapInh",
        "status_CapPrm",
        "status_CapEff",
        "status_CapBnd",
    ] {
        assert_eq!(
            u64::from_str_radix(field(&out, k), 16).unwrap(),
            0,
            "{backend:?} {k}"
        );
    }
    if backend == BackendChoice::Native {
        assert_eq!(
            u64::from_str_radix(field(&out, "status_CapAmb"), 16).unwrap(),
            0
        );
        assert_eq!(field(&out, "status_NoNewPrivs"), "1");
        assert_eq!(
            field(&out, "status_Seccomp"),
            "2",
            "native: seccomp filter mode"
        );
    }
    assert_eq!(field(&out, "nnp"), "1", "{backend:?}: no_new_privs");
    // Network: the host's loopback listener is out of reach; only lo exists.
    assert_ne!(
        field(&out, "tcp_connect"),
        "ok",
        "{backend:?}: reached the host's 127.0.0.1"
    );
    assert_eq!(field(&out, "interfaces"), "lo", "{backend:?}");
    assert_ne!(field(&out, "vsock"), "ok", "{backend:?}: vsock");
    // Filesystem.
    assert_ne!(field(&out, "write_root"), "ok", "{backend:?}: wrote to /");
    assert_ne!(
        field(&out, "write_self"),
        "ok",
        "{backend:?}: opened its own executable for writing"
    );
    assert_ne!(
        field(&out, "chmod_self"),
        "ok",
        "{backend:?}: chmod of its own executable"
    );
    assert_eq!(
        field(&out, "tmp_entries"),
        "0",
        "{backend:?}: /tmp not empty"
    );
    assert_eq!(
        field(&out, "tmp_write"),
        "ok",
        "{backend:?}: /tmp not writable"
    );
    // Processes: only the sandbox's own (native: init and the tool; runsc: the tool).
    let procs: u32 = field(&out, "processes").parse().unwrap();
    assert!(procs <= 2, "{backend:?}: {procs} processes visible");
    // Secrets: the 0600 key set, and the world-readable config, armory and state files
    // that only masking hides; the control file next to them is readable.
    for secret in [
        keys,
        config,
        armory_blob.to_str().unwrap(),
        replay.to_str().unwrap(),
    ] {
        let v = field(&out, &format!("secret {secret}"));
        assert_ne!(v, "LEAKED", "{backend:?}: read {secret}");
    }
    assert_eq!(
        field(&out, &format!("secret {}", public.display())),
        "LEAKED",
        "{backend:?}: the control file must be readable, or this test proves nothing"
    );
    // Terminal injection and new namespaces.
    assert_ne!(field(&out, "tiocsti_stdin"), "ok", "{backend:?}");
    assert_ne!(field(&out, "tiocsti_pty"), "ok", "{backend:?}");
    assert_ne!(
        field(&out, "dev_tty"),
        "ok",
        "{backend:?}: a controlling terminal"
    );
    assert_ne!(
        field(&out, "unshare_user"),
        "ok",
        "{backend:?}: created a user namespace"
    );
    if backend == BackendChoice::Native {
        assert_eq!(
            field(&out, "tiocsti_stdin"),
            "EPERM",
            "native: TIOCSTI must be refused by seccomp"
        );
    }
    // The posture record says what was in force.
    let p = &o.posture;
    assert_eq!(p.uid, 65534);
    assert!(p.capabilities.is_empty() && p.no_new_privs && p.read_only_root);
    match backend {
        BackendChoice::Native => {
            assert_eq!(
                (p.backend.as_str(), p.seccomp.as_str(), p.network.as_str()),
                ("native", "filter", "none")
            );
            for ns in ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"] {
                assert!(
                    p.namespaces.iter().any(|n| n == ns),
                    "native: {ns} missing from {:?}",
                    p.namespaces
                );
            }
        }
        _ => assert_eq!(
            (p.backend.as_str(), p.seccomp.as_str(), p.network.as_str()),
            ("runsc", "gvisor", "loopback-only")
        ),
    }
    assert_eq!(
        p.apparmor, "unavailable",
        "this kernel has no AppArmor and the policy relaxed it"
    );
    drop(listener);
}

#[test]
fn native_probe_sees_an_unprivileged_isolated_world() {
    posture_probe(BackendChoice::Native);
}

#[test]
fn runsc_probe_sees_an_unprivileged_isolated_world() {
    posture_probe(BackendChoice::Runsc);
}

#[test]
fn required_apparmor_on_a_kernel_without_it_refuses_the_task() {
    let world = World::new();
    let host = HostSupport::probe(None);
    for backend in BACKENDS {
        let mut policy = world.policy(backend);
        policy.apparmor = Requirement::Required;
        let result = sandbox::run(&policy, world.launch(&["exit", "0"], RunLimits::default()));
        match &host.apparmor {
            AppArmor::Unavailable(_) => {
                let refusal = result
                    .expect_err("must refuse")
                    .refusal()
                    .expect("a refusal, not a failure");
                assert_eq!(refusal.reason, Reason::ApparmorUnavailable, "{backend:?}");
                assert!(
                    refusal.message.contains("if-available"),
                    "{}",
                    refusal.message
                );
            }
            AppArmor::Enabled { .. } => {
                let profile = if backend == BackendChoice::Native {
                    &policy.apparmor_profile
                } else {
                    &policy.apparmor_runsc_profile
                };
                if !host.apparmor_profile_loaded(profile) {
                    assert_eq!(
                        result.unwrap_err().refusal().unwrap().reason,
                        Reason::ApparmorUnavailable
                    );
                } else {
                    assert_eq!(
                        result.unwrap().posture.apparmor,
                        format!("enforced:{profile}")
                    );
                }
            }
        }
        assert!(host_processes_with(&world.marker).is_empty());
    }
}

#[test]
fn cli_exec_maps_outcomes_to_exit_codes() {
    require_root();
    let world = World::new();
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
    let exe = env!("CARGO_BIN_EXE_edge-runner");
    let run = |extra: &[&str], args: &[&str]| {
        std::process::Command::new(exe)
            .arg("--config")
            .arg(&config)
            .args(["sandbox", "exec"])
            .args(extra)
            .arg("--")
            .arg(probe())
            .args(args)
            .output()
            .unwrap()
    };
    for backend in ["native", "runsc"] {
        let ok = run(&["--backend", backend], &["exit", "0"]);
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{backend}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
        assert!(String::from_utf8_lossy(&ok.stderr).contains(&format!("backend={backend}")));
        let failed = run(&["--backend", backend], &["exit", "7"]);
        assert_eq!(failed.status.code(), Some(1), "{backend}");
        let refused = run(
            &["--backend", backend, "--apparmor", "required"],
            &["exit", "0"],
        );
        if !Path::new("/sys/module/apparmor").exists() {
            assert_eq!(refused.status.code(), Some(3), "{backend}");
            assert!(String::from_utf8_lossy(&refused.stderr).contains("apparmor_unavailable"));
        }
    }
    let help = std::process::Command::new(exe)
        .args(["sandbox", "exec", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("VERIFIES NOTHING"));
    world.assert_clean(BackendChoice::Native);
}
