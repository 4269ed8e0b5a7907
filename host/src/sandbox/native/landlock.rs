//! The native sandbox's Landlock ruleset: a second filesystem layer under the mount view,
//! built in the parent with the `landlock` crate (allocation is fine here) and applied by
//! `init` in the child, which adds the one rule only it can (its private `/tmp`, which
//! does not exist before the clone) and calls `landlock_restrict_self` through `sys`.
//!
//! What the domain allows: read the whole view; execute only the tool and the programs
//! and libraries under `landlock_exec` (the dynamic loader, interpreters, the utilities a
//! script runs); write, create and remove only beneath `/tmp`; write and ioctl the
//! harmless devices (`/dev/null`, ...). With ABI 4+ no TCP bind or connect; with ABI 6+
//! no abstract Unix socket and no signal outside the sandbox. Rules name inodes, so a rule
//! made on a host path holds for the same inode bind-mounted into the view.

use super::super::view::under;
use ::landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The newest ABI whose rights the ruleset handles (6: scopes). A newer kernel enforces
/// these same rights.
const TARGET_ABI: i32 = 6;

/// Devices of the view a tool may write (and `isatty` on).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Why the ruleset could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LandlockError {
    #[error("failed to build the Landlock ruleset")]
    Ruleset(#[source] ::landlock::RulesetError),
    #[error("failed to open {} for a Landlock rule", path.display())]
    Path {
        path: PathBuf,
        #[source]
        source: ::landlock::PathFdError,
    },
    #[error("the kernel did not create a Landlock ruleset (is Landlock enabled?)")]
    NotCreated,
}

/// A ruleset ready for the child.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub ruleset: OwnedFd,
    /// The rights the child grants beneath its `/tmp` (raw `LANDLOCK_ACCESS_FS_*` bits,
    /// all handled by the ruleset).
    pub tmp_access: u64,
}

/// The rights beneath `/tmp` under `abi`: everything but executing and making devices.
fn tmp_access(abi: ABI) -> BitFlags<AccessFs> {
    AccessFs::from_all(abi) & !(AccessFs::Execute | AccessFs::MakeChar | AccessFs::MakeBlock)
}

/// Builds the ruleset for one run. `kernel_abi` is the probed ABI (at least 1), `tool` the
/// verified executable (the very inode the view shows at the tool's path).
pub(crate) fn prepare(
    kernel_abi: i32,
    rootfs: &Path,
    tool: &std::fs::File,
    exec_dirs: &[PathBuf],
) -> Result<Prepared, LandlockError> {
    let abi = ABI::from(kernel_abi.min(TARGET_ABI));
    let all = AccessFs::from_all(abi);
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let err = LandlockError::Ruleset;
    // Hard requirement: a right the kernel cannot enforce is an error, never dropped.
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(err)?;
    if kernel_abi >= 4 {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(err)?;
    }
    if kernel_abi >= 6 {
        ruleset = ruleset.scope(Scope::from_all(abi)).map_err(err)?;
    }
    let open = |path: &Path| {
        PathFd::new(path).map_err(|source| LandlockError::Path {
            path: path.to_owned(),
            source,
        })
    };
    let mut created = ruleset
        .create()
        .map_err(err)?
        .add_rule(PathBeneath::new(open(rootfs)?, read))
        .map_err(err)?
        .add_rule(PathBeneath::new(
            tool.as_fd(),
            AccessFs::Execute | AccessFs::ReadFile,
        ))
        .map_err(err)?;
    for dir in exec_dirs {
        let path = under(rootfs, dir);
        if path.is_dir() {
            created = created
                .add_rule(PathBeneath::new(open(&path)?, read | AccessFs::Execute))
                .map_err(err)?;
        }
    }
    let device =
        (AccessFs::WriteFile | AccessFs::ReadFile | AccessFs::Truncate | AccessFs::IoctlDev)
            & AccessFs::from_file(abi);
    for dev in DEVICES {
        created = created
            .add_rule(PathBeneath::new(open(Path::new(dev))?, device))
            .map_err(err)?;
    }
    let ruleset: Option<OwnedFd> = created.into();
    Ok(Prepared {
        ruleset: ruleset.ok_or(LandlockError::NotCreated)?,
        tmp_access: tmp_access(abi).bits(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_rights_never_include_execute_or_devices() {
        for n in 1..=TARGET_ABI {
            let a = tmp_access(ABI::from(n));
            assert!(!a.contains(AccessFs::Execute), "abi {n}");
            assert!(
                !a.contains(AccessFs::MakeBlock | AccessFs::MakeChar),
                "abi {n}"
            );
            assert!(a.contains(AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile));
            // Every right granted is handled, or the kernel would refuse the rule.
            assert_eq!(a & !AccessFs::from_all(ABI::from(n)), BitFlags::EMPTY);
        }
    }
}
