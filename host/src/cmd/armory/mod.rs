//! `edge-runner armory ...`: add, authorize, revoke, list and verify the tools in the
//! armory; `policy` (signed authorization statements) and `pull`/`push` (OCI registries)
//! live in their own files. Flag parsing and printing only; the store logic is
//! `edge_runner::armory`.

mod policy;
mod registry;

use super::{CmdResult, Exit, Failure, Global};
use clap::{Args, Subcommand};
use edge_runner::armory::{Armory, ArmoryError, describe};
use edge_runner::digest::Digest;
use edge_runner::reason::Refuse as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Manage the armory: the local, content-addressed store of tools a task may run.
///
/// A tool runs only if its digest is in the armory, authorized, not revoked, and its bytes
/// still hash to the digest. Tools are ELF executables or `#!` scripts whose interpreter
/// (an absolute path) exists inside the sandbox's root filesystem.
#[derive(Debug, Args)]
pub struct ArmoryArgs {
    /// The armory directory [default: `armory` from the configuration].
    #[arg(long, global = true, value_name = "DIR")]
    pub armory: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ArmoryCommand,
}

#[derive(Debug, Subcommand)]
pub enum ArmoryCommand {
    Add(AddArgs),
    /// Authorize a tool to run, after re-hashing its stored bytes.
    ///
    /// A revoked tool cannot be authorized again; add the fixed build (a new digest).
    /// With `[armory] authorization = "signed"` this local mark does not let a tool run:
    /// the installed signed statement decides (`armory policy`).
    ///
    /// Example: edge-runner armory authorize sha256:HEX --by alice
    Authorize(StateArgs),
    /// Revoke a tool, permanently: tasks naming its digest are refused as
    /// digest_unauthorized.
    ///
    /// Example: edge-runner armory revoke sha256:HEX --by alice
    Revoke(StateArgs),
    /// List the tools: digest, status (pending, authorized, revoked), size, added, name.
    ///
    /// Example: edge-runner armory list --json
    List(ListArgs),
    /// Re-hash every stored tool and report damaged or orphaned blobs.
    ///
    /// Exit 0: every indexed tool is intact (orphans, left by an interrupted add, are
    /// harmless); 3 (digest_mismatch): a tool's bytes changed; repair it with `armory add`
    /// of the genuine file.
    ///
    /// Example: edge-runner armory verify
    Verify(ListArgs),
    /// Signed authorization statements: apply, show, sign.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    Pull(registry::PullArgs),
    Push(registry::PushArgs),
}

/// Add a tool (not yet authorized) and print its digest.
///
/// Example: edge-runner armory add ./scan --name scan
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The tool file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A name for people [default: the file name].
    #[arg(long)]
    pub name: Option<String>,
    /// Who adds it [default: the current user].
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

/// Change a tool's authorization (`revoke` is permanent).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// `sha256:` followed by 64 lowercase hex digits.
    #[arg(value_name = "DIGEST")]
    pub digest: String,
    /// Who decides [default: the current user].
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(global: &Global, args: ArmoryArgs) -> CmdResult {
    let config = super::load_config(global)?;
    let root = args.armory.clone().unwrap_or_else(|| config.armory.clone());
    let now = chrono::Utc::now();
    match args.command {
        ArmoryCommand::Policy(p) => policy::run(global, &config, &root, p),
        ArmoryCommand::Pull(p) => registry::pull(&config, &root, p),
        ArmoryCommand::Push(p) => registry::push(&config, p),
        ArmoryCommand::Add(a) => {
            let armory = Armory::create(&root)
                .map_err(failure)?
                .with_max_tool_bytes(config.armory_settings.max_tool_bytes);
            let name = match (&a.name, a.file.as_os_str() == "-") {
                (Some(n), _) => n.clone(),
                (None, true) => "stdin".to_owned(),
                (None, false) => a
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "tool".to_owned()),
            };
            let by = a.by.unwrap_or_else(current_user);
            let added = if a.file.as_os_str() == "-" {
                armory.add(&mut std::io::stdin().lock(), &name, &by, now)
            } else {
                let mut f = std::fs::File::open(&a.file).map_err(|e| {
                    Failure::Usage(
                        anyhow::Error::new(e)
                            .context(format!("failed to open {}", a.file.display())),
                    )
                })?;
                armory.add(&mut f, &name, &by, now)
            }
            .map_err(failure)?;
            print(&format!("{}\n", added.digest))?;
            if !added.new {
                tracing::warn!(digest = %added.digest, "already in the armory; its state is unchanged");
            }
            Ok(Exit::Ok)
        }
        ArmoryCommand::Authorize(s) => {
            let digest = parse_digest(&s.digest)?;
            let armory = Armory::open(&root).map_err(failure)?;
            let entry = armory
                .authorize(&digest, &s.by.unwrap_or_else(current_user), now)
                .map_err(failure)?;
            let stamp = entry.authorized.as_ref();
            print(&format!(
                "authorized {digest} ({}) by {} at {}\n",
                entry.name,
                stamp.map_or("?", |s| s.by.as_str()),
                stamp.map_or("?", |s| s.at.as_str())
            ))?;
            Ok(Exit::Ok)
        }
        ArmoryCommand::Revoke(s) => {
            let digest = parse_digest(&s.digest)?;
            let armory = Armory::open(&root).map_err(failure)?;
            let entry = armory
                .revoke(&digest, &s.by.unwrap_or_else(current_user), now)
                .map_err(failure)?;
            print(&format!("revoked {digest} ({})\n", entry.name))?;
            Ok(Exit::Ok)
        }
        ArmoryCommand::List(l) => {
            let armory = Armory::open(&root).map_err(failure)?;
            let tools = armory.list().map_err(failure)?;
            if l.json {
                let list: Vec<serde_json::Value> = tools
                    .iter()
                    .map(|(d, e)| {
                        let mut v = serde_json::to_value(e).unwrap_or_default();
                        v["digest"] = serde_json::Value::String(d.to_string());
                        v["status"] = serde_json::Value::String(e.status().to_owned());
                        v
                    })
                    .collect();
                print(&format!("{}\n", serde_json::Value::Array(list)))?;
            } else {
                let mut out = format!(
                    "{:<71}  {:<10}  {:>10}  {:<20}  {}\n",
                    "DIGEST", "STATUS", "SIZE", "ADDED", "NAME"
                );
                for (d, e) in &tools {
                    out.push_str(&format!(
                        "{:<71}  {:<10}  {:>10}  {:<20}  {}\n",
                        d.as_str(),
                        e.status(),
                        e.size,
                        e.added.at,
                        e.name
                    ));
                }
                print(&out)?;
            }
            Ok(Exit::Ok)
        }
        ArmoryCommand::Verify(l) => {
            let armory = Armory::open(&root).map_err(failure)?;
            let report = armory.verify().map_err(failure)?;
            if l.json {
                let v = serde_json::to_value(&report).unwrap_or_default();
                print(&format!("{v}\n"))?;
            } else {
                let mut out = String::new();
                for p in &report.problems {
                    out.push_str(&format!("{}: {}\n", p.digest, describe(&p.problem)));
                }
                out.push_str(&format!(
                    "checked {} tools: {}\n",
                    report.checked,
                    if report.corrupt() {
                        "CORRUPTION FOUND"
                    } else {
                        "ok"
                    }
                ));
                print(&out)?;
            }
            if report.corrupt() {
                let bad = report
                    .problems
                    .iter()
                    .filter(|p| p.problem != edge_runner::armory::BlobProblem::Orphan)
                    .count();
                return Err(Failure::Denied(edge_runner::reason::Refusal::new(
                    edge_runner::reason::Reason::DigestMismatch,
                    format!(
                        "{bad} of {} tools in {} failed verification; `armory add` the genuine files to \
                         repair them",
                        report.checked,
                        root.display()
                    ),
                )));
            }
            Ok(Exit::Ok)
        }
    }
}

pub(super) fn parse_digest(s: &str) -> Result<Digest, Failure> {
    Digest::parse(s).map_err(|e| Failure::Usage(e.into()))
}

/// Refusals (a reason code) exit 3, bad operator input 2, anything else 4.
pub(super) fn failure(e: ArmoryError) -> Failure {
    if e.refusal_reason().is_some() {
        return Failure::Denied(e.to_refusal());
    }
    match e {
        ArmoryError::Label { .. } | ArmoryError::TooLarge { .. } | ArmoryError::Revoked { .. } => {
            Failure::Usage(e.into())
        }
        other => Failure::Runner(other.into()),
    }
}

pub(super) fn current_user() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(u)) => u.name,
        _ => format!("uid:{uid}"),
    }
}

pub(super) fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Runner(anyhow::Error::new(e).context("failed to write to stdout")))
}
