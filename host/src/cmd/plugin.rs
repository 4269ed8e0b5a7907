//! `edge-runner plugin check`: run the built-in conformance suite on a plugin file and
//! print the table (or JSON); `plugin new`: write a plugin crate from the template in
//! `template/`. The suite itself lives in `edge_runner::conformance`.

use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use std::io::Write as _;
use std::path::PathBuf;

/// Tools for plugin authors and for operators vetting a plugin before pinning it.
#[derive(Debug, Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
}

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    Check(CheckArgs),
    New(NewArgs),
    Wit(WitArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TemplateKind {
    Verifier,
    Mapper,
}

/// Write a new plugin crate that builds with one command and passes `plugin check`.
///
/// The verifier template implements HS256 completely; comments marked ALGORITHM say where
/// another algorithm goes. The mapper template emits a completed and a denied event type
/// with the linkage fields kept; comments marked EVENT say what to change. Each carries
/// this release's wit/plugin.wit and Cargo.lock.
///
/// Example: edge-runner plugin new verifier my-verifier --dir ~/src
#[derive(Debug, Args)]
pub struct NewArgs {
    /// What kind of plugin.
    #[arg(value_enum)]
    pub kind: TemplateKind,
    /// The crate name (lowercase letters, digits and -).
    pub name: String,
    /// The directory to create the crate in (as DIR/NAME).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

/// Check a verifier or event-mapper component against the built-in conformance suite.
///
/// Verifiers: `info` declares what it implements; for every declared algorithm the
/// RFC 7515 / RFC 8037 vectors, Project Wycheproof (P-256 P1363, HMAC-SHA256, Ed25519),
/// attack classes (wrong key type or curve, malformed signatures, r or s = 0 or n,
/// invalid points, short HMAC keys, empty and oversized inputs) and resource behaviour
/// under the configured fuel and memory limits. Mappers: every record shape through the
/// host's own mapping and CloudEvents validation, linkage kept, output proportional to
/// input. Needs no network and no other file.
///
/// Exit: 0 every check passed; 1 a check failed; 2 the file is not a plugin component.
///
/// Example: edge-runner plugin check target/plugins/wasm32-wasip2/plugin/my_plugin.wasm --json
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The component file (`.wasm`).
    pub file: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Print the plugin contract (WIT package `edge-runner:plugin`) this binary implements.
///
/// A plugin author builds against it: save it as `wit/plugin.wit` of the plugin crate
/// (what `plugin new` does), or as `wit/deps/edge-runner-plugin/plugin.wit` to use the
/// package from a world of one's own. `--version 0.1.0` prints the previous version,
/// which this binary still loads through an adapter.
///
/// Example: edge-runner plugin wit > wit/plugin.wit
#[derive(Debug, Args)]
pub struct WitArgs {
    /// The package version to print.
    #[arg(long, default_value = edge_runner::plugins::contract::CURRENT,
          value_parser = clap::builder::PossibleValuesParser::new(edge_runner::plugins::contract::SUPPORTED))]
    pub version: String,
}

pub fn run(global: &Global, args: PluginArgs) -> CmdResult {
    match args.command {
        PluginCommand::Check(a) => check(global, a),
        PluginCommand::New(a) => new(a),
        PluginCommand::Wit(a) => wit(a),
    }
}

fn wit(args: WitArgs) -> CmdResult {
    let text = if args.version == edge_runner::plugins::contract::CURRENT {
        WIT
    } else {
        WIT_0_1
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write to stdout")))?;
    Ok(Exit::Ok)
}

fn check(global: &Global, args: CheckArgs) -> CmdResult {
    let config = super::load_config(global)?;
    // The configured limits, so that a plugin passes under the budget it will run with;
    // no compile cache (the file is not trusted yet).
    let host = edge_runner::plugins::PluginHost::new(
        config.plugins.limits(),
        edge_runner::plugins::CompileCache::disabled(),
    )
    .map_err(|e| Failure::Runner(e.into()))?;
    let report =
        edge_runner::conformance::check_file(&host, &args.file, config.input.max_jws_bytes)
            .map_err(|e| Failure::Usage(e.into()))?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "file": report.file,
                "sha256": report.sha256,
                "kind": report.kind,
                "plugin": report.plugin,
                "passed": report.passed(),
                "checks": report.rows,
            }),
        )
        .map_err(std::io::Error::other)
        .and_then(|()| writeln!(out))
    } else {
        let width = report
            .rows
            .iter()
            .map(|r| r.check.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut r = writeln!(
            out,
            "{} ({}, {})\n{:<width$}  RESULT  DETAIL",
            report.file, report.kind, report.sha256, "CHECK"
        );
        for row in &report.rows {
            r = r.and_then(|()| {
                writeln!(
                    out,
                    "{:<width$}  {:<6}  {}",
                    row.check,
                    if row.passed { "pass" } else { "FAIL" },
                    row.detail
                )
            });
        }
        r.and_then(|()| {
            if report.passed() {
                writeln!(
                    out,
                    "all checks passed; pin it with sha256 = \"{}\"",
                    report.sha256
                )
            } else {
                let failed = report.rows.iter().filter(|r| !r.passed).count();
                writeln!(out, "{failed} check(s) FAILED: do not pin this plugin")
            }
        })
    };
    written.map_err(|e| {
        Failure::Runner(anyhow::Error::new(e).context("failed to write the report"))
    })?;
    Ok(if report.passed() {
        Exit::Ok
    } else {
        Exit::ToolFailed
    })
}

const TEMPLATE_CARGO: &str = include_str!("template/Cargo.toml.txt");
const TEMPLATE_VERIFIER: &str = include_str!("template/verifier.rs.txt");
const TEMPLATE_MAPPER: &str = include_str!("template/mapper.rs.txt");
const TEMPLATE_MAPPER_CARGO: &str = include_str!("template/mapper-Cargo.toml.txt");
const TEMPLATE_MAPPER_README: &str = include_str!("template/mapper-README.md.txt");
const TEMPLATE_README: &str = include_str!("template/README.md.txt");
const TEMPLATE_CARGO_CONFIG: &str = "[build]\ntarget = \"wasm32-wasip2\"\n";
/// The contract and the versions this release was built and tested with.
const WIT: &str = include_str!("../../../wit/plugin.wit");
const WIT_0_1: &str = include_str!("../../../wit/compat/0.1.0/plugin.wit");
const LOCK: &str = include_str!("../../../Cargo.lock");

fn new(args: NewArgs) -> CmdResult {
    let usage = |m: String| Failure::Usage(anyhow::anyhow!(m));
    let valid = !args.name.is_empty()
        && args.name.len() <= 64
        && args.name.starts_with(|c: char| c.is_ascii_lowercase())
        && args
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return Err(usage(format!(
            "plugin name \"{}\" must start with a lowercase letter and hold only lowercase \
             letters, digits and - (at most 64)",
            edge_runner::text::printable(&args.name)
        )));
    }
    let (source, cargo, readme) = match args.kind {
        TemplateKind::Verifier => (TEMPLATE_VERIFIER, TEMPLATE_CARGO, TEMPLATE_README),
        TemplateKind::Mapper => (
            TEMPLATE_MAPPER,
            TEMPLATE_MAPPER_CARGO,
            TEMPLATE_MAPPER_README,
        ),
    };
    let root = args.dir.join(&args.name);
    if root.exists() {
        return Err(usage(format!(
            "{} already exists; choose another name or --dir",
            root.display()
        )));
    }
    let fill = |t: &str| {
        t.replace("{{NAME}}", &args.name)
            .replace("{{STEM}}", &args.name.replace('-', "_"))
    };
    let files = [
        ("Cargo.toml", fill(cargo)),
        ("Cargo.lock", LOCK.to_owned()),
        (".cargo/config.toml", TEMPLATE_CARGO_CONFIG.to_owned()),
        ("src/lib.rs", fill(source)),
        ("wit/plugin.wit", WIT.to_owned()),
        ("README.md", fill(readme)),
    ];
    for (path, text) in files {
        let file = root.join(path);
        let written = file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&file, text));
        written.map_err(|e| {
            Failure::Runner(
                anyhow::Error::new(e).context(format!("failed to write {}", file.display())),
            )
        })?;
    }
    let stem = args.name.replace('-', "_");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {root}\nbuild and check it:\n  cd {root} && cargo build --release\n  \
         edge-runner plugin check {root}/target/wasm32-wasip2/release/{stem}.wasm",
        root = root.display()
    )
    .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write to stdout")))?;
    Ok(Exit::Ok)
}
