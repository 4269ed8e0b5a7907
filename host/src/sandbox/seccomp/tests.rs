//! The filters are run through a small classic-BPF interpreter against hand-made
//! `seccomp_data`, so every rule is checked without installing anything.
use super::*;

const RET_ERRNO: u32 = 0x0005_0000;
const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;

fn eval(prog: &[sock_filter], data: &[u8; 64]) -> u32 {
    let word = |off: u32| {
        let o = off as usize;
        u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let ins = &prog[pc];
        match ins.code {
            0x20 => acc = word(ins.k),
            0x54 => acc &= ins.k,
            0x06 => return ins.k,
            0x05 => {
                pc += ins.k as usize;
            }
            c if c & 0x07 == 0x05 => {
                let taken = match c & 0xf0 {
                    0x10 => acc == ins.k,
                    0x20 => acc > ins.k,
                    0x30 => acc >= ins.k,
                    0x40 => acc & ins.k != 0,
                    other => panic!("unsupported jump {other:#x}"),
                };
                pc += if taken { ins.jt } else { ins.jf } as usize;
            }
            other => panic!("unsupported opcode {other:#x}"),
        }
        pc += 1;
    }
}

/// Most severe verdict over all programs, as the kernel does.
fn verdict(arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let rank = |v: u32| match v & 0xffff_0000 {
        0x8000_0000 => 0,
        0x0005_0000 => 3,
        0x7fff_0000 => 9,
        _ => 5,
    };
    // The kernel's order: the last installed program first; a verdict replaces the one
    // kept only when strictly more severe.
    let mut kept = SECCOMP_RET_ALLOW;
    for p in programs(&[]).unwrap().0.iter().rev() {
        let v = eval(p, &data);
        if rank(v) < rank(kept) {
            kept = v;
        }
    }
    kept
}

fn native(nr: i64, args: [u64; 6]) -> u32 {
    verdict(AUDIT_ARCH_X86_64, nr, args)
}

const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

#[test]
fn ordinary_calls_are_allowed() {
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_execve,
        libc::SYS_openat,
        libc::SYS_exit_group,
    ] {
        assert_eq!(native(nr, [0; 6]), SECCOMP_RET_ALLOW, "syscall {nr}");
    }
    assert_eq!(
        native(libc::SYS_ioctl, [1, libc::TCGETS, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        native(libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    let thread = (libc::CLONE_VM
        | libc::CLONE_THREAD
        | libc::CLONE_SIGHAND
        | libc::CLONE_FS
        | libc::CLONE_FILES) as u64;
    assert_eq!(
        native(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        native(libc::SYS_socket, [libc::AF_INET as u64, 1, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        native(libc::SYS_prctl, [libc::PR_SET_NAME as u64, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        native(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
    assert_eq!(
        native(libc::SYS_personality, [0, 0, 0, 0, 0, 0]),
        SECCOMP_RET_ALLOW
    );
}

#[test]
fn escape_and_attack_surface_calls_are_refused() {
    for nr in [
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
    ] {
        assert_eq!(native(nr, [0; 6]), EPERM, "syscall {nr}");
    }
}

#[test]
fn terminal_injection_is_refused_even_with_high_bits() {
    assert_eq!(native(libc::SYS_ioctl, [0, TIOCSTI, 0, 0, 0, 0]), EPERM);
    assert_eq!(native(libc::SYS_ioctl, [0, TIOCLINUX, 0, 0, 0, 0]), EPERM);
    assert_eq!(
        native(libc::SYS_ioctl, [0, TIOCSTI | (1 << 32), 0, 0, 0, 0]),
        EPERM
    );
}

#[test]
fn namespaces_vsock_and_pdeathsig_are_refused() {
    for flag in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ] {
        let flags = flag as u64 | libc::SIGCHLD as u64;
        assert_eq!(
            native(libc::SYS_clone, [flags, 0, 0, 0, 0, 0]),
            EPERM,
            "flag {flag:#x}"
        );
    }
    assert_eq!(
        native(libc::SYS_socket, [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0]),
        EPERM
    );
    assert_eq!(
        native(
            libc::SYS_prctl,
            [libc::PR_SET_PDEATHSIG as u64, 0, 0, 0, 0, 0]
        ),
        EPERM
    );
    // ADDR_NO_RANDOMIZE
    assert_eq!(
        native(libc::SYS_personality, [0x0040000, 0, 0, 0, 0, 0]),
        EPERM
    );
}

#[test]
fn clone3_says_enosys_so_libc_falls_back_to_clone() {
    assert_eq!(
        native(libc::SYS_clone3, [0; 6]),
        RET_ERRNO | libc::ENOSYS as u32
    );
}

#[test]
fn foreign_abis_are_killed() {
    assert_eq!(
        verdict(AUDIT_ARCH_I386, 1, [0; 6]),
        SECCOMP_RET_KILL_PROCESS
    );
    // x32 ptrace: 0x40000000 | 521
    assert_eq!(native(0x4000_0000 | 521, [0; 6]), SECCOMP_RET_KILL_PROCESS);
    assert_eq!(native(0x4000_0000, [0; 6]), SECCOMP_RET_KILL_PROCESS);
}

#[test]
fn oci_section_mirrors_the_table() {
    let s = oci_section().unwrap();
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActAllow);
    let calls = s.syscalls().as_ref().unwrap();
    let names: Vec<_> = calls.iter().flat_map(|c| c.names().clone()).collect();
    for n in [
        "ptrace",
        "mount",
        "unshare",
        "setns",
        "bpf",
        "keyctl",
        "io_uring_setup",
        "ioctl",
        "clone3",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing");
    }
    let tiocsti = calls
        .iter()
        .find(|c| {
            c.names()[0] == "ioctl" && c.args().as_ref().unwrap()[0].value_two() == Some(TIOCSTI)
        })
        .unwrap();
    assert_eq!(tiocsti.errno_ret(), Some(libc::EPERM as u32));
    let clone3 = calls.iter().find(|c| c.names()[0] == "clone3").unwrap();
    assert_eq!(clone3.errno_ret(), Some(libc::ENOSYS as u32));
}

const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

#[test]
fn calls_outside_the_allow_list_get_enosys() {
    for nr in [
        libc::SYS_modify_ldt,
        libc::SYS_sethostname,
        libc::SYS_migrate_pages,
        libc::SYS_fanotify_mark,
        libc::SYS_seccomp,
        libc::SYS_clone3,
        // A number no kernel has assigned yet.
        999,
    ] {
        assert_eq!(native(nr, [0; 6]), ENOSYS, "syscall {nr}");
    }
}

#[test]
fn the_deny_table_wins_over_the_allow_list() {
    // Not on the allow list, on the deny table: EPERM, not ENOSYS.
    assert_eq!(native(libc::SYS_ptrace, [0; 6]), EPERM);
    // On the allow list, refused by argument.
    assert_eq!(native(libc::SYS_ioctl, [0, TIOCSTI, 0, 0, 0, 0]), EPERM);
}

#[test]
fn the_allow_list_is_known_and_never_names_a_denied_call() {
    let denied: Vec<_> = table()
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.when, When::Always))
        .map(|e| e.name)
        .collect();
    for name in allowed_syscalls() {
        assert!(names::number(name).is_some(), "{name} is not a known call");
        assert!(!denied.contains(name), "{name} is allowed and denied");
    }
    let mut sorted = allowed_syscalls().to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), allowed_syscalls().len(), "duplicates");
}

#[test]
fn an_operator_extension_is_checked_and_widens_the_list() {
    let unknown = check_extra(&["open_treee".into()]).unwrap_err();
    assert!(matches!(unknown, SeccompError::UnknownName(ref n) if n == "open_treee"));
    assert!(unknown.to_string().contains("not an x86-64 system call"));
    let denied = check_extra(&["ptrace".into()]).unwrap_err();
    assert!(matches!(denied, SeccompError::DeniedName(_)), "{denied}");
    assert_eq!(
        check_extra(&[
            "sethostname".into(),
            "modify_ldt".into(),
            "modify_ldt".into()
        ])
        .unwrap(),
        vec!["modify_ldt".to_owned(), "sethostname".to_owned()]
    );
    let widened = programs(&["modify_ldt".into()]).unwrap();
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(libc::SYS_modify_ldt as u32).to_le_bytes());
    data[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    assert!(
        widened
            .0
            .iter()
            .all(|p| eval(p, &data) == SECCOMP_RET_ALLOW)
    );
    // Compiled once: the same extension gets the same programs.
    assert!(Arc::ptr_eq(
        &widened,
        &programs(&["modify_ldt".into()]).unwrap()
    ));
}
