//! `edge-runner armory pull|push`: tools as OCI artifacts in a registry. Flag parsing and
//! printing only; the client and its checks are `edge_runner::armory::registry`.

use super::{current_user, failure, print};
use crate::cmd::{CmdResult, Exit, Failure, refused};
use clap::Args;
use edge_runner::armory::Armory;
use edge_runner::armory::registry::{Reference, RegistryError, Repository};
use edge_runner::config::Config;
use edge_runner::pipeline::setup;
use edge_runner::reason::Refuse as _;
use std::path::{Path, PathBuf};

/// Fetch a tool from an OCI registry into the armory, by digest, checking every byte.
///
/// DIGEST is the tool's own digest (the manifest's one layer, what tasks and statements
/// name). The manifest is found by the tag `push` gives it (sha256-<hex>), or pinned with
/// --manifest. The layer is hashed while it streams into the armory and stored only if it
/// matches (registry_digest_mismatch otherwise; nothing is stored). A pulled tool is not
/// authorized by pulling it.
///
/// Example: edge-runner armory pull registry.example:5000/tools/scan@sha256:HEX
#[derive(Debug, Args)]
pub struct PullArgs {
    /// REGISTRY/REPOSITORY@sha256:<64 hex digits>.
    #[arg(value_name = "REFERENCE")]
    pub reference: String,
    /// Pin the manifest's digest too.
    #[arg(long, value_name = "DIGEST")]
    pub manifest: Option<String>,
    /// A name for people [default: the layer's title annotation, else the repository].
    #[arg(long)]
    pub name: Option<String>,
    /// Who pulls it [default: the current user].
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

/// Publish a tool file to an OCI registry as a single-layer artifact; print its reference.
///
/// Prints REGISTRY/REPOSITORY@sha256:<tool digest> (what `armory pull` and authorization
/// statements name), then the manifest digest and tag.
///
/// Example: edge-runner armory push ./scan registry.example:5000/tools/scan
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The tool file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// REGISTRY/REPOSITORY.
    #[arg(value_name = "REPOSITORY")]
    pub repository: String,
    /// A name for people (the layer's title) [default: the file name].
    #[arg(long)]
    pub name: Option<String>,
}

pub fn pull(config: &Config, root: &Path, a: PullArgs) -> CmdResult {
    let reference = Reference::parse(&a.reference).map_err(|e| Failure::Usage(e.into()))?;
    let manifest = a.manifest.as_deref().map(super::parse_digest).transpose()?;
    let client = setup::registry_client(config).map_err(|e| Failure::Usage(e.into()))?;
    let armory = Armory::create(root)
        .map_err(failure)?
        .with_max_tool_bytes(config.armory_settings.max_tool_bytes);
    let by = a.by.unwrap_or_else(current_user);
    let pulled = client
        .pull(
            &armory,
            &reference,
            manifest.as_ref(),
            a.name.as_deref(),
            &by,
            chrono::Utc::now(),
        )
        .map_err(registry_failure)?;
    print(&format!("{}\n", pulled.digest))?;
    if !pulled.new {
        tracing::warn!(digest = %pulled.digest, "already in the armory; nothing was fetched");
    }
    Ok(Exit::Ok)
}

pub fn push(config: &Config, a: PushArgs) -> CmdResult {
    let repository = Repository::parse(&a.repository).map_err(|e| Failure::Usage(e.into()))?;
    let name = a.name.unwrap_or_else(|| {
        a.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tool".to_owned())
    });
    let client = setup::registry_client(config).map_err(|e| Failure::Usage(e.into()))?;
    let pushed = client
        .push(
            &a.file,
            &repository,
            &name,
            config.armory_settings.max_tool_bytes,
        )
        .map_err(registry_failure)?;
    print(&format!(
        "{}\nmanifest {} tag {} ({} bytes)\n",
        pushed.reference, pushed.manifest, pushed.tag, pushed.size
    ))?;
    Ok(Exit::Ok)
}

/// Refusals (wrong bytes, redirects, too large) exit 3, a file that cannot be read 2,
/// an unreachable registry 4.
fn registry_failure(e: RegistryError) -> Failure {
    match e {
        RegistryError::Armory(a) => failure(a),
        RegistryError::ReadFile { .. }
        | RegistryError::Reference { .. }
        | RegistryError::Tls(_) => Failure::Usage(e.into()),
        other => refused(other.to_refusal()),
    }
}
