//! The shipped AppArmor profiles compile. This kernel has no AppArmor, so they cannot be
//! loaded here; `apparmor_parser --skip-kernel-load` still runs the whole compiler over
//! them (includes, variables, rule syntax) and fails on any error. CI installs `apparmor`.

use std::path::Path;
use std::process::Command;

fn compile(profile: &Path) -> std::process::Output {
    // /usr/sbin may be missing from a non-login PATH.
    let parser = ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("apparmor_parser");
    Command::new(parser)
        .args(["--skip-kernel-load", "--skip-cache", "--quiet"])
        .arg(profile)
        .output()
        .unwrap_or_else(|e| {
            panic!("apparmor_parser is required for this test (apt-get install apparmor): {e}")
        })
}

#[test]
fn the_shipped_profiles_compile() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("apparmor");
    for name in ["edge-runner-tool", "edge-runner-runsc"] {
        let out = compile(&dir.join(name));
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_compiler_check_can_fail() {
    // The same check on a profile with one broken rule must fail, or the test above
    // proves nothing.
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("apparmor/edge-runner-tool"),
    )
    .unwrap();
    let broken = good.replacen("deny mount,", "deny mount bogus,,", 1);
    assert_ne!(
        good, broken,
        "the profile has a `deny mount,` rule to break"
    );
    let p = dir.path().join("broken");
    std::fs::write(&p, broken).unwrap();
    assert!(!compile(&p).status.success());
}
