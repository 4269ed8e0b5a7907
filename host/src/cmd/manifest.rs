//! `edge-runner manifest sign` and `manifest schema`: sign a manifest into a compact JWS
//! task (after checking it as a runner would), and print the manifest's JSON Schema.

use super::{CmdResult, Exit, Failure, Global};
use base64::Engine as _;
use clap::{Args, Subcommand};
use edge_runner::manifest::{self, ClaimPolicy};
use edge_runner::reason::Refuse as _;
use edge_runner::sign::SigningKey;
use serde_json::Value;
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
    Schema(SchemaArgs),
}

/// Sign a manifest (JSON) into a compact JWS task, printed on stdout.
///
/// The manifest is first checked exactly as a runner with this configuration would check
/// it now (fields, limits, times, an audience present); a manifest the runner would refuse
/// is not signed. The JWS header carries `typ: edge-runner-task+jws`.
///
/// Example: edge-runner manifest sign --key signer.jwk --kid cp-2026-11 --fill --aud edge-7 manifest.json > task.jws
#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key: a JWK, or a JWKS holding the key named by --kid.
    #[arg(long, value_name = "PRIVATE_JWK_OR_JWKS")]
    pub key: PathBuf,
    /// Key id to sign with (required when the file holds several keys).
    #[arg(long)]
    pub kid: Option<String>,
    /// Set `nonce` (256 random bits), `issued_at` (now) and `expires_at` (now + --ttl),
    /// replacing any values in the file, which then serves as a template.
    #[arg(long)]
    pub fill: bool,
    /// Lifetime given by --fill, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, requires = "fill")]
    pub ttl: u64,
    /// With --fill: set `aud` to this runner id or pool name (repeat for several). A
    /// runner refuses a task that does not name it (`audience_mismatch`) or names no one
    /// (`audience_missing`).
    #[arg(long, value_name = "RUNNER_OR_POOL", requires = "fill")]
    pub aud: Vec<String>,
    /// The manifest file, or `-` for stdin.
    #[arg(value_name = "MANIFEST.json")]
    pub manifest: PathBuf,
}

/// Print the JSON Schema (draft 2020-12) of manifest version 1, with this runner's limits.
///
/// Example: edge-runner manifest schema > manifest-v1.schema.json
#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(global: &Global, args: ManifestArgs) -> CmdResult {
    let config = super::load_config(global)?;
    match args.command {
        ManifestCommand::Schema(_) => {
            let schema = manifest::schema(&config.limits);
            let text =
                serde_json::to_string_pretty(&schema).map_err(|e| Failure::Runner(e.into()))?;
            write_out(&text)
        }
        ManifestCommand::Sign(s) => sign(&config, s),
    }
}

fn sign(config: &edge_runner::config::Config, s: SignArgs) -> CmdResult {
    let key = SigningKey::load(&s.key, s.kid.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
    let raw = super::read_task(&s.manifest, 1024 * 1024)?;
    let now = chrono::Utc::now();
    let payload = if s.fill {
        fill(&raw, now, s.ttl, &s.aud).map_err(|e| {
            Failure::Usage(anyhow::anyhow!(
                "failed to fill manifest {}: {e}",
                s.manifest.display()
            ))
        })?
    } else {
        raw.trim_ascii().to_vec()
    };
    // Refuse to sign what the runner would refuse.
    manifest::validate_unsigned(
        &payload,
        &ClaimPolicy::new(&config.claims, &config.limits, &config.env),
        now,
    )
    .map_err(|e| {
        let r = e.to_refusal();
        Failure::Usage(anyhow::anyhow!(
            "refusing to sign manifest {}: a runner would refuse it as {}: {}",
            s.manifest.display(),
            r.reason.code(),
            r.message
        ))
    })?;
    write_out(&key.sign_compact(&payload))
}

/// Sets nonce, issued_at and expires_at on the manifest object.
pub(super) fn fill(
    raw: &[u8],
    now: chrono::DateTime<chrono::Utc>,
    ttl: u64,
    aud: &[String],
) -> Result<Vec<u8>, String> {
    use serde_json::value::RawValue;
    let doc =
        edge_runner::json::parse_strict(raw, manifest::MAX_DEPTH).map_err(|e| e.to_string())?;
    if !doc.is_object() {
        return Err("the manifest is not a JSON object".into());
    }
    // Every member is kept as the exact text written (duplicates were refused above), so
    // `parameters` is signed byte for byte as the operator wrote it: a large integer or
    // an exponent is never rewritten.
    let mut map: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| format!("failed to gather randomness: {e}"))?;
    let ttl = chrono::TimeDelta::try_seconds(i64::try_from(ttl).map_err(|e| e.to_string())?)
        .ok_or("--ttl is too large")?;
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let string =
        |s: String| serde_json::value::to_raw_value(&Value::String(s)).map_err(|e| e.to_string());
    map.insert(
        "nonce".into(),
        string(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce))?,
    );
    map.insert("issued_at".into(), string(stamp(now))?);
    let expires = now.checked_add_signed(ttl).ok_or("--ttl is too large")?;
    map.insert("expires_at".into(), string(stamp(expires))?);
    match aud {
        [] => {}
        [one] => {
            map.insert("aud".into(), string(one.clone())?);
        }
        many => {
            let list = serde_json::value::to_raw_value(many).map_err(|e| e.to_string())?;
            map.insert("aud".into(), list);
        }
    }
    serde_json::to_vec(&map).map_err(|e| e.to_string())
}

fn write_out(text: &str) -> CmdResult {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write to stdout")))?;
    Ok(Exit::Ok)
}
