//! Reading where the cgroup hierarchies are and which cgroup the runner is in:
//! `/proc/self/mounts` (whose paths escape space, tab, newline and backslash as octal,
//! `\040`) and `/proc/self/cgroup`. Parsing only; nothing here touches a cgroup.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::path::PathBuf;

/// One mount: its mount point (unescaped), filesystem type and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub dir: PathBuf,
    pub fstype: String,
    pub options: String,
}

/// Undoes the kernel's octal escapes of a mount path (`\040` is a space, `\134` a
/// backslash). A malformed escape is kept as written.
pub(crate) fn unescape(field: &str) -> PathBuf {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| {
            b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(OsString::from_vec(out))
}

/// The mounts listed in `text` (the format of `/proc/self/mounts`).
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_src, dir, fstype, options) = (f.next()?, f.next()?, f.next()?, f.next()?);
            Some(Mount {
                dir: unescape(dir),
                fstype: fstype.to_owned(),
                options: options.to_owned(),
            })
        })
        .collect()
}

/// The runner's cgroup v2 path (the `0::` line of `/proc/self/cgroup`), unescaped the
/// same way, relative to the hierarchy's root (`/` for the root itself).
pub(crate) fn own_v2_cgroup(text: &str) -> Option<PathBuf> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| PathBuf::from(p.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_mount_paths_are_unescaped() {
        assert_eq!(
            unescape(r"/mnt/with\040space"),
            PathBuf::from("/mnt/with space")
        );
        assert_eq!(unescape(r"/a\011tab\012nl"), PathBuf::from("/a\ttab\nnl"));
        assert_eq!(unescape(r"/back\134slash"), PathBuf::from(r"/back\slash"));
        // Not an escape: kept as written.
        assert_eq!(unescape(r"/odd\9x\04"), PathBuf::from(r"/odd\9x\04"));
        let m = parse("cgroup2 /sys/fs/my\\040cgroups cgroup2 rw,nosuid 0 0\n");
        assert_eq!(m[0].dir, PathBuf::from("/sys/fs/my cgroups"));
        assert_eq!(m[0].fstype, "cgroup2");
    }

    #[test]
    fn the_runner_cgroup_is_read_from_the_unified_line() {
        let t = "9:name=systemd:/\n4:memory:/x\n0::/system.slice/edge-runner.service\n";
        assert_eq!(
            own_v2_cgroup(t),
            Some(PathBuf::from("/system.slice/edge-runner.service"))
        );
        assert_eq!(own_v2_cgroup("4:memory:/x\n"), None);
    }
}
