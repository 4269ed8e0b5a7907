//! `edge-runner verify`: check a task's signature through the verifier plugins and print
//! the verified payload. Consumes nothing (no nonce is recorded).

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::keys::KeySet;
use edge_runner::verify::SignatureVerifier;
use std::io::Write as _;
use std::path::PathBuf;

/// Verify a task's signature and print its payload.
///
/// Checks the compact JWS strictly (RFC 7515/8725), selects the key by `kid`, and verifies
/// through the verifier plugin for the key's algorithm. On success prints the payload on
/// stdout and exits 0; a refusal exits 3 with a stable reason code on stderr.
///
/// Example: edge-runner verify --keys /etc/edge-runner/keys.json task.jws
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The verification key set (JWKS) [default: from the configuration].
    #[arg(long, value_name = "JWKS")]
    pub keys: Option<PathBuf>,
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
