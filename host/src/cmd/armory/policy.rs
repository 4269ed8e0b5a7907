//! `edge-runner armory policy apply|show|sign`: install, print and (for a control plane
//! or a test) sign authorization statements. Flag parsing and printing only; the checks
//! are `edge_runner::armory::policy`.

use super::{failure, print};
use crate::cmd::{CmdResult, Exit, Failure, Global, refused};
use clap::{Args, Subcommand};
use edge_runner::armory::Armory;
use edge_runner::armory::policy::{self, AUTHORIZATION_TYP, Judge, PolicyError};
use edge_runner::config::Config;
use edge_runner::pipeline::setup;
use edge_runner::reason::Refuse as _;
use edge_runner::sign::SigningKey;
use std::path::{Path, PathBuf};

/// Signed authorization statements: which digests the control plane authorizes.
///
/// With `[armory] authorization = "signed"`, a tool runs only if the installed statement
/// lists its digest (for the task's tenant, when tenants are listed) and has not expired.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Verify a statement (a compact JWS, typ edge-runner-authorization+jws) with the
    /// armory key set (`[armory] keys`, else `keys`) and install it atomically.
    ///
    /// Refused: a statement whose sequence is not newer than the installed one's
    /// (authorization_rollback), an expired one (authorization_expired), one for another
    /// runner (authorization_audience_mismatch), a task or malformed payload
    /// (authorization_invalid), a bad signature (signature_invalid, kid_unknown, ...).
    ///
    /// Example: edge-runner armory policy apply authorization.jws
    Apply(ApplyArgs),
    /// Print the installed statement: sequence, audience, times, tools.
    ///
    /// Example: edge-runner armory policy show --json
    Show(ShowArgs),
    /// Sign a statement payload (JSON) with a private key: for a control plane, or to try
    /// signed authorization on one host. `--ttl` fills in `issued_at` (now) and
    /// `expires_at` when the file has none.
    ///
    /// Example: edge-runner armory policy sign --key cp.jwk --ttl 604800 statement.json > authorization.jws
    Sign(SignArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The statement file (compact JWS), or `-` for stdin.
    #[arg(value_name = "FILE.jws")]
    pub file: PathBuf,
    /// Verify with this key set instead of the configured one.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The payload (JSON).
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
    /// The private key (JWK or JWKS file).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Key id to sign with (required when the file holds several keys).
    #[arg(long)]
    pub kid: Option<String>,
    /// Fill in `issued_at` (now) and `expires_at` (now + SECS) when absent.
    #[arg(long, value_name = "SECS")]
    pub ttl: Option<u32>,
}

pub fn run(_global: &Global, config: &Config, root: &Path, command: PolicyCommand) -> CmdResult {
    let now = chrono::Utc::now();
    match command {
        PolicyCommand::Apply(a) => {
            let compact = read_input(&a.file)?;
            let mut config = config.clone();
            if let Some(keys) = a.keys {
                config.armory_settings.keys = Some(keys);
            }
            let host = setup::plugin_host(&config, false).map_err(|e| Failure::Usage(e.into()))?;
            let verifier =
                setup::policy_verifier(&config, host).map_err(|e| Failure::Usage(e.into()))?;
            // A new host may receive its statement before its first tool.
            let armory = Armory::create(root).map_err(failure)?;
            let audience = config.runner.audience();
            let judge = Judge {
                verifier: &verifier,
                audience: &audience,
                skew: chrono::TimeDelta::seconds(config.claims.clock_skew_secs as i64),
            };
            let applied = armory
                .apply_statement(&compact, &judge, now)
                .map_err(policy_failure)?;
            let s = &applied.statement;
            let what = match (applied.changed, applied.replaced) {
                (false, _) => "already installed".to_owned(),
                (true, Some(old)) => format!("installed, replacing sequence {old}"),
                (true, None) => "installed".to_owned(),
            };
            print(&format!(
                "authorization statement sequence {} {what}: {} tool{}, expires {}\n",
                s.sequence,
                s.tools.len(),
                if s.tools.len() == 1 { "" } else { "s" },
                s.expires_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))?;
            if config.armory_settings.mode() != edge_runner::config::AuthorizationMode::Signed {
                tracing::warn!(
                    "armory.authorization is \"local\": the statement is installed but does not \
                     decide what runs until the configuration says authorization = \"signed\""
                );
            }
            Ok(Exit::Ok)
        }
        PolicyCommand::Show(s) => {
            let armory = Armory::open(root).map_err(failure)?;
            let Some(compact) = armory.installed_compact().map_err(failure)? else {
                return Err(refused(
                    PolicyError::Missing {
                        armory: root.display().to_string(),
                    }
                    .to_refusal(),
                ));
            };
            let statement = policy::decode_unverified(&compact).map_err(policy_failure)?;
            let summary = policy::summary(&statement, now);
            if s.json {
                print(&format!("{summary}\n"))?;
            } else {
                let mut out = format!(
                    "sequence {}  aud {}  issued {}  expires {}{}\n",
                    summary["sequence"],
                    statement.audience.join(","),
                    summary["issued_at"].as_str().unwrap_or_default(),
                    summary["expires_at"].as_str().unwrap_or_default(),
                    if now >= statement.expires_at {
                        "  (EXPIRED: authorizes nothing)"
                    } else {
                        ""
                    }
                );
                out.push_str(&format!(
                    "{:<71}  {:<24}  {:<24}  {}\n",
                    "DIGEST", "NAME", "TENANTS", "SOURCE"
                ));
                for (d, t) in &statement.tools {
                    out.push_str(&format!(
                        "{:<71}  {:<24}  {:<24}  {}\n",
                        d.as_str(),
                        t.name,
                        t.tenants.as_ref().map_or("*".to_owned(), |v| v.join(",")),
                        t.source.as_deref().unwrap_or("-")
                    ));
                }
                print(&out)?;
            }
            Ok(Exit::Ok)
        }
        PolicyCommand::Sign(s) => {
            let key =
                SigningKey::load(&s.key, s.kid.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
            let text = std::fs::read(&s.file).map_err(|e| {
                Failure::Usage(
                    anyhow::Error::new(e).context(format!("failed to read {}", s.file.display())),
                )
            })?;
            let mut value: serde_json::Value =
                edge_runner::json::parse_strict(&text, 6).map_err(|e| {
                    Failure::Usage(anyhow::anyhow!("{} is not JSON: {e}", s.file.display()))
                })?;
            if let (Some(ttl), Some(obj)) = (s.ttl, value.as_object_mut()) {
                let stamp = |t: chrono::DateTime<chrono::Utc>| {
                    serde_json::Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                };
                obj.entry("issued_at").or_insert_with(|| stamp(now));
                obj.entry("expires_at")
                    .or_insert_with(|| stamp(now + chrono::TimeDelta::seconds(i64::from(ttl))));
            }
            let payload = serde_json::to_vec(&value).map_err(|e| Failure::Runner(e.into()))?;
            // Refuse to sign what no runner would accept.
            policy::decode_payload_for_signing(&payload).map_err(|e| {
                Failure::Usage(anyhow::anyhow!(
                    "refusing to sign {}: {}",
                    s.file.display(),
                    edge_runner::reason::chain(&e)
                ))
            })?;
            print(&format!(
                "{}\n",
                key.sign_typed(&payload, AUTHORIZATION_TYP)
            ))?;
            Ok(Exit::Ok)
        }
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let limit = policy::MAX_STATEMENT_BYTES as u64 + 2;
    let result = if file.as_os_str() == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    result.map_err(|e| {
        Failure::Usage(anyhow::Error::new(e).context(format!("failed to read {}", file.display())))
    })?;
    Ok(bytes)
}

/// Refusals exit 3 with their code; a broken armory exits 4.
fn policy_failure(e: PolicyError) -> Failure {
    match e {
        PolicyError::Armory(a) => failure(a),
        other => refused(other.to_refusal()),
    }
}
