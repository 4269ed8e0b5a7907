//! `edge-runner manifest sign`: sign a manifest into a compact JWS task.

use super::{CmdResult, Exit, Failure};
use clap::{Args, Subcommand};
use edge_runner::sign::SigningKey;
use std::io::Write as _;
use std::path::PathBuf;

/// Work with execution manifests.
#[derive(Debug, Args)]
pub struct ManifestArgs {
    #[command(subcommand)]
    pub command: ManifestCommand,
}

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    Sign(SignArgs),
}

/// Sign a manifest (JSON) into a compact JWS task, printed on stdout.
///
/// Example: edge-runner manifest sign --key signer.jwk --kid cp-2026-11 manifest.json > task.jws
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key: a JWK, or a JWKS holding the key named by --kid.
    #[arg(long, value_name = "PRIVATE_JWK_OR_JWKS")]
    pub key: PathBuf,
    /// Key id to sign with (required when the file holds several keys).
    #[arg(long)]
    pub kid: Option<String>,
    /// The manifest file, or `-` for stdin.
    #[arg(value_name = "MANIFEST.json")]
    pub manifest: PathBuf,
}

pub fn run(args: ManifestArgs) -> CmdResult {
    let ManifestCommand::Sign(s) = args.command;
    let key = SigningKey::load(&s.key, s.kid.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
    let payload = super::read_task(&s.manifest, 1024 * 1024)?;
    // Refuse to sign something the runner would refuse to parse.
    edge_runner::json::parse_strict(&payload, 32).map_err(|e| {
        Failure::Usage(anyhow::anyhow!(
            "manifest {} is not strict JSON: {e}",
            s.manifest.display()
        ))
    })?;
    let compact = key.sign_compact(payload.trim_ascii());
    let mut out = std::io::stdout().lock();
    writeln!(out, "{compact}")
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write the task")))?;
    Ok(Exit::Ok)
}
