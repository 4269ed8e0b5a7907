//! `edge-runner plugins`: list the loaded plugins, their algorithms, origin and digest.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use std::io::Write as _;

/// List the plugins this configuration loads: the verifiers and the event mapper.
///
/// Shows, per algorithm, the plugin that verifies it, and the event mapper, with where
/// each came from (builtin or a pinned file) and its sha256.
///
/// Example: edge-runner plugins --json
#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: PluginsArgs) -> CmdResult {
    let config = super::load_config(global)?;
    let verifiers = super::load_verifiers(&config)?;
    let pinned = config.plugins.mapper.as_ref().map(|m| m.pinned());
    let mapper = verifiers
        .host()
        .load_mapper(pinned.as_ref())
        .map_err(|e| Failure::Usage(e.into()))?;
    let mut rows = Vec::new();
    for (alg, p) in verifiers.iter() {
        rows.push(serde_json::json!({
            "kind": "verifier",
            "algorithm": alg,
            "plugin": p.name,
            "version": p.version,
            "origin": p.origin.to_string(),
            "sha256": p.sha256,
            "imports": p.imports,
        }));
    }
    rows.push(serde_json::json!({
        "kind": "mapper",
        "event_types": mapper.event_types,
        "plugin": mapper.name,
        "version": mapper.version,
        "origin": mapper.origin.to_string(),
        "sha256": mapper.sha256,
    }));
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        let mut r = writeln!(
            out,
            "{:<10} {:<9} {:<20} {:<10} SHA256",
            "KIND", "ALG", "PLUGIN", "ORIGIN"
        );
        for (alg, p) in verifiers.iter() {
            r = r.and_then(|()| {
                writeln!(
                    out,
                    "{:<10} {:<9} {:<20} {:<10} {}",
                    "verifier",
                    alg,
                    p.name,
                    p.origin.to_string(),
                    p.sha256
                )
            });
        }
        r = r.and_then(|()| {
            writeln!(
                out,
                "{:<10} {:<9} {:<20} {:<10} {}",
                "mapper",
                "-",
                mapper.name,
                mapper.origin.to_string(),
                mapper.sha256
            )
        });
        r
    };
    written
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write the list")))?;
    Ok(Exit::Ok)
}
