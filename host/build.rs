//! Builds the plugin components from this repository's source for `wasm32-wasip2` and
//! hands their paths and sha256 digests to the host crate, which embeds the defaults.
//!
//! The nested `cargo build` uses its own target directory (the outer build holds the lock
//! on the normal one) and the `plugin` profile (optimised, `panic = "abort"`). No `.wasm`
//! file is ever committed: a fresh clone builds them here.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Every plugin crate, with the component file it produces. The first group is shipped
/// (embedded in the host); the second is shipped as files only (an operator swaps one in
/// with a pinned config entry; the path is exported as `EDGE_RUNNER_PLUGIN_<NAME>` for
/// tests and benches); the third are test fixtures (paths exported for tests only).
const SHIPPED: &[(&str, &str)] = &[
    ("edge-runner-plugin-hs256", "edge_runner_plugin_hs256"),
    ("edge-runner-plugin-es256", "edge_runner_plugin_es256"),
    (
        "edge-runner-plugin-cloudevents-mapper",
        "edge_runner_plugin_cloudevents_mapper",
    ),
];
const FILE_ONLY: &[(&str, &str)] = &[(
    "edge-runner-plugin-digest-mapper",
    "edge_runner_plugin_digest_mapper",
)];
const FIXTURES: &[(&str, &str)] = &[
    (
        "edge-runner-test-misbehaving",
        "edge_runner_test_misbehaving",
    ),
    ("edge-runner-test-ungranted", "edge_runner_test_ungranted"),
    ("edge-runner-test-std-probe", "edge_runner_test_std_probe"),
    (
        "edge-runner-test-mapper-faults",
        "edge_runner_test_mapper_faults",
    ),
];

#[allow(clippy::print_stderr)] // a build script reports through stderr
fn main() {
    if let Err(message) = run() {
        // A build script reports failure by exiting non-zero; the message is what a
        // developer sees, so it says what to do.
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let workspace = manifest_dir
        .parent()
        .ok_or("host crate has no parent directory")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);

    for dir in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    println!("cargo:rerun-if-env-changed=EDGE_RUNNER_PLUGIN_TARGET_DIR");

    let target_dir = env::var_os("EDGE_RUNNER_PLUGIN_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| plugin_target_dir(&out_dir, &workspace));

    // Plugin crates are plain `rlib`s (so the native workspace build and their unit
    // tests work); the component is produced here with `--crate-type cdylib`.
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    for (package, _) in SHIPPED.iter().chain(FILE_ONLY).chain(FIXTURES) {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&workspace)
            .args(["rustc", "--lib", "--crate-type", "cdylib"])
            .args([
                "--profile",
                "plugin",
                "--target",
                "wasm32-wasip2",
                "--locked",
            ])
            .args(["-p", package])
            .arg("--target-dir")
            .arg(&target_dir)
            // A 128 KiB shadow stack instead of the default 1 MiB: the host resets every
            // page a call dirtied, and scans the whole initial memory to find them. With
            // `--stack-first` (the target default) an overflow traps, it cannot corrupt data.
            .args(["--", "-C", "link-arg=-zstack-size=131072"]);
        // Do not leak the outer build's flags or wrappers (clippy, sccache, coverage)
        // into the wasm build; they are meant for the host.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            // `cargo fuzz` on the pinned toolchain (fuzz/README.md); the plugins need no
            // unstable feature, and without it they share the normal build's artifacts.
            "RUSTC_BOOTSTRAP",
        ] {
            cmd.env_remove(var);
        }
        // RustCrypto's big integers pick 64-bit limbs on wasm32 (`cpubits`), whose
        // 64x64->128 products compile to calls to `__multi3`: a quarter of an ES256
        // verification. 32-bit limbs multiply with the native i64.mul instead.
        cmd.env("CARGO_ENCODED_RUSTFLAGS", "--cfg\u{1f}cpubits=\"32\"");
        let status = cmd
            .status()
            .map_err(|e| format!("failed to run cargo to build plugin {package}: {e}"))?;
        if !status.success() {
            return Err(format!(
                "failed to build plugin {package} for wasm32-wasip2 ({status}).\n       \
                 If the target is missing, run: rustup target add wasm32-wasip2"
            ));
        }
    }

    let out = target_dir.join("wasm32-wasip2").join("plugin");
    let mut generated =
        String::from("// Generated by host/build.rs: the default plugins, embedded.\n");
    for (package, stem) in SHIPPED {
        let path = out.join(format!("{stem}.wasm"));
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("failed to read built plugin {}: {e}", path.display()))?;
        let ident = stem
            .trim_start_matches("edge_runner_plugin_")
            .to_uppercase();
        let _ = writeln!(
            generated,
            "/// `{package}`, built from `plugins/`.\n\
             pub(crate) const {ident}: &[u8] = include_bytes!({path:?});\n\
             pub(crate) const {ident}_SHA256: &str = \"sha256:{digest}\";",
            path = path.display().to_string(),
            digest = sha256_hex(&bytes),
        );
    }
    std::fs::write(out_dir.join("embedded_plugins.rs"), generated)
        .map_err(|e| format!("failed to write embedded_plugins.rs: {e}"))?;

    for (_, stem) in FILE_ONLY {
        let path = out.join(format!("{stem}.wasm"));
        let var = format!(
            "EDGE_RUNNER_PLUGIN_{}",
            stem.trim_start_matches("edge_runner_plugin_")
                .to_uppercase()
        );
        println!("cargo:rustc-env={var}={}", path.display());
    }
    for (_, stem) in FIXTURES {
        let path = out.join(format!("{stem}.wasm"));
        let var = format!(
            "EDGE_RUNNER_FIXTURE_{}",
            stem.trim_start_matches("edge_runner_test_").to_uppercase()
        );
        println!("cargo:rustc-env={var}={}", path.display());
    }
    Ok(())
}

/// `<target>/plugins`, next to the host's own profile directories, found from `OUT_DIR`
/// (`<target>/<profile>/build/<pkg>-<hash>/out`).
fn plugin_target_dir(out_dir: &Path, workspace: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|target| target.join("plugins"))
        .unwrap_or_else(|| workspace.join("target").join("plugins"))
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
