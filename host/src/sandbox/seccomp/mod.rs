//! The native backend's seccomp policy, and the runsc one. Native: an **allow list**
//! (`allow`): a call outside it gets ENOSYS, so libc falls back to an older call; on top,
//! a deny table of known-dangerous calls and arguments gets EPERM (ptrace, new namespaces,
//! mounts, keyrings, io_uring, BPF, terminal injection, vsock, ...), and foreign syscall
//! ABIs (i386, x32) kill the process. runsc: the deny table as an OCI `linux.seccomp`
//! section loaded inside gVisor with `--oci-seccomp` (gVisor implements its own syscall
//! table; its host-side filter is its own). This module builds the filters, once per
//! process and operator extension; the native `init` installs them, last, just before
//! exec.

mod allow;
mod names;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Why a filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// seccompiler could not compile the filter.
    #[error("failed to compile the seccomp filter")]
    Compile(#[source] seccompiler::BackendError),
    /// The OCI seccomp section for runsc could not be built.
    #[error("failed to build the OCI seccomp section")]
    Oci(#[source] oci_spec::OciSpecError),
    /// There is no rule table for this CPU architecture (named).
    #[error("no seccomp rule table for this architecture ({0})")]
    UnsupportedArch(&'static str),
    /// `sandbox.seccomp_allow` names a system call this runner does not know.
    #[error(
        "sandbox.seccomp_allow names {0:?}, which is not an x86-64 system call this runner \
         knows; use the names of syscalls(2) (`edge-runner sandbox check` lists the allow list)"
    )]
    UnknownName(String),
    /// `sandbox.seccomp_allow` names a system call the deny table refuses.
    #[error(
        "sandbox.seccomp_allow names {0:?}, which the deny table refuses (an escape or attack \
         surface no tool may reach); remove it"
    )]
    DeniedName(String),
}

/// What a matching call gets back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deny {
    /// EPERM: the call is refused.
    Perm,
    /// ENOSYS: the call "does not exist", so libc falls back to an older call that the
    /// filter can inspect (clone3 passes its flags in memory, out of seccomp's reach).
    NoSys,
}

/// When an entry applies.
#[derive(Debug, Clone, Copy)]
enum When {
    Always,
    /// The low 32 bits of argument `arg` equal `value` (ioctl requests are 32-bit in the
    /// kernel; comparing 64 bits would let `TIOCSTI | 1 << 32` through).
    ArgIs {
        arg: u8,
        value: u64,
    },
    /// Any of the bits in `mask` is set in the low 32 bits of argument `arg`.
    AnyBit {
        arg: u8,
        mask: u64,
    },
    /// The low 32 bits of argument `arg` are none of `allowed`.
    NotOneOf {
        arg: u8,
        allowed: &'static [u64],
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    name: &'static str,
    nr: i64,
    when: When,
    deny: Deny,
}

macro_rules! always {
    ($($name:ident),* $(,)?) => {
        [$(Entry { name: stringify!($name), nr: paste_nr!($name), when: When::Always, deny: Deny::Perm }),*]
    };
}

macro_rules! paste_nr {
    ($name:ident) => {
        syscall_nr::$name
    };
}

#[cfg(target_arch = "x86_64")]
#[allow(non_upper_case_globals)]
mod syscall_nr {
    pub const ptrace: i64 = libc::SYS_ptrace;
    pub const process_vm_readv: i64 = libc::SYS_process_vm_readv;
    pub const process_vm_writev: i64 = libc::SYS_process_vm_writev;
    pub const mount: i64 = libc::SYS_mount;
    pub const umount2: i64 = libc::SYS_umount2;
    pub const pivot_root: i64 = libc::SYS_pivot_root;
    pub const chroot: i64 = libc::SYS_chroot;
    pub const move_mount: i64 = libc::SYS_move_mount;
    pub const open_tree: i64 = libc::SYS_open_tree;
    pub const fsopen: i64 = libc::SYS_fsopen;
    pub const fsconfig: i64 = libc::SYS_fsconfig;
    pub const fsmount: i64 = libc::SYS_fsmount;
    pub const fspick: i64 = libc::SYS_fspick;
    pub const mount_setattr: i64 = libc::SYS_mount_setattr;
    pub const unshare: i64 = libc::SYS_unshare;
    pub const setns: i64 = libc::SYS_setns;
    pub const kexec_load: i64 = libc::SYS_kexec_load;
    pub const kexec_file_load: i64 = libc::SYS_kexec_file_load;
    pub const bpf: i64 = libc::SYS_bpf;
    pub const perf_event_open: i64 = libc::SYS_perf_event_open;
    pub const keyctl: i64 = libc::SYS_keyctl;
    pub const add_key: i64 = libc::SYS_add_key;
    pub const request_key: i64 = libc::SYS_request_key;
    pub const io_uring_setup: i64 = libc::SYS_io_uring_setup;
    pub const io_uring_enter: i64 = libc::SYS_io_uring_enter;
    pub const io_uring_register: i64 = libc::SYS_io_uring_register;
    pub const userfaultfd: i64 = libc::SYS_userfaultfd;
    pub const init_module: i64 = libc::SYS_init_module;
    pub const finit_module: i64 = libc::SYS_finit_module;
    pub const delete_module: i64 = libc::SYS_delete_module;
    pub const reboot: i64 = libc::SYS_reboot;
    pub const swapon: i64 = libc::SYS_swapon;
    pub const swapoff: i64 = libc::SYS_swapoff;
    pub const acct: i64 = libc::SYS_acct;
    pub const settimeofday: i64 = libc::SYS_settimeofday;
    pub const clock_settime: i64 = libc::SYS_clock_settime;
    pub const clock_adjtime: i64 = libc::SYS_clock_adjtime;
    pub const adjtimex: i64 = libc::SYS_adjtimex;
    pub const syslog: i64 = libc::SYS_syslog;
    pub const quotactl: i64 = libc::SYS_quotactl;
    pub const lookup_dcookie: i64 = libc::SYS_lookup_dcookie;
    pub const open_by_handle_at: i64 = libc::SYS_open_by_handle_at;
    pub const name_to_handle_at: i64 = libc::SYS_name_to_handle_at;
    pub const iopl: i64 = libc::SYS_iopl;
    pub const ioperm: i64 = libc::SYS_ioperm;
    pub const uselib: i64 = libc::SYS_uselib;
    pub const vhangup: i64 = libc::SYS_vhangup;
    pub const kcmp: i64 = libc::SYS_kcmp;
    pub const fanotify_init: i64 = libc::SYS_fanotify_init;
    pub const pidfd_getfd: i64 = libc::SYS_pidfd_getfd;
    pub const process_madvise: i64 = libc::SYS_process_madvise;
    pub const ioctl: i64 = libc::SYS_ioctl;
    pub const clone: i64 = libc::SYS_clone;
    pub const clone3: i64 = libc::SYS_clone3;
    pub const socket: i64 = libc::SYS_socket;
    pub const prctl: i64 = libc::SYS_prctl;
    pub const personality: i64 = libc::SYS_personality;
}

/// `TIOCSTI` pushes bytes into a terminal's input queue (CVE-2017-5226 and many since);
/// `TIOCLINUX` can do the same through the console selection.
pub const TIOCSTI: u64 = 0x5412;
pub(crate) const TIOCLINUX: u64 = 0x541C;
/// Namespace flags of clone(2) (the low 32 bits the kernel reads).
const CLONE_NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;
/// vsock is not namespaced: a socket could reach the hypervisor's services (this very host
/// talks to its VMM over vsock) whatever the network namespace says.
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;
/// A tool must not clear the SIGKILL the runner asked for when it dies, or it could outlive
/// a crashed runner.
const PR_SET_PDEATHSIG: u64 = libc::PR_SET_PDEATHSIG as u64;
/// Personalities glibc and common tools use: PER_LINUX, PER_LINUX32, UNAME26 and the
/// query value. Others (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...) weaken the tool's own
/// hardening.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
fn table() -> Result<Vec<Entry>, SeccompError> {
    let mut v: Vec<Entry> = always![
        ptrace,
        process_vm_readv,
        process_vm_writev,
        mount,
        umount2,
        pivot_root,
        chroot,
        move_mount,
        open_tree,
        fsopen,
        fsconfig,
        fsmount,
        fspick,
        mount_setattr,
        unshare,
        setns,
        kexec_load,
        kexec_file_load,
        bpf,
        perf_event_open,
        keyctl,
        add_key,
        request_key,
        io_uring_setup,
        io_uring_enter,
        io_uring_register,
        userfaultfd,
        init_module,
        finit_module,
        delete_module,
        reboot,
        swapon,
        swapoff,
        acct,
        settimeofday,
        clock_settime,
        clock_adjtime,
        adjtimex,
        syslog,
        quotactl,
        lookup_dcookie,
        open_by_handle_at,
        name_to_handle_at,
        iopl,
        ioperm,
        uselib,
        vhangup,
        kcmp,
        fanotify_init,
        pidfd_getfd,
        process_madvise,
    ]
    .to_vec();
    let with = |name, nr, when| Entry {
        name,
        nr,
        when,
        deny: Deny::Perm,
    };
    use syscall_nr as n;
    v.push(with(
        "ioctl",
        n::ioctl,
        When::ArgIs {
            arg: 1,
            value: TIOCSTI,
        },
    ));
    v.push(with(
        "ioctl",
        n::ioctl,
        When::ArgIs {
            arg: 1,
            value: TIOCLINUX,
        },
    ));
    v.push(with(
        "clone",
        n::clone,
        When::AnyBit {
            arg: 0,
            mask: CLONE_NS_FLAGS,
        },
    ));
    v.push(with(
        "socket",
        n::socket,
        When::ArgIs {
            arg: 0,
            value: AF_VSOCK,
        },
    ));
    v.push(with(
        "prctl",
        n::prctl,
        When::ArgIs {
            arg: 0,
            value: PR_SET_PDEATHSIG,
        },
    ));
    v.push(with(
        "personality",
        n::personality,
        When::NotOneOf {
            arg: 0,
            allowed: PERSONALITIES,
        },
    ));
    v.push(Entry {
        name: "clone3",
        nr: n::clone3,
        when: When::Always,
        deny: Deny::NoSys,
    });
    Ok(v)
}

#[cfg(not(target_arch = "x86_64"))]
fn table() -> Result<Vec<Entry>, SeccompError> {
    Err(SeccompError::UnsupportedArch(std::env::consts::ARCH))
}

/// The system call names the filter refuses with EPERM (for `sandbox check` and
/// documentation).
pub fn denied_syscalls() -> Vec<&'static str> {
    let mut v: Vec<_> = table().unwrap_or_default().iter().map(|e| e.name).collect();
    v.dedup();
    v
}

/// The system call names the native allow list admits (some with the deny table's
/// argument conditions on top).
pub fn allowed_syscalls() -> &'static [&'static str] {
    allow::ALLOWED
}

/// Checks an operator's allow-list extension: every name must be a known x86-64 system
/// call and none one the deny table refuses outright. Returns the sorted, deduplicated
/// names (the posture's `seccomp_extra`).
pub fn check_extra(names: &[String]) -> Result<Vec<String>, SeccompError> {
    let table = table()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if names::number(name).is_none() {
            return Err(SeccompError::UnknownName(name.clone()));
        }
        if table
            .iter()
            .any(|e| e.name == name && matches!(e.when, When::Always))
        {
            return Err(SeccompError::DeniedName(name.clone()));
        }
        out.push(name.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The compiled programs, in the order they are installed: the ABI check, the deny table
/// (EPERM), the allow list (ENOSYS for the rest). The kernel runs every installed program
/// and keeps the most severe action (KILL > ERRNO > ALLOW); between two ERRNO verdicts the
/// first one evaluated (the most recently installed) wins. So the allow program lets the
/// deny table's calls through (ALLOW), and the deny table's EPERM stands for them; any
/// other call outside the list gets the allow program's ENOSYS. The allow list goes in
/// last because installing a filter is itself a system call it does not allow.
#[derive(Debug, Clone)]
pub(crate) struct Programs(pub Vec<BpfProgram>);

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, SeccompError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(SeccompError::Compile)
}

fn rules_for(when: When) -> Result<Vec<SeccompRule>, SeccompError> {
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(SeccompError::Compile);
    Ok(match when {
        When::Always => Vec::new(),
        When::ArgIs { arg, value } => vec![rule(vec![cond(arg, SeccompCmpOp::Eq, value)?])?],
        When::AnyBit { arg, mask } => (0..32)
            .map(|b| 1u64 << b)
            .filter(|bit| mask & bit != 0)
            .map(|bit| rule(vec![cond(arg, SeccompCmpOp::MaskedEq(bit), bit)?]))
            .collect::<Result<_, _>>()?,
        When::NotOneOf { arg, allowed } => vec![rule(
            allowed
                .iter()
                .map(|v| cond(arg, SeccompCmpOp::Ne, *v))
                .collect::<Result<_, _>>()?,
        )?],
    })
}

fn compile_deny(entries: &[Entry], deny: Deny) -> Result<BpfProgram, SeccompError> {
    // Rules of one call are alternatives; an unconditional entry (no rules) matches always.
    let mut rules: BTreeMap<i64, Option<Vec<SeccompRule>>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.deny == deny) {
        let r = rules_for(e.when)?;
        let slot = rules.entry(e.nr).or_insert_with(|| Some(Vec::new()));
        match (r.is_empty(), slot.as_mut()) {
            (true, _) => *slot = None,
            (false, Some(existing)) => existing.extend(r),
            (false, None) => {}
        }
    }
    let rules = rules
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let errno = match deny {
        Deny::Perm => libc::EPERM,
        Deny::NoSys => libc::ENOSYS,
    };
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        target_arch()?,
    )
    .map_err(SeccompError::Compile)?;
    filter.try_into().map_err(SeccompError::Compile)
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| SeccompError::UnsupportedArch(std::env::consts::ARCH))
}

// Classic BPF opcodes (<linux/bpf_common.h>) for the ABI program: BPF_LD|BPF_W|BPF_ABS,
// BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JGE|BPF_K.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JEQ_K: u16 = 0x15;
const BPF_JMP_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// x32 system calls are x86-64 calls with this bit set in the number: same `arch` value,
/// different numbers, so a deny list keyed on numbers would not see them.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Kills the process on any ABI other than native x86-64: i386 (`int 0x80`) and x32.
fn abi_program() -> BpfProgram {
    vec![
        stmt(BPF_LD_W_ABS, 4),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, 0),
        jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]
}

/// The native filter for the allow list widened by `extra` (names checked by
/// [`check_extra`]), compiled once per process and extension: a launch reuses it.
pub(crate) fn programs(extra: &[String]) -> Result<Arc<Programs>, SeccompError> {
    type Cache = Mutex<Vec<(Vec<String>, Arc<Programs>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let extra = check_extra(extra)?;
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(cached) = cache.lock()
        && let Some((_, p)) = cached.iter().find(|(k, _)| *k == extra)
    {
        return Ok(p.clone());
    }
    let compiled = Arc::new(compile(&extra)?);
    if let Ok(mut cached) = cache.lock() {
        cached.push((extra, compiled.clone()));
    }
    Ok(compiled)
}

fn compile(extra: &[String]) -> Result<Programs, SeccompError> {
    let entries = table()?;
    Ok(Programs(vec![
        abi_program(),
        compile_deny(&entries, Deny::Perm)?,
        compile_allow(&entries, extra)?,
    ]))
}

/// The allow list (plus `extra`, plus the deny table's calls, which the deny program
/// answers): ALLOW on a match, ENOSYS for anything else.
fn compile_allow(entries: &[Entry], extra: &[String]) -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.deny == Deny::Perm) {
        rules.insert(e.nr, Vec::new());
    }
    for name in allow::ALLOWED
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let nr = names::number(name).ok_or_else(|| SeccompError::UnknownName(name.to_owned()))?;
        rules.insert(nr, Vec::new());
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::ENOSYS as u32),
        SeccompAction::Allow,
        target_arch()?,
    )
    .map_err(SeccompError::Compile)?;
    filter.try_into().map_err(SeccompError::Compile)
}

/// The same table as an OCI `linux.seccomp` section (for runsc `--oci-seccomp`).
/// `personality` is left to gVisor, which implements only the plain Linux personality.
pub(crate) fn oci_section() -> Result<LinuxSeccomp, SeccompError> {
    let mut syscalls = Vec::new();
    for e in table()? {
        let (errno, action) = match e.deny {
            Deny::Perm => (libc::EPERM as u32, LinuxSeccompAction::ScmpActErrno),
            Deny::NoSys => (libc::ENOSYS as u32, LinuxSeccompAction::ScmpActErrno),
        };
        let arg = |index: u8, value: u64, op, value_two: Option<u64>| {
            let b = LinuxSeccompArgBuilder::default()
                .index(index as usize)
                .value(value)
                .op(op);
            match value_two {
                Some(v2) => b.value_two(v2).build(),
                None => b.build(),
            }
            .map_err(SeccompError::Oci)
        };
        let masked = LinuxSeccompOperator::ScmpCmpMaskedEq;
        let arg_sets: Vec<Vec<_>> = match e.when {
            When::Always => vec![Vec::new()],
            When::ArgIs { arg: i, value } => vec![vec![arg(i, 0xffff_ffff, masked, Some(value))?]],
            When::AnyBit { arg: i, mask } => (0..32)
                .map(|b| 1u64 << b)
                .filter(|bit| mask & bit != 0)
                .map(|bit| Ok(vec![arg(i, bit, masked, Some(bit))?]))
                .collect::<Result<_, SeccompError>>()?,
            When::NotOneOf { .. } => continue,
        };
        for args in arg_sets {
            let mut b = LinuxSyscallBuilder::default()
                .names(vec![e.name.to_string()])
                .action(action)
                .errno_ret(errno);
            if !args.is_empty() {
                b = b.args(args);
            }
            syscalls.push(b.build().map_err(SeccompError::Oci)?);
        }
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64])
        .syscalls(syscalls)
        .build()
        .map_err(SeccompError::Oci)
}

#[cfg(test)]
mod tests;
