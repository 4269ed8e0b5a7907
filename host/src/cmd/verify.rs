//! `edge-runner verify`: check a task's signature through the verifier plugins and print
//! the verified payload; with `--armory`, decide the whole task exactly as `run` would
//! (`Runner::decide`: manifest, claims, replay read-only, armory, interpreter, sandbox
//! plan) and print the decision. Consumes nothing: no nonce is recorded, no event emitted.

use super::{CmdResult, Exit, Failure, Global};
use clap::Args;
use edge_runner::jws::{self, JwsLimits};
use edge_runner::pipeline::{Runner, setup};
use std::io::Write as _;
use std::path::PathBuf;

/// Verify a task's signature and print its payload; with --armory, decide the whole task.
///
/// Checks the compact JWS strictly (RFC 7515/8725), selects the key by `kid`, and verifies
/// through the verifier plugin for the key's algorithm. Without --armory, prints the
/// payload on stdout and exits 0. With --armory, makes the same decision `run --dry-run`
/// makes: the manifest and its claims, whether the nonce was used (without recording it),
/// the tool's resolution (authorized, bytes re-hashed), a script's interpreter, and the
/// sandbox this host would give it; prints the decision as JSON. A refusal exits 3 with a
/// stable reason code on stderr.
///
/// Example: edge-runner verify --keys /etc/edge-runner/keys.json --armory /var/lib/edge-runner/armory task.jws
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The verification key set (JWKS) [default: from the configuration].
    #[arg(long, value_name = "JWKS")]
    pub keys: Option<PathBuf>,
    /// Decide the whole task against this armory, as `run --dry-run` would.
    #[arg(long, value_name = "DIR")]
    pub armory: Option<PathBuf>,
    /// The task: a file holding a compact JWS, or `-` for stdin. Surrounding whitespace is
    /// ignored.
    #[arg(value_name = "TASK")]
    pub task: PathBuf,
}

pub fn run(global: &Global, args: VerifyArgs) -> CmdResult {
    let mut config = super::load_config(global)?;
    if let Some(k) = &args.keys {
        config.keys = k.clone();
    }
    let task = super::read_task(&args.task, config.input.max_jws_bytes)?;

    if let Some(root) = &args.armory {
        config.set_armory(root.clone());
        config
            .check_effective()
            .map_err(|e| Failure::Usage(e.into()))?;
        let config_file = super::config_path(global).and_then(|p| std::fs::canonicalize(p).ok());
        let runner =
            Runner::open(&config, config_file.as_deref()).map_err(|e| Failure::Usage(e.into()))?;
        let decision = runner
            .decide(&task)
            .map_err(|rejected| super::refused(rejected.refusal))?;
        super::write_stdout(&format!("{}\n", decision.summary()))?;
        return Ok(Exit::Ok);
    }

    let host = setup::plugin_host(&config, false).map_err(|e| Failure::Runner(e.into()))?;
    let verifier = setup::verifier(&config, host).map_err(|e| Failure::Usage(e.into()))?;
    let limits = JwsLimits {
        max_bytes: config.input.max_jws_bytes,
        ..JwsLimits::default()
    };
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
