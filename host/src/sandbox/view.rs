//! What the tool sees, the same under both backends: its own path ([`TOOL_PATH`]), the
//! base environment, the mounts every sandbox replaces, and the masked paths resolved
//! against the sandbox's root filesystem. The native backend turns this into mount
//! operations (`native/mounts.rs`), runsc into OCI mounts (`runsc/bundle.rs`); this module
//! only describes the view and builds nothing.

use std::path::{Path, PathBuf};

/// Where the tool appears inside both backends.
pub const TOOL_PATH: &str = "/run/edge-runner/tool";

/// Mounts the sandbox always replaces with its own (procfs, an empty `/sys`, a minimal
/// `/dev`, a private `/tmp`, a `/run` holding only the tool); masks under them are moot.
pub(crate) const REPLACED: &[&str] = &["/proc", "/sys", "/dev", "/tmp", "/run"];

/// The environment every tool starts from, before the manifest's own variables (which may
/// not override these: see `manifest::env`). `HOME` and `TMPDIR` point at the private
/// `/tmp`; `PATH` is the standard one of the sandbox root.
pub fn base_env() -> Vec<(String, String)> {
    [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A path hidden in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mask {
    /// The path inside the sandbox.
    pub path: PathBuf,
    pub dir: bool,
}

/// `inside` (an absolute path in the sandbox) under `root`.
pub(crate) fn under(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

/// Resolves masked paths against `rootfs`: follows symlinks (staying inside the rootfs),
/// drops missing paths, paths under a replaced mount or under another masked directory.
pub(crate) fn resolve_masks(rootfs: &Path, paths: &[PathBuf]) -> Vec<Mask> {
    let mut masks: Vec<Mask> = Vec::new();
    for p in paths {
        let outside = under(rootfs, p);
        let Ok(real) = std::fs::canonicalize(&outside) else {
            continue;
        };
        let Ok(inside) = real.strip_prefix(rootfs) else {
            continue;
        };
        let inside = Path::new("/").join(inside);
        if inside == Path::new("/") {
            continue;
        }
        let dir = real.is_dir();
        masks.push(Mask { path: inside, dir });
    }
    masks.sort_by(|a, b| a.path.cmp(&b.path));
    masks.dedup();
    let mut kept: Vec<Mask> = Vec::new();
    for m in masks {
        let replaced = REPLACED.iter().any(|r| m.path.starts_with(r));
        let covered = kept.iter().any(|k| k.dir && m.path.starts_with(&k.path));
        if !replaced && !covered {
            kept.push(m);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_resolve_dedupe_and_skip_replaced_mounts() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in ["etc/er", "var/lib/er/armory", "tmp/x", "real"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/er/keys.json"), "{}").unwrap();
        std::os::unix::fs::symlink(r.join("real"), r.join("link")).unwrap();
        let masks = resolve_masks(
            &std::fs::canonicalize(r).unwrap(),
            &[
                "/etc/er/keys.json".into(),
                "/var/lib/er".into(),
                "/var/lib/er/armory".into(),
                "/tmp/x".into(),
                "/missing".into(),
                "/link".into(),
            ],
        );
        assert_eq!(
            masks,
            vec![
                Mask {
                    path: "/etc/er/keys.json".into(),
                    dir: false
                },
                Mask {
                    path: "/real".into(),
                    dir: true
                },
                Mask {
                    path: "/var/lib/er".into(),
                    dir: true
                },
            ]
        );
    }
}
