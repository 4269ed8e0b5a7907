//! The OCI bundle (`config.json`) for one runsc run, built with the `oci-spec` crate: a
//! read-only root, the tool bind-mounted read-only at `/run/edge-runner/tool`, a private
//! size-capped `/tmp`, an empty read-only `/sys` and `/run`, masked paths covered, every
//! capability set empty, no_new_privs, an unprivileged uid/gid with no supplementary
//! groups, new pid/ipc/uts/mount/network namespaces, rlimits, the AppArmor profile name
//! and the seccomp deny table. It only builds the document; `runsc/mod.rs` runs it.

use super::super::plan::Plan;
use super::super::policy::{RunLimits, SandboxPolicy};
use super::super::view::{Mask, TOOL_PATH};
use oci_spec::runtime::{
    Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::path::{Path, PathBuf};

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("failed to build the OCI bundle")]
    Oci(#[from] oci_spec::OciSpecError),
    #[error("failed to build the OCI bundle's seccomp section")]
    Seccomp(#[from] super::super::seccomp::SeccompError),
}

/// The namespaces the bundle asks for (and the posture reports).
pub(crate) const NAMESPACES: &[(LinuxNamespaceType, &str)] = &[
    (LinuxNamespaceType::Pid, "pid"),
    (LinuxNamespaceType::Ipc, "ipc"),
    (LinuxNamespaceType::Uts, "uts"),
    (LinuxNamespaceType::Mount, "mount"),
    (LinuxNamespaceType::Network, "net"),
];

/// Inputs of one bundle.
#[derive(Debug)]
pub(crate) struct BundleInput<'a> {
    pub policy: &'a SandboxPolicy,
    pub plan: &'a Plan,
    pub tool: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub limits: &'a RunLimits,
    pub masks: &'a [Mask],
    /// An empty file, mode 0000, that stands in for masked files.
    pub masked_file: &'a Path,
}

fn mount(
    dest: &str,
    typ: &str,
    source: impl Into<PathBuf>,
    options: &[&str],
) -> Result<Mount, BundleError> {
    Ok(MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source.into())
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// Builds the spec.
pub(crate) fn build(input: &BundleInput<'_>) -> Result<Spec, BundleError> {
    let namespaces = NAMESPACES
        .iter()
        .map(|(typ, _)| LinuxNamespaceBuilder::default().typ(*typ).build())
        .collect::<Result<Vec<_>, _>>()?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(oci_spec::runtime::get_default_maskedpaths())
        .readonly_paths(oci_spec::runtime::get_default_readonly_paths());
    if input.plan.seccomp {
        linux = linux.seccomp(super::super::seccomp::oci_section()?);
    }
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(input.policy.rootfs.clone())
                .readonly(true)
                .build()?,
        )
        .hostname("sandbox")
        .process(process(input)?)
        .mounts(mounts(input)?)
        .linux(linux.build()?)
        .build()?)
}

/// The tool's process: argv, environment, identity, no capabilities, rlimits.
fn process(input: &BundleInput<'_>) -> Result<oci_spec::runtime::Process, BundleError> {
    let p = input.policy;
    let l = input.limits;
    let none = Capabilities::new();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(none.clone())
        .effective(none.clone())
        .inheritable(none.clone())
        .permitted(none.clone())
        .ambient(none)
        .build()?;
    let rlimit = |typ, value: u64| {
        PosixRlimitBuilder::default()
            .typ(typ)
            .hard(value)
            .soft(value)
            .build()
    };
    let rlimits = vec![
        rlimit(PosixRlimitType::RlimitCpu, l.cpu_seconds())?,
        rlimit(PosixRlimitType::RlimitAs, l.address_space_bytes)?,
        rlimit(PosixRlimitType::RlimitNofile, l.open_files)?,
        rlimit(PosixRlimitType::RlimitNproc, l.max_processes)?,
        rlimit(PosixRlimitType::RlimitFsize, l.file_size_bytes)?,
        rlimit(PosixRlimitType::RlimitCore, 0)?,
    ];
    let mut args = vec![TOOL_PATH.to_owned()];
    args.extend(input.args.iter().cloned());
    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(p.uid)
                .gid(p.gid)
                .additional_gids(Vec::<u32>::new())
                .build()?,
        )
        .args(args)
        .env(
            input
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )
        .cwd("/")
        .capabilities(capabilities)
        .no_new_privileges(true)
        .rlimits(rlimits);
    if let Some(profile) = &input.plan.apparmor_profile {
        // runsc ignores this (with a warning); the runner confines runsc itself too.
        process = process.apparmor_profile(p.apparmor_profile.clone());
        let _ = profile;
    }
    Ok(process.build()?)
}

/// The view: procfs, a minimal /dev, empty /sys and /run, private /tmp, the tool, masks.
fn mounts(input: &BundleInput<'_>) -> Result<Vec<Mount>, BundleError> {
    let p = input.policy;
    let (size, uid, gid) = (
        format!("size={}", p.tmp_bytes),
        format!("uid={}", p.uid),
        format!("gid={}", p.gid),
    );
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "nodev", "noexec"])?,
        mount("/dev", "tmpfs", "tmpfs", &["nosuid", "noexec", "mode=755"])?,
        mount(
            "/sys",
            "tmpfs",
            "tmpfs",
            &["ro", "nosuid", "nodev", "noexec", "mode=555"],
        )?,
        mount(
            "/tmp",
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", &size, "mode=700", &uid, &gid],
        )?,
        mount(
            "/run",
            "tmpfs",
            "tmpfs",
            &["ro", "nosuid", "nodev", "noexec", "mode=755"],
        )?,
        mount(
            TOOL_PATH,
            "bind",
            input.tool,
            &["rbind", "ro", "nosuid", "nodev"],
        )?,
    ];
    for m in input.masks {
        let dest = m.path.to_string_lossy();
        mounts.push(if m.dir {
            mount(
                &dest,
                "tmpfs",
                "tmpfs",
                &["ro", "nosuid", "nodev", "noexec", "mode=000"],
            )?
        } else {
            mount(
                &dest,
                "bind",
                input.masked_file,
                &["bind", "ro", "nosuid", "nodev", "noexec"],
            )?
        });
    }

    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::plan::Backend;

    fn input_spec(apparmor: bool, seccomp: bool) -> serde_json::Value {
        let policy = SandboxPolicy::default();
        let plan = Plan {
            backend: Backend::Runsc {
                binary: "/usr/bin/runsc".into(),
            },
            apparmor_profile: apparmor.then(|| "edge-runner-runsc".to_owned()),
            apparmor_absent: "off",
            seccomp,
            landlock: None,
            landlock_absent: "gvisor",
            cgroups: true,
        };
        let masks = [
            Mask {
                path: "/etc/er/keys.json".into(),
                dir: false,
            },
            Mask {
                path: "/var/lib/er".into(),
                dir: true,
            },
        ];
        let spec = build(&BundleInput {
            policy: &policy,
            plan: &plan,
            tool: Path::new("/var/lib/er/armory/blob"),
            args: &["--flag".to_owned()],
            env: &[("PATH".to_owned(), "/usr/bin".to_owned())],
            limits: &RunLimits::default(),
            masks: &masks,
            masked_file: Path::new("/var/lib/er/sandbox/runs/x/masked"),
        })
        .unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    #[test]
    fn process_runs_unprivileged_with_no_capabilities() {
        let v = input_spec(true, true);
        let p = &v["process"];
        assert_eq!(p["user"]["uid"], 65534);
        assert_eq!(p["user"]["gid"], 65534);
        assert_eq!(p["user"]["additionalGids"], serde_json::json!([]));
        for set in [
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ] {
            assert_eq!(p["capabilities"][set], serde_json::json!([]), "{set}");
        }
        assert_eq!(p["noNewPrivileges"], true);
        assert_eq!(p["terminal"], false);
        assert_eq!(p["args"], serde_json::json!([TOOL_PATH, "--flag"]));
        assert_eq!(p["env"], serde_json::json!(["PATH=/usr/bin"]));
        assert_eq!(p["apparmorProfile"], "edge-runner-tool");
        let rl: Vec<_> = p["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap().to_owned(),
                    r["hard"].as_u64().unwrap(),
                )
            })
            .collect();
        assert!(rl.contains(&("RLIMIT_CORE".to_owned(), 0)));
        assert!(rl.contains(&("RLIMIT_NPROC".to_owned(), 64)));
        for t in ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE"] {
            assert!(rl.iter().any(|(n, _)| n == t), "{t}");
        }
    }

    #[test]
    fn filesystem_is_read_only_with_private_tmp_and_masks() {
        let v = input_spec(false, false);
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["root"]["path"], "/");
        let mounts = v["mounts"].as_array().unwrap();
        let find = |d: &str| {
            mounts
                .iter()
                .find(|m| m["destination"] == d)
                .unwrap_or_else(|| panic!("{d}"))
        };
        let tool = find(TOOL_PATH);
        assert_eq!(tool["source"], "/var/lib/er/armory/blob");
        assert!(tool["options"].as_array().unwrap().contains(&"ro".into()));
        let tmp = find("/tmp");
        assert_eq!(tmp["type"], "tmpfs");
        assert!(
            tmp["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "size=67108864")
        );
        assert!(
            find("/sys")["options"]
                .as_array()
                .unwrap()
                .contains(&"ro".into())
        );
        let key = find("/etc/er/keys.json");
        assert_eq!(key["source"], "/var/lib/er/sandbox/runs/x/masked");
        assert!(key["options"].as_array().unwrap().contains(&"ro".into()));
        assert_eq!(find("/var/lib/er")["type"], "tmpfs");
        assert!(v["process"].get("apparmorProfile").is_none());
        assert!(v["linux"].get("seccomp").is_none());
    }

    #[test]
    fn linux_section_has_fresh_namespaces_and_the_deny_table() {
        let v = input_spec(false, true);
        let ns: Vec<_> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap().to_owned())
            .collect();
        for want in ["pid", "ipc", "uts", "mount", "network"] {
            assert!(ns.iter().any(|n| n == want), "{want}");
        }
        assert!(
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n.get("path").is_none())
        );
        let sc = &v["linux"]["seccomp"];
        assert_eq!(sc["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(
            sc["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["names"][0] == "ptrace" && s["action"] == "SCMP_ACT_ERRNO")
        );
    }
}
