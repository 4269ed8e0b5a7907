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

/// The list of plugin crates and what to do with each (see the comments in that file).
const SHIPPED: &str = "plugins/shipped.toml";

/// One `[[plugin]]` entry of `plugins/shipped.toml`.
struct Entry {
    package: String,
    kind: Kind,
    name: String,
    algorithms: Vec<String>,
    /// Verifier: the algorithms it serves by default. Mapper: `["*"]` when it is the default.
    default: Vec<String>,
    embed: bool,
    /// Cargo features to build with; an entry with features gets its own file
    /// (`<name>.wasm`), so one crate can be built several ways.
    features: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Verifier,
    Mapper,
    Fixture,
}

impl Entry {
    /// The component file `cargo rustc --crate-type cdylib` writes.
    fn stem(&self) -> String {
        self.package.replace('-', "_")
    }

    /// Where the component is found once built.
    fn file(&self, out: &Path) -> PathBuf {
        if self.features.is_empty() {
            out.join(format!("{}.wasm", self.stem()))
        } else {
            out.join(format!("{}.wasm", self.name))
        }
    }

    /// `digest-mapper` -> `DIGEST_MAPPER`, for environment variable names.
    fn env_name(&self) -> String {
        self.name.replace('-', "_").to_uppercase()
    }
}

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
    let entries = read_shipped(&workspace.join(SHIPPED))?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // Builds with features first: each is copied to its own file right after its build,
    // while a crate's plain build is read from the file cargo writes, which a later
    // feature build of the same crate would overwrite.
    let mut order: Vec<&Entry> = entries.iter().collect();
    order.sort_by_key(|e| e.features.is_empty());
    for entry in order {
        let package = entry.package.as_str();
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
            .args(if entry.features.is_empty() {
                Vec::new()
            } else {
                vec!["--features".to_owned(), entry.features.join(",")]
            })
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
        if !entry.features.is_empty() {
            let out = target_dir.join("wasm32-wasip2").join("plugin");
            let built = out.join(format!("{}.wasm", entry.stem()));
            std::fs::copy(&built, entry.file(&out))
                .map_err(|e| format!("failed to copy {}: {e}", built.display()))?;
        }
    }

    let out = target_dir.join("wasm32-wasip2").join("plugin");
    let mut generated = String::from(
        "// Generated by host/build.rs from plugins/shipped.toml: the embedded plugins.\n",
    );
    let mut default_mapper = None;
    for (kind, list, what) in [
        (Kind::Verifier, "VERIFIERS", "verifier"),
        (Kind::Mapper, "MAPPERS", "event-mapper"),
    ] {
        let _ = writeln!(
            generated,
            "/// The embedded {what} plugins, in `plugins/shipped.toml` order.\npub const {list}: &[Builtin] = &["
        );
        for (index, entry) in entries
            .iter()
            .filter(|e| e.kind == kind && e.embed)
            .enumerate()
        {
            let path = entry.file(&out);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("failed to read built plugin {}: {e}", path.display()))?;
            if kind == Kind::Mapper && !entry.default.is_empty() {
                default_mapper = Some(index);
            }
            let default: &[String] = if kind == Kind::Verifier {
                &entry.default
            } else {
                &[]
            };
            let _ = writeln!(
                generated,
                "    Builtin {{\n        name: {name:?},\n        package: {package:?},\n        \
                 bytes: include_bytes!({path:?}),\n        sha256: \"sha256:{digest}\",\n        \
                 algorithms: &{algorithms:?},\n        default_for: &{default:?},\n    }},",
                name = entry.name,
                package = entry.package,
                path = path.display().to_string(),
                digest = sha256_hex(&bytes),
                algorithms = entry.algorithms,
            );
        }
        let _ = writeln!(generated, "];");
    }
    let default_mapper = default_mapper.ok_or(format!(
        "{SHIPPED}: no embedded mapper has `default = true`"
    ))?;
    let _ = writeln!(
        generated,
        "/// The default event mapper.\npub const MAPPER: Builtin = MAPPERS[{default_mapper}];"
    );
    std::fs::write(out_dir.join("embedded_plugins.rs"), generated)
        .map_err(|e| format!("failed to write embedded_plugins.rs: {e}"))?;

    for entry in &entries {
        let prefix = match entry.kind {
            Kind::Fixture => "EDGE_RUNNER_FIXTURE",
            Kind::Verifier | Kind::Mapper => "EDGE_RUNNER_PLUGIN",
        };
        let path = entry.file(&out);
        println!(
            "cargo:rustc-env={prefix}_{}={}",
            entry.env_name(),
            path.display()
        );
    }
    Ok(())
}

/// Reads and checks `plugins/shipped.toml`: names unique, every default one of the
/// plugin's algorithms, at most one default per algorithm, exactly one default mapper.
fn read_shipped(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("failed to read {}: {e}", path.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{} is not valid TOML: {e}", path.display()))?;
    let bad = |what: String| format!("{}: {what}", path.display());
    let list = doc
        .get("plugin")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| bad("expected `[[plugin]]` entries".into()))?;
    let mut entries: Vec<Entry> = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let table = item
            .as_table()
            .ok_or_else(|| bad(format!("entry #{i} is not a table")))?;
        for key in table.keys() {
            if ![
                "crate",
                "kind",
                "name",
                "algorithms",
                "default",
                "embed",
                "features",
            ]
            .contains(&key.as_str())
            {
                return Err(bad(format!("entry #{i}: unknown field `{key}`")));
            }
        }
        let text = |key: &str| {
            table
                .get(key)
                .and_then(toml::Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("entry #{i}: `{key}` must be a string")))
        };
        let strings = |key: &str| -> Result<Vec<String>, String> {
            match table.get(key) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|s| s.as_str().map(str::to_owned))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| bad(format!("entry #{i}: `{key}` must be a list of strings"))),
            }
        };
        let package = text("crate")?;
        let name = text("name")?;
        let kind = match text("kind")?.as_str() {
            "verifier" => Kind::Verifier,
            "mapper" => Kind::Mapper,
            "fixture" => Kind::Fixture,
            other => {
                return Err(bad(format!(
                    "{name}: kind `{other}` is not verifier, mapper or fixture"
                )));
            }
        };
        let algorithms = strings("algorithms")?;
        let features = strings("features")?;
        let default = match (kind, table.get("default")) {
            (_, None) => Vec::new(),
            (Kind::Mapper, Some(toml::Value::Boolean(true))) => vec!["*".to_owned()],
            (Kind::Mapper, Some(toml::Value::Boolean(false))) => Vec::new(),
            (Kind::Verifier, Some(_)) => strings("default")?,
            _ => {
                return Err(bad(format!(
                    "{name}: `default` is a list of algorithms for a verifier, true or \
                     false for a mapper, and absent for a fixture"
                )));
            }
        };
        let embed = match table.get("embed") {
            None => kind != Kind::Fixture,
            Some(toml::Value::Boolean(b)) if kind != Kind::Fixture => *b,
            Some(_) => {
                return Err(bad(format!(
                    "{name}: `embed` must be true or false (fixtures are never embedded)"
                )));
            }
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(bad(format!(
                "entry #{i}: name `{name}` must be lowercase letters, digits and -"
            )));
        }
        if let Some(other) = entries.iter().find(|e| e.name == name) {
            return Err(bad(format!(
                "the name `{name}` is used by both {} and {package}",
                other.package
            )));
        }
        if kind == Kind::Verifier && algorithms.is_empty() {
            return Err(bad(format!(
                "{name}: a verifier must list its `algorithms`"
            )));
        }
        if kind != Kind::Verifier && !algorithms.is_empty() {
            return Err(bad(format!("{name}: only a verifier has `algorithms`")));
        }
        if kind == Kind::Verifier {
            for alg in &default {
                if !algorithms.contains(alg) {
                    return Err(bad(format!(
                        "{name}: default algorithm {alg} is not one of its algorithms"
                    )));
                }
                if !embed {
                    return Err(bad(format!(
                        "{name}: a default verifier must be embedded (`embed = false`)"
                    )));
                }
                if let Some(other) = entries
                    .iter()
                    .find(|e| e.kind == Kind::Verifier && e.default.contains(alg))
                {
                    return Err(bad(format!(
                        "two plugins are the default for {alg}: {} and {name}; keep \
                         `default` on one of them",
                        other.name
                    )));
                }
            }
        }
        if kind == Kind::Mapper && !default.is_empty() {
            if !embed {
                return Err(bad(format!("{name}: the default mapper must be embedded")));
            }
            if let Some(other) = entries
                .iter()
                .find(|e| e.kind == Kind::Mapper && !e.default.is_empty())
            {
                return Err(bad(format!(
                    "two mappers are the default: {} and {name}",
                    other.name
                )));
            }
        }
        entries.push(Entry {
            package,
            kind,
            name,
            algorithms,
            default,
            embed,
            features,
        });
    }
    Ok(entries)
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
