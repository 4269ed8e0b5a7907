//! `edge-runner plugins`: list every verifier backend per algorithm (embedded or a pinned
//! file), which one is active, its origin and digest; and the event mapper.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use std::io::Write as _;

/// List the plugins: every verifier backend per algorithm, and the event mapper.
///
/// Shows, per algorithm, every backend that can verify it (embedded in the binary, or the
/// pinned file the configuration names), which one is active (`*`), which one is the
/// default, where each came from (builtin or a pinned file) and its sha256. Select another
/// embedded backend with one configuration line, for example:
///   [plugins.verifiers]
///   ES256 = "es256-libcrux"
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
    let catalogue = verifiers.catalogue();
    let mut rows = Vec::new();
    for row in &catalogue {
        let imports = verifiers
            .get(&row.algorithm)
            .filter(|_| row.active)
            .map(|p| p.imports.clone());
        rows.push(serde_json::json!({
            "kind": "verifier",
            "algorithm": row.algorithm,
            "backend": row.backend,
            "active": row.active,
            "default": row.default,
            "version": row.version,
            "contract": row.contract,
            "origin": row.origin,
            "sha256": row.sha256,
            "imports": imports,
        }));
    }
    rows.push(serde_json::json!({
        "kind": "mapper",
        "event_types": mapper.event_types,
        "backend": mapper.name,
        "active": true,
        "version": mapper.version,
        "contract": mapper.contract().version(),
        "origin": mapper.origin.to_string(),
        "sha256": mapper.sha256,
    }));
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        let line = |out: &mut std::io::StdoutLock<'_>, cols: [&str; 8]| {
            writeln!(
                out,
                "{:<9} {:<8} {:<20} {:<6} {:<7} {:<8} {:<10} {}",
                cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
            )
        };
        let mut r = line(
            &mut out,
            [
                "KIND", "ALG", "BACKEND", "ACTIVE", "DEFAULT", "CONTRACT", "ORIGIN", "SHA256",
            ],
        );
        for row in &catalogue {
            r = r.and_then(|()| {
                line(
                    &mut out,
                    [
                        "verifier",
                        &row.algorithm,
                        &row.backend,
                        if row.active { "*" } else { "" },
                        if row.default { "yes" } else { "" },
                        row.contract,
                        &row.origin,
                        &row.sha256,
                    ],
                )
            });
        }
        let origin = mapper.origin.to_string();
        r.and_then(|()| {
            line(
                &mut out,
                [
                    "mapper",
                    "-",
                    &mapper.name,
                    "*",
                    "",
                    mapper.contract().version(),
                    &origin,
                    &mapper.sha256,
                ],
            )
        })
    };
    written
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write the list")))?;
    Ok(Exit::Ok)
}
