//! The native backend's allow list: the system calls an ordinary tool makes (a dynamic
//! Debian ELF binary and its glibc, Python 3, a POSIX shell and its utilities, busybox),
//! measured against those tools by `tests/sandbox/seccomp.rs`. Everything else gets ENOSYS
//! (the call "does not exist", so libc falls back to an older one), the deny table's
//! entries EPERM. Data only; `super` compiles it.
//!
//! Left out on purpose (ENOSYS): calls no tool of that kind needs that widen the kernel
//! surface or reach outside the sandbox's own objects: `modify_ldt`, `sethostname`,
//! `setdomainname`, `migrate_pages` and `move_pages` (pages of other processes),
//! `fanotify_mark`, `remap_file_pages`, `memfd_secret`, `set_thread_area`
//! (i386 only), `_sysctl`, `sysfs`, `ustat`, `vserver` and the other obsolete slots,
//! `seccomp` (a tool cannot loosen the filter, but a nested filter needs no support
//! here), `clone3` (its flags live in memory out of the filter's reach; glibc falls
//! back to `clone`, which the deny table inspects). An operator widens the list per tool
//! with `[sandbox.seccomp_allow]` (docs/configuration.md).

/// Allowed unconditionally, or (for the names the deny table also lists with a
/// condition: `ioctl`, `clone`, `socket`, `prctl`, `personality`) allowed except for the
/// arguments the deny table refuses.
#[rustfmt::skip]
pub(super) const ALLOWED: &[&str] = &[
    // Memory.
    "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "mlock",
    "mlock2", "munlock", "mlockall", "munlockall", "membarrier", "pkey_mprotect", "pkey_alloc",
    "pkey_free", "get_mempolicy", "set_mempolicy", "mbind", "mseal",
    // Files and descriptors.
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek", "dup",
    "dup2", "dup3", "fcntl", "flock", "fsync", "fdatasync", "sync", "syncfs",
    "sync_file_range", "truncate", "ftruncate", "fallocate", "fadvise64", "readahead",
    "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "stat", "fstat", "lstat",
    "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
    "getdents", "getdents64", "getcwd", "chdir", "fchdir", "rename", "renameat", "renameat2",
    "mkdir", "mkdirat", "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink",
    "symlinkat", "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2",
    "chown", "fchown", "lchown", "fchownat", "umask", "utime", "utimes", "futimesat",
    "utimensat", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr",
    "lremovexattr", "fremovexattr", "pipe", "pipe2", "memfd_create", "ioctl",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    // Waiting and events.
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2", "signalfd",
    "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime", "io_setup",
    "io_destroy", "io_getevents", "io_submit", "io_cancel",
    // Processes, threads, signals.
    "clone", "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
    "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "pause", "restart_syscall",
    "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv", "rseq",
    "arch_prctl", "prctl", "personality", "gettid", "getpid", "getppid", "getpgid",
    "setpgid", "getpgrp", "getsid", "setsid", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "getcpu", "getrlimit", "setrlimit", "prlimit64", "getrusage",
    // Credentials (the tool holds no capabilities: these can only keep or drop ids).
    "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
    "setfsgid", "setgroups", "capget", "capset",
    // Time.
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "times", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
    "timer_gettime", "timer_getoverrun", "timer_delete",
    // System information and randomness.
    "uname", "sysinfo", "getrandom",
    // Sockets (the network namespace is empty; the deny table refuses vsock).
    "socket", "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown",
    "getsockname", "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom",
    "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    // SysV and POSIX IPC (the ipc namespace is the sandbox's own).
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
    // Landlock: a tool may restrict itself further, never less.
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
];
