//! A minimal initramfs writer: the "newc" cpio format the kernel unpacks (see the kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst), uncompressed. Directories,
//! regular files and symlinks, all owned by root; parents are added automatically. Nothing
//! else (no device nodes: the guest mounts devtmpfs).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

#[derive(Debug, Clone)]
enum Entry {
    Dir(u32),
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
}

/// The tree an archive will hold, keyed by path relative to the guest's `/`.
#[derive(Debug, Default)]
pub struct Tree {
    entries: BTreeMap<PathBuf, Entry>,
}

fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

impl Tree {
    fn parents(&mut self, path: &Path) {
        let mut p = path.parent();
        while let Some(dir) = p {
            if dir.as_os_str().is_empty() {
                break;
            }
            self.entries
                .entry(dir.to_owned())
                .or_insert(Entry::Dir(0o755));
            p = dir.parent();
        }
    }

    pub fn dir(&mut self, guest: &str) {
        self.dir_mode(guest, 0o755);
    }

    pub fn dir_mode(&mut self, guest: &str, mode: u32) {
        let path = relative(Path::new(guest));
        self.parents(&path);
        self.entries.insert(path, Entry::Dir(mode));
    }

    pub fn bytes(&mut self, guest: &str, data: Vec<u8>, mode: u32) {
        let path = relative(Path::new(guest));
        self.parents(&path);
        self.entries.insert(path, Entry::File { data, mode });
    }

    /// The host file `source` (symlinks followed) at `guest`, keeping its permission bits.
    pub fn file(&mut self, guest: &Path, source: &Path) {
        use std::os::unix::fs::PermissionsExt as _;
        let data = std::fs::read(source)
            .unwrap_or_else(|e| panic!("failed to read {} for the guest: {e}", source.display()));
        let mode = std::fs::metadata(source).unwrap().permissions().mode() & 0o7777;
        self.bytes(guest.to_str().unwrap(), data, mode);
    }

    pub fn symlink(&mut self, guest: &Path, target: &str) {
        let path = relative(guest);
        self.parents(&path);
        self.entries.insert(path, Entry::Symlink(target.to_owned()));
    }

    /// A host directory tree copied to the same place in the guest (symlinks kept).
    pub fn copy_tree(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("failed to list {}: {e}", dir.display()))
        {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                self.symlink(&path, target.to_str().unwrap());
            } else if meta.is_dir() {
                self.dir(path.to_str().unwrap());
                self.copy_tree(&path);
            } else if meta.is_file() {
                self.file(&path, &path);
            }
        }
    }

    /// The archive: every entry, then the trailer.
    pub fn archive(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in self.entries.iter().enumerate() {
            let (mode, data): (u32, &[u8]) = match entry {
                Entry::Dir(mode) => (S_IFDIR | mode, &[]),
                Entry::File { data, mode } => (S_IFREG | mode, data),
                Entry::Symlink(target) => (S_IFLNK | 0o777, target.as_bytes()),
            };
            let nlink = if matches!(entry, Entry::Dir(_)) { 2 } else { 1 };
            record(&mut out, ino + 1, path.to_str().unwrap(), mode, nlink, data);
        }
        record(&mut out, 0, "TRAILER!!!", 0, 1, &[]);
        out
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// One newc record: a 110-byte ASCII header, the NUL-terminated name and the data, each
/// padded to four bytes.
fn record(out: &mut Vec<u8>, ino: usize, name: &str, mode: u32, nlink: u32, data: &[u8]) {
    let fields = [
        ino as u32,
        mode,
        0, // uid
        0, // gid
        nlink,
        0, // mtime
        u32::try_from(data.len()).expect("initramfs files are under 4 GiB"),
        0, // dev major
        0, // dev minor
        0, // rdev major
        0, // rdev minor
        u32::try_from(name.len() + 1).unwrap(),
        0, // checksum (unused by "070701")
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

#[test]
fn newc_records_are_aligned_and_end_with_the_trailer() {
    let mut t = Tree::default();
    t.bytes("/a/b", b"xyz".to_vec(), 0o644);
    t.symlink(Path::new("/a/c"), "b");
    let a = t.archive();
    assert_eq!(&a[..6], b"070701");
    assert_eq!(a.len() % 4, 0);
    // "a" (dir), "a/b", "a/c", trailer.
    assert_eq!(a.windows(6).filter(|w| w == b"070701").count(), 4);
    let tail = b"TRAILER!!!\0";
    assert!(a.windows(tail.len()).any(|w| w == tail));
    // The file's header says mode 0100644 and 3 bytes.
    let h = &a[a.windows(4).position(|w| w == b"a/b\0").unwrap() - 110..];
    assert_eq!(&h[14..22], b"000081A4");
    assert_eq!(&h[54..62], b"00000003");
}
