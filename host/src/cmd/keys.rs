//! `edge-runner keys generate`: make a signing key and the matching verification key set.

use super::{CmdResult, Exit, Failure};
use clap::{Args, Subcommand};
use edge_runner::sign::{SignAlg, SigningKey};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Manage signing and verification keys.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    Generate(GenerateArgs),
}

/// Generate a private signing key (for the control plane) and the public key set (for the
/// runner).
///
/// The private key is written with mode 0600 and never overwrites an existing file. For
/// HS256 the "public" key set holds the shared secret too: protect it like a private key.
///
/// Example: edge-runner keys generate --alg ES256 --kid cp-2026-11 --private signer.jwk --public keys.json
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Signature algorithm.
    #[arg(long, value_enum)]
    pub alg: SignAlg,
    /// Key id (printable ASCII, no spaces, at most 128 bytes).
    #[arg(long)]
    pub kid: String,
    /// Where to write the private JWK.
    #[arg(long, value_name = "FILE", default_value = "signing-key.jwk")]
    pub private: PathBuf,
    /// Where to write the verification JWKS.
    #[arg(long, value_name = "FILE", default_value = "keys.json")]
    pub public: PathBuf,
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.write_all(b"\n")?;
    f.sync_all()
}

pub fn run(args: KeysArgs) -> CmdResult {
    let KeysCommand::Generate(g) = args.command;
    let kid_ok = !g.kid.is_empty()
        && g.kid.len() <= edge_runner::keys::MAX_KID_LEN
        && g.kid.bytes().all(|b| b.is_ascii_graphic());
    if !kid_ok {
        return Err(Failure::Usage(anyhow::anyhow!(
            "--kid must be 1 to {} printable ASCII characters without spaces",
            edge_runner::keys::MAX_KID_LEN
        )));
    }
    let key = SigningKey::generate(g.alg, &g.kid).map_err(|e| Failure::Runner(e.into()))?;
    let private =
        serde_json::to_vec_pretty(&key.private_jwk()).map_err(|e| Failure::Runner(e.into()))?;
    let public = serde_json::to_vec_pretty(&serde_json::json!({ "keys": [key.public_jwk()] }))
        .map_err(|e| Failure::Runner(e.into()))?;
    for (path, bytes) in [(&g.private, &private), (&g.public, &public)] {
        write_new(path, bytes).map_err(|e| {
            Failure::Usage(anyhow::Error::new(e).context(format!(
                "failed to create {} (it must not exist yet)",
                path.display()
            )))
        })?;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "wrote private key {} and key set {} ({} kid {})",
        g.private.display(),
        g.public.display(),
        g.alg.as_str(),
        g.kid
    );
    Ok(Exit::Ok)
}
