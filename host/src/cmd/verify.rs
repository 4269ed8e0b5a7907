//! `edge-runner verify`: check a task's signature through the verifier plugins and print
//! the verified payload; with `--armory`, also the manifest, its claims, the replay store
//! (read-only) and the tool's resolution, printing the decision. Consumes nothing: no
//! nonce is recorded.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::keys::KeySet;
use edge_runner::verify::SignatureVerifier;
use std::io::Write as _;
use std::path::PathBuf;

/// Verify a task's signature and print its payload; with --armory, decide the whole task.
///
/// Checks the compact JWS strictly (RFC 7515/8725), selects the key by `kid`, and verifies
/// through the verifier plugin for the key's algorithm. Without --armory, prints the
/// payload on stdout and exits 0. With --armory, also checks the manifest and its claims,
/// asks the replay store whether the nonce was used (without recording it), and resolves
/// the tool (authorized, bytes re-hashed), then prints the decision as JSON. A refusal
/// exits 3 with a stable reason code on stderr.
///
/// Example: edge-runner verify --keys /etc/edge-runner/keys.json --armory /var/lib/edge-runner/armory task.jws
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The verification key set (JWKS) [default: from the configuration].
    #[arg(long, value_name = "JWKS")]
    pub keys: Option<PathBuf>,
    /// Also check the manifest, claims, replay state and tool resolution against this
    /// armory.
    #[arg(long, value_name = "DIR")]
    pub armory: Option<PathBuf>,
    /// The task: a file holding a compact JWS, or `-` for stdin. Surrounding whitespace is
    /// ignored.
    #[arg(value_name = "TASK")]
    pub task: PathBuf,
}

pub fn run(global: &Global, args: VerifyArgs) -> CmdResult {
    let config = super::load_config(global)?;
    let keys_path = args.keys.clone().unwrap_or_else(|| config.keys.clone());
    let limits = JwsLimits {
        max_bytes: config.input.max_jws_bytes,
        ..JwsLimits::default()
    };
    let task = super::read_task(&args.task, limits.max_bytes)?;

    edge_runner::fsperm::check_trusted(&keys_path, "key set")
        .map_err(|e| Failure::Usage(e.into()))?;
    let keys = KeySet::load(&keys_path).map_err(|e| Failure::Usage(e.into()))?;
    let verifiers = super::load_verifiers(&config)?;
    let verifier = SignatureVerifier::new(keys, verifiers).map_err(|e| Failure::Usage(e.into()))?;

    let parsed = jws::parse(&task, &limits).map_err(Failure::Denied)?;
    let verified = verifier.verify(parsed).map_err(Failure::Denied)?;
    tracing::info!(
        kid = verified.kid(),
        alg = verified.alg(),
        plugin = verified.plugin(),
        "signature verified"
    );

    if let Some(root) = &args.armory {
        return decide(&config, &verified, root);
    }

    let mut out = std::io::stdout().lock();
    out.write_all(verified.payload())
        .and_then(|()| {
            if verified.payload().last() != Some(&b'\n') {
                out.write_all(b"\n")?;
            }
            out.flush()
        })
        .map_err(|e| {
            Failure::Runner(anyhow::Error::new(e).context("failed to write the payload"))
        })?;
    Ok(Exit::Ok)
}

/// The whole decision short of running: manifest and claims, replay (read-only), armory.
fn decide(
    config: &edge_runner::config::Config,
    verified: &edge_runner::verify::VerifiedJws,
    root: &std::path::Path,
) -> CmdResult {
    use edge_runner::armory::{self, Armory};
    use edge_runner::manifest::{self, ClaimPolicy};
    use edge_runner::replay::ReplayStore;

    let now = chrono::Utc::now();
    let checked = manifest::decode(verified, &ClaimPolicy::from_config(config), now)
        .map_err(|e| Failure::Denied(e.to_refusal()))?;
    ReplayStore::new(&config.state_dir)
        .check(&checked)
        .map_err(|e| Failure::Denied(e.to_refusal()))?;
    let armory_failure = |e: armory::ArmoryError| match e.to_refusal() {
        Some(r) => Failure::Denied(r),
        None => Failure::Runner(e.into()),
    };
    let armory = Armory::open(root).map_err(armory_failure)?;
    let tool = armory
        .resolve(checked.tool(), &armory::scratch_dir(&config.state_dir))
        .map_err(armory_failure)?;
    let task = checked.task();
    let limits = checked.limits();
    let decision = serde_json::json!({
        "decision": "accept",
        "kid": checked.kid(),
        "alg": checked.alg(),
        "task_id": task.task_id,
        "tenant_id": task.tenant_id,
        "tool": { "digest": tool.digest(), "name": tool.name(), "size": tool.size() },
        "issued_at": checked.issued_at().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "expires_at": checked.expires_at().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "limits": {
            "timeout_ms": limits.timeout_ms,
            "memory_bytes": limits.memory_bytes,
            "output_bytes": limits.output_bytes,
        },
        "nonce": "unused (not recorded by verify)",
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{decision}")
        .and_then(|()| out.flush())
        .map_err(|e| {
            Failure::Runner(anyhow::Error::new(e).context("failed to write the decision"))
        })?;
    Ok(Exit::Ok)
}
